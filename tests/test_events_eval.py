"""Event grouping against the blind evaluation sets (``tests/data/events/``): pairwise
precision and recall of "these two items report the same happening".

Every set was written and labelled by a labeller who never saw the method
(``tests/data/events/LABELLING.md``). The learned pair model is trained on six of them (dev,
train, set_a, set_b, set_d, set_e: 1,542 items), so their scores here are in-sample; its
threshold was chosen by leaving one of them out at a time (``python -m pipeline.event_training
--loso``). Two are held out: ``test`` (298 items) and ``test2`` (275 items, written after the
first three and scored once per change of the method). ``docs/performance.md`` keeps the
history. Run with ``-s`` to see the numbers; the floors below only catch a regression.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from models.events import group, item_from_json

DATA = Path(__file__).parent / "data" / "events"
# Regression floors, a little under the scores of the shipped method on 2026-12-03 (held out:
# test 0.921/0.902, test2 0.941/0.880; in-sample: dev 0.951/0.891, train 0.932/0.885, set_a
# 0.963/0.891, set_b 0.940/0.893, set_d 0.948/0.789, set_e 1.000/0.860); the goal is
# 0.90 / 0.85 on the held-out sets.
FLOORS = {
    "test": (0.90, 0.88),
    "test2": (0.92, 0.86),
    "dev": (0.93, 0.87),
    "train": (0.91, 0.86),
    "set_a": (0.94, 0.87),
    "set_b": (0.92, 0.87),
    "set_d": (0.93, 0.77),
    "set_e": (0.98, 0.84),
}


def load(split: str) -> list[dict[str, Any]]:
    path = DATA / f"events_{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def pairwise(rows: list[dict[str, Any]]) -> tuple[float, float, Counter[str]]:
    """(precision, recall, counts) of same-event pairs against the labelled stories."""
    ordered = sorted(rows, key=lambda r: (item_from_json(r).published_at, r["id"]))
    events = [event for event, _ in group([item_from_json(r) for r in ordered])]
    counts: Counter[str] = Counter()
    for a, b in itertools.combinations(range(len(ordered)), 2):
        same, truth = events[a] == events[b], ordered[a]["story"] == ordered[b]["story"]
        cross = ordered[a]["language"] != ordered[b]["language"]
        counts["tp" if same and truth else "fp" if same else "fn" if truth else "tn"] += 1
        if truth:
            counts["cross_truth" if cross else "same_truth"] += 1
            if same:
                counts["cross_tp" if cross else "same_tp"] += 1
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), counts


def test_the_sets_are_large_bilingual_and_blind() -> None:
    sets = {name: load(name) for name in FLOORS}
    for name in ("test", "test2"):
        assert len(sets[name]) >= 150
        assert len({r["story"] for r in sets[name]}) >= 50
    for (a, rows_a), (b, rows_b) in itertools.combinations(sets.items(), 2):
        assert not {r["story"] for r in rows_a} & {r["story"] for r in rows_b}, (a, b)
        assert not {r["url"] for r in rows_a} & {r["url"] for r in rows_b}, (a, b)
    for rows in sets.values():
        _, _, counts = pairwise(rows)
        assert counts["cross_truth"] / (counts["cross_truth"] + counts["same_truth"]) >= 0.4


@pytest.mark.parametrize("split", list(FLOORS))
def test_pairwise_precision_and_recall(split: str) -> None:
    precision, recall, counts = pairwise(load(split))
    cross = counts["cross_tp"] / max(counts["cross_truth"], 1)
    same = counts["same_tp"] / max(counts["same_truth"], 1)
    print(
        f"\n{split}: pairwise precision {precision:.3f}, recall {recall:.3f} "
        f"(recall within one language {same:.3f}, across languages {cross:.3f}; "
        f"tp {counts['tp']}, fp {counts['fp']}, fn {counts['fn']})"
    )
    floor_p, floor_r = FLOORS[split]
    assert precision >= floor_p
    assert recall >= floor_r
