"""The event-grouping pair model as shipped: reproducible from the labelled sets, refused when
malformed or made for other features, and readable against signatures stored before terms."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.event_model import MODEL_FILE, EventModelError, model_from_json
from models.events import FEATURES, EventItem, Signature, default_model, read
from models.glossary import terms
from pipeline.event_training import THRESHOLD, examples, fit, load_set

DATA = Path(__file__).parent / "data" / "events"
TRAINED_ON = (
    "events_dev",
    "events_set_a",
    "events_set_b",
    "events_set_d",
    "events_set_e",
    "events_train",
)
SHIPPED = Path(__file__).resolve().parents[1] / "models" / "data" / MODEL_FILE


def test_the_shipped_model_is_what_the_labelled_sets_train() -> None:
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    assert shipped["metrics"]["trained_on"] == list(TRAINED_ON)
    xs: list[list[float]] = []
    ys: list[int] = []
    for name in TRAINED_ON:
        ex, ey = examples(load_set(DATA / f"{name}.jsonl"))
        xs += ex
        ys += ey
    retrained = fit(xs, ys, THRESHOLD)
    model = default_model()
    assert model.threshold == THRESHOLD
    assert len(model.trees) == len(retrained.trees)
    probe = xs[:: max(1, len(xs) // 50)]
    for row in probe:
        assert model.probability(row) == pytest.approx(retrained.probability(row), abs=1e-9)


def test_a_model_for_other_features_or_malformed_is_refused() -> None:
    good = json.loads(SHIPPED.read_text(encoding="utf-8"))
    with pytest.raises(EventModelError, match="other features"):
        model_from_json(good, FEATURES[:-1])
    with pytest.raises(EventModelError, match="format"):
        model_from_json({**good, "format": 99}, FEATURES)
    broken = json.loads(json.dumps(good))
    broken["trees"][0]["left"][0] = 10_000
    with pytest.raises(EventModelError, match="outside its tree"):
        model_from_json(broken, FEATURES)
    del broken["trees"][0]["value"]
    with pytest.raises(EventModelError, match="malformed"):
        model_from_json(broken, FEATURES)


def test_terms_meet_across_languages() -> None:
    zh = terms("美国将12家中企列入实体清单 涉量子运算", "zh")
    en = terms("U.S. adds Chinese quantum computing firms to trade blacklist - Reuters", "en")
    assert "quantum" in zh & en
    assert "reuter" not in en  # the " - Publisher" suffix is not the story's wording
    effect = terms("個人資訊保護法今起施行", "zh") & terms("Privacy law takes effect", "en")
    assert "effect" in effect  # Traditional script too
    assert not terms("", "zh")


def test_signatures_stored_before_terms_still_read() -> None:
    item = EventItem(
        id="1",
        title="China restricts exports of gallium and germanium",
        published_at=datetime(2023, 7, 3, 14, 30, tzinfo=UTC),
    )
    stored = read(item).to_json()
    del stored["terms"], stored["summary_terms"]
    old = Signature.from_json(stored)
    assert old.terms == frozenset()
    assert old.anchors == read(item).anchors
