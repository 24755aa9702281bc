"""Training the event-grouping pair model (``models.event_model``) on labelled event sets.

Each labelled set (JSON Lines of ``policywatch events`` items with a ``story``) is replayed
oldest first, through the same functions ``models.events.decide`` uses. For every item not
joined by a hard key (``hard_join``), each story it would be judged against (``reachable``,
then ``judged``: within the window, its latest members) gives one example: the item's
``pair_features`` against it, labelled 1 when the item belongs to that story.
scikit-learn's gradient boosting (100 trees of depth 2) learns from them; the trees are
exported as plain JSON.

    python -m pipeline.event_training --export models/data/event_model.json \
        tests/data/events/events_{dev,train,set_a,set_b,set_d,set_e}.jsonl
    python -m pipeline.event_training --loso SET.jsonl ...   # leave one set out, per threshold

``--loso`` trains on all sets but one and scores the grouping of the one left out (pairwise
precision and recall), for each set in turn: how the threshold was chosen.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.event_model import PairModel, Tree
from models.events import (
    FEATURES,
    EventItem,
    Signature,
    group,
    hard_join,
    item_from_json,
    judged,
    pair_features,
    reachable,
    read,
)

TREES = 100
DEPTH = 2
RATE = 0.1
THRESHOLD = 0.6  # chosen by leave-one-set-out (docs/performance.md)


@dataclass(frozen=True, slots=True)
class Labelled:
    item: EventItem
    story: str


def load_set(path: Path) -> list[Labelled]:
    """A labelled set, oldest first (ties by id, as the evaluation orders them)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    items = [Labelled(item_from_json(r), str(r["story"])) for r in rows]
    return sorted(items, key=lambda x: (x.item.published_at, x.item.id))


def examples(labelled: Sequence[Labelled]) -> tuple[list[list[float]], list[int]]:
    """(features, labels) of every (item, candidate story) the replay meets."""
    by_story: dict[str, list[Signature]] = {}
    xs: list[list[float]] = []
    ys: list[int] = []
    for entry in labelled:
        signature = read(entry.item)
        candidates = reachable(signature, by_story)
        if hard_join(signature, candidates) is None:
            for story, others in judged(signature, candidates):
                xs.append(pair_features(signature, others))
                ys.append(int(story == entry.story))
        by_story.setdefault(entry.story, []).append(signature)
    return xs, ys


def fit(xs: Sequence[Sequence[float]], ys: Sequence[int], threshold: float) -> PairModel:
    """Gradient-boosted trees on the examples, as a plain ``PairModel``."""
    import numpy as np
    from sklearn.ensemble import GradientBoostingClassifier

    x, y = np.array(xs, dtype=float), np.array(ys)
    clf = GradientBoostingClassifier(
        n_estimators=TREES, max_depth=DEPTH, learning_rate=RATE, random_state=0
    )
    clf.fit(x, y)
    trees = []
    for estimator in clf.estimators_[:, 0]:
        t = estimator.tree_
        trees.append(
            Tree(
                feature=tuple(int(f) if f >= 0 else 0 for f in t.feature),
                threshold=tuple(float(v) for v in t.threshold),
                left=tuple(int(v) for v in t.children_left),
                right=tuple(int(v) for v in t.children_right),
                value=tuple(float(v) for v in t.value[:, 0, 0]),
            )
        )
    prior = float(np.mean(y))
    model = PairModel(
        features=FEATURES,
        init=float(np.log(prior / (1 - prior))),
        rate=RATE,
        trees=tuple(trees),
        threshold=threshold,
        metrics={"examples": len(ys), "positives": int(sum(ys))},
    )
    expected = clf.predict_proba(x)[:, 1]
    got = np.array([model.probability(row) for row in x])
    if not np.allclose(expected, got, atol=1e-6):
        msg = "the exported trees do not reproduce scikit-learn's probabilities"
        raise RuntimeError(msg)
    return model


def pairwise(labelled: Sequence[Labelled], model: PairModel) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) over all pairs of the set."""
    events = [event for event, _ in group([x.item for x in labelled], model)]
    tp = fp = fn = 0
    for a, b in itertools.combinations(range(len(labelled)), 2):
        same, truth = events[a] == events[b], labelled[a].story == labelled[b].story
        tp += same and truth
        fp += same and not truth
        fn += truth and not same
    return tp, fp, fn


def leave_one_set_out(
    sets: dict[str, list[Labelled]], thresholds: Sequence[float]
) -> dict[float, dict[str, tuple[int, int, int]]]:
    """threshold → set left out → its pairwise counts under a model trained on the others."""
    data = {name: examples(rows) for name, rows in sets.items()}
    out: dict[float, dict[str, tuple[int, int, int]]] = {t: {} for t in thresholds}
    for name, rows in sets.items():
        xs = [x for other, (ex, _) in data.items() if other != name for x in ex]
        ys = [y for other, (_, ey) in data.items() if other != name for y in ey]
        model = fit(xs, ys, 0.5)
        for t in thresholds:
            out[t][name] = pairwise(rows, _at(model, t))
    return out


def _at(model: PairModel, threshold: float) -> PairModel:
    return PairModel(model.features, model.init, model.rate, model.trees, threshold, model.metrics)


def _pr(tp: int, fp: int, fn: int) -> str:
    return f"P {tp / max(tp + fp, 1):.3f} R {tp / max(tp + fn, 1):.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.event_training")
    parser.add_argument("sets", nargs="+", help="labelled event sets (JSON Lines with story)")
    parser.add_argument("--export", help="write the model trained on all sets here")
    parser.add_argument("--loso", action="store_true", help="leave-one-set-out scores")
    args = parser.parse_args(argv)
    sets = {Path(p).stem: load_set(Path(p)) for p in args.sets}
    if args.loso:
        report = leave_one_set_out(sets, (0.5, 0.6, 0.7, 0.8))
        for t, per_set in report.items():
            total = [sum(c[i] for c in per_set.values()) for i in range(3)]
            parts = " · ".join(f"{n} {_pr(*c)}" for n, c in per_set.items())
            sys.stdout.write(f"threshold {t}: all {_pr(*total)} | {parts}\n")
    if args.export:
        xs: list[list[float]] = []
        ys: list[int] = []
        for rows in sets.values():
            ex, ey = examples(rows)
            xs += ex
            ys += ey
        model = fit(xs, ys, THRESHOLD)
        doc: dict[str, Any] = model.to_json()
        doc["metrics"] = {**doc["metrics"], "trained_on": sorted(sets)}
        Path(args.export).write_text(
            json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
        )
        sys.stdout.write(
            f"wrote {args.export}: {len(ys)} examples, {sum(ys)} positive, {TREES} trees\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
