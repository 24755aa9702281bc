"""The labelled items nearest an item: a third opinion for the learned themes. Pure.

A neighbour index holds the sentence-encoder vectors of the labelled items a training run
learned from (unit length, quantised to 8 bits with one scale per vector) and, per item, the
themes it is labelled with and the themes it was judged about (``None``: every theme; a
subscriber's feedback is about one theme). For theme *t*, an item's vote is the share of its
``k`` nearest indexed items about *t* that are labelled *t*, each weighed by its cosine
similarity to the power ``power``. The arithmetic (numpy) is an adapter's,
``pipeline.neighbours``; this module is the stored form: bytes in, a checked value out.

Stored form (never pickle)::

    b"PWNB1\\n" | header length (4 bytes, little-endian) | header (JSON, UTF-8)
    | count x dims signed bytes (the vectors) | count little-endian float32 (their scales)

The header names the encoder, ``dims``, ``count``, ``k``, ``power``, the theme ``slugs``, and
per item its ``labels`` and ``about`` as positions in ``slugs``; optionally ``titles``, per item
its headline or null, the headlines an alert may show as "similar to" (a labelled headline, never
a subscriber's item). An index is known by its digest (``index_digest``), which each theme model
that reads it names.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.learned import ModelFormatError

MAGIC = b"PWNB1\n"
MAX_HEADER = 16 * 1024 * 1024
MAX_DIMS = 4096
MAX_COUNT = 1_000_000
MAX_TITLE = 1000


@dataclass(frozen=True, slots=True)
class NeighbourIndex:
    """A neighbour index as stored (see the module docstring)."""

    encoder: str
    dims: int
    k: int
    power: float
    slugs: tuple[str, ...]
    labels: tuple[frozenset[int], ...]
    about: tuple[frozenset[int] | None, ...]
    vectors: bytes  # count x dims int8
    scales: bytes  # count float32, little-endian
    titles: tuple[str | None, ...] = ()  # per item, or none at all (indexes without them)

    @property
    def count(self) -> int:
        return len(self.labels)

    def __post_init__(self) -> None:
        count = len(self.labels)
        problems = []
        if not self.encoder:
            problems.append("it names no encoder")
        if not 0 < self.dims <= MAX_DIMS:
            problems.append(f"dims {self.dims} is out of range")
        if not 0 < self.k <= 1000:
            problems.append(f"k {self.k} is out of range")
        if not (math.isfinite(self.power) and 0 <= self.power <= 100):
            problems.append(f"power {self.power} is out of range")
        if len(set(self.slugs)) != len(self.slugs) or not all(self.slugs):
            problems.append("its theme slugs must be distinct and non-empty")
        if len(self.about) != count or count > MAX_COUNT:
            problems.append("labels and about must list the same items")
        known = range(len(self.slugs))
        for positions in (*self.labels, *(a for a in self.about if a is not None)):
            if any(p not in known for p in positions):
                problems.append("a label names no theme of the index")
                break
        if self.titles and len(self.titles) != count:
            problems.append(f"{len(self.titles)} titles for {count} items")
        if any(t is not None and not 0 < len(t) <= MAX_TITLE for t in self.titles):
            problems.append(f"a title is empty or longer than {MAX_TITLE} characters")
        if len(self.vectors) != count * self.dims or len(self.scales) != 4 * count:
            problems.append(f"the vectors of {count} items of {self.dims} values do not fit")
        if problems:
            raise ModelFormatError("not a neighbour index: " + "; ".join(problems))


def index_to_bytes(index: NeighbourIndex) -> bytes:
    header = {
        "encoder": index.encoder,
        "dims": index.dims,
        "count": index.count,
        "k": index.k,
        "power": index.power,
        "slugs": list(index.slugs),
        "labels": [sorted(labels) for labels in index.labels],
        "about": [None if about is None else sorted(about) for about in index.about],
    }
    if index.titles:
        header["titles"] = list(index.titles)
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return MAGIC + struct.pack("<I", len(raw)) + raw + index.vectors + index.scales


def index_digest(data: bytes) -> str:
    """The name a theme model gives the index it reads."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def index_from_bytes(data: bytes) -> NeighbourIndex:
    """The index ``data`` holds; ``ModelFormatError`` says what is wrong with it."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        msg = "not a neighbour index: it does not start as one"
        raise ModelFormatError(msg)
    (size,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    if size > MAX_HEADER or start + size > len(data):
        msg = "not a neighbour index: its header is cut short"
        raise ModelFormatError(msg)
    try:
        header = json.loads(data[start : start + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        msg = f"not a neighbour index: its header is not JSON ({exc})"
        raise ModelFormatError(msg) from None
    if not isinstance(header, Mapping):
        msg = "not a neighbour index: its header is not an object"
        raise ModelFormatError(msg)
    try:
        dims, count = _int(header, "dims"), _int(header, "count")
        labels = tuple(frozenset(_ints(row)) for row in _list(header, "labels"))
        about = tuple(
            None if row is None else frozenset(_ints(row)) for row in _list(header, "about")
        )
        slugs = tuple(_list(header, "slugs"))
        power = header["power"]
        encoder = header["encoder"]
        k = _int(header, "k")
        titles = tuple(_titles(header.get("titles", [])))
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"not a neighbour index: a bad header field ({exc})"
        raise ModelFormatError(msg) from None
    if not isinstance(encoder, str) or not all(isinstance(s, str) for s in slugs):
        msg = "not a neighbour index: the encoder and slugs must be strings"
        raise ModelFormatError(msg)
    if isinstance(power, bool) or not isinstance(power, int | float):
        msg = "not a neighbour index: power must be a number"
        raise ModelFormatError(msg)
    if len(labels) != count or not 0 <= dims <= MAX_DIMS or not 0 <= count <= MAX_COUNT:
        msg = f"not a neighbour index: {len(labels)} labelled items, count {count}"
        raise ModelFormatError(msg)
    body = start + size
    vectors_end = body + count * dims
    if len(data) != vectors_end + 4 * count:
        msg = (
            f"not a neighbour index: {len(data) - body} bytes of vectors, not {count * (dims + 4)}"
        )
        raise ModelFormatError(msg)
    return NeighbourIndex(
        encoder=encoder,
        dims=dims,
        k=k,
        power=float(power),
        slugs=slugs,
        labels=labels,
        about=about,
        vectors=data[body:vectors_end],
        scales=data[vectors_end:],
        titles=titles,
    )


def _int(header: Mapping[str, Any], name: str) -> int:
    value = header[name]
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name} must be an integer"
        raise TypeError(msg)
    return value


def _list(header: Mapping[str, Any], name: str) -> list[Any]:
    value = header[name]
    if not isinstance(value, list):
        msg = f"{name} must be a list"
        raise TypeError(msg)
    return value


def _titles(rows: Any) -> list[str | None]:
    if not isinstance(rows, list) or not all(r is None or isinstance(r, str) for r in rows):
        msg = "titles is a list of strings or nulls"
        raise TypeError(msg)
    return rows


def _ints(row: Any) -> list[int]:
    if not isinstance(row, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in row
    ):
        msg = "labels and about are lists of integers"
        raise TypeError(msg)
    return row
