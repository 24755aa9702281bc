"""Event grouping against the blind evaluation set (``tests/data/events/``): pairwise precision
and recall of "these two items report the same happening".

The set was written and labelled by separate labellers who never saw the method
(``tests/data/events/LABELLING.md``). The dev split (257 items, 54 stories) is what the method
was tuned on; the test split (298 items, 73 stories) is scored once per change of the method,
and its numbers are the honest ones (``docs/performance.md`` keeps their history). The train
split (247 items, 65 stories, written later by another labeller) was first scored unseen and
is now for tuning beside dev. Run with ``-s`` to see the numbers; the floors below only catch
a regression.
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
# Regression floors, a little under the scores of the shipped method (dev 0.959/0.795,
# test 0.886/0.759, train 0.946/0.677 on 2026-12-01); the goal is 0.90 / 0.85 on test.
FLOORS = {"dev": (0.93, 0.77), "test": (0.87, 0.74), "train": (0.92, 0.65)}


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


def test_the_set_is_large_bilingual_and_blind() -> None:
    dev, test, train = load("dev"), load("test"), load("train")
    assert len(test) >= 150
    assert len({r["story"] for r in test}) >= 50
    stories = [{r["story"] for r in rows} for rows in (dev, test, train)]
    assert not stories[0] & stories[1]
    assert not stories[0] & stories[2]
    assert not stories[1] & stories[2]
    for rows in (test, train):
        _, _, counts = pairwise(rows)
        assert counts["cross_truth"] / (counts["cross_truth"] + counts["same_truth"]) >= 0.4


@pytest.mark.parametrize("split", ["dev", "test", "train"])
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
