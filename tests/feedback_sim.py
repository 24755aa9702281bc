"""What subscribers' feedback teaches the learned model about a feed: a simulation on the real
training sets, each standing for a feed the models never saw.

    python -m tests.feedback_sim [--jobs 2] [--only blind_SA,blind_SE,...]

For each real-news set S (a kind of feed, ``tests.scoring.REAL_NEWS``), leaving S out of
training as ``tests.loso_themes`` does: S's items are split in two halves by a hash of their
ids. The models trained without S alert on the first half; every alert gets the verdict its
label gives (👍 when the theme is right, 👎 when it is not), from as many subscribers as a
negative needs, and becomes a training example through ``pipeline.learning.feedback_example``,
exactly as ``policywatch train`` turns stored votes into examples. The models are retrained
with those examples and score the second half, beside the models without feedback. A second
variant counts the feedback examples as real items (``Example.real``, ``TrainParams.
real_weight``): they are what the feeds carry, as the labelled real-news items are. Misses get
no feedback (nobody sees an alert that was not sent). As ``policywatch train`` does, a
retrained theme goes live only if it validates within ``TOLERANCE`` of the active version's F1
(here the version without feedback): the "gated" rows. Plain encoder, no cross-fitting, as every
``loso_themes`` run. Not collected by pytest; about three trainings a set.
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from typing import Any

from models.learned import ModelSet
from models.matching import Matcher
from pipeline.encoder import E5Encoder
from pipeline.learning import (
    Example,
    Scores,
    TrainedTheme,
    feedback_example,
    train_models,
    trained_indexes,
)
from pipeline.training import TOLERANCE
from tests.loso_themes import (
    BASE,
    DATA,
    VALIDATION,
    TableEncoder,
    _examples,
    _micro,
    encoded,
    training_sets,
)
from tests.scoring import REAL_NEWS, classify_rows, load_rows, score_rows, shipped

VARIANTS = ("without feedback", "with feedback", "feedback as real")
REPORTED = (*VARIANTS, *(f"{v}, gated" for v in VARIANTS[1:]))
LAYERS = ("combined", "both")
MIN_VOTES = 3  # the settings' default: a 👎 from this many subscribers makes a negative


def halves(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The items alerted on (feedback) and the items scored, split by a hash of the id."""
    split: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    for row in rows:
        split[zlib.crc32(str(row["id"]).encode()) % 2].append(row)
    return split


def feedback_on_alerts(
    rows: list[dict[str, Any]],
    matcher: Matcher,
    models: ModelSet,
    indexes: Mapping[str, bytes],
    enc: TableEncoder,
) -> list[Example]:
    """Each alert's verdict as a training example: 👍 on a right theme, 👎 on a wrong one."""
    examples: list[Example] = []
    found = classify_rows(rows, matcher, models, encoder=enc, indexes=indexes)
    for row, matches in zip(rows, found, strict=True):
        for match in matches:
            right = match.slug in row["labels"]
            example = feedback_example(
                row["title"],
                row["summary"],
                match.slug,
                MIN_VOTES if right else 0,
                0 if right else MIN_VOTES,
                MIN_VOTES,
            )
            if example is not None:
                examples.append(example)
    return examples


def simulate(
    name: str, sets: Sequence[str], enc: TableEncoder
) -> tuple[dict[str, dict[str, Scores]], int, int, dict[str, int]]:
    """Variant → layer → micro scores on the second half of ``name``; the 👍 and 👎 given; and
    per feedback variant, how many themes' retrained versions the activation rule lets in."""
    matcher, _, slugs = shipped()

    def rules(title: str, summary: str) -> set[str]:
        return {m.slug for m in matcher.classify(title, summary)}

    training = [e for n in (BASE, *sets) if n != name for e in _examples(n)]
    validation = _examples(VALIDATION)
    alerted, scored = halves(load_rows(DATA / f"{name}.jsonl"))
    out: dict[str, dict[str, Scores]] = {}

    def run(extra: Sequence[Example]) -> list[TrainedTheme]:
        return train_models(slugs, [*training, *extra], validation, rules=rules, encoder=enc)

    def measure(variant: str, trained: Sequence[TrainedTheme]) -> None:
        models, indexes = ModelSet(t.model for t in trained), trained_indexes(trained)
        got = score_rows(scored, matcher, models, slugs, encoder=enc, indexes=indexes)
        out[variant] = {layer: _micro({s: got[layer][s] for s in slugs}) for layer in LAYERS}

    base = run(())
    measure(VARIANTS[0], base)
    feedback = feedback_on_alerts(
        alerted, matcher, ModelSet(t.model for t in base), trained_indexes(base), enc
    )
    was = {t.model.slug: t for t in base}
    activated: dict[str, int] = {}
    for variant, extra in (
        (VARIANTS[1], feedback),
        (VARIANTS[2], [replace(e, real=True) for e in feedback]),
    ):
        trained = run(extra)
        measure(variant, trained)
        # as ``pipeline.training.retrain`` does: a theme's new version goes live only if it
        # validates within TOLERANCE of the active one's F1 (here: the one without feedback)
        live = [
            t
            if t.validation_f1 >= was[t.model.slug].validation_f1 - TOLERANCE
            else was[t.model.slug]
            for t in trained
        ]
        activated[variant] = sum(1 for t, n in zip(live, trained, strict=True) if t is n)
        measure(f"{variant}, gated", live)
    ups = sum(1 for e in feedback if e.labels)
    return out, ups, len(feedback) - ups, activated


def _cell(s: Scores) -> str:
    return f"{s.precision:.3f} / {s.recall:.3f} ({s.tp}, {s.fp}, {s.fn})"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", help="these real sets (comma-separated; default: all)")
    args = parser.parse_args(argv)
    sets = training_sets()
    real = [n for n in sets if n in REAL_NEWS]
    folds = args.only.split(",") if args.only else real
    table = encoded(E5Encoder(), [BASE, VALIDATION, *sets])
    total = {v: {layer: Scores() for layer in LAYERS} for v in REPORTED}
    votes = [0, 0]
    with ProcessPoolExecutor(args.jobs) as executor:
        running = {executor.submit(simulate, name, sets, table): name for name in folds}
        for done in as_completed(running):
            name = running[done]
            result, ups, downs, activated = done.result()
            votes[0] += ups
            votes[1] += downs
            live = ", ".join(f"{v}: {n} themes live" for v, n in activated.items())
            print(f"{name} ({ups} 👍, {downs} 👎; {live})", flush=True)
            for v in REPORTED:
                print(
                    f"  {v:<26} {_cell(result[v]['combined'])}   both layers "
                    f"{_cell(result[v]['both'])}",
                    flush=True,
                )
                for layer in LAYERS:
                    total[v][layer] = total[v][layer] + result[v][layer]
    print(f"\nall {len(folds)} sets ({votes[0]} 👍, {votes[1]} 👎 on the first halves' alerts)")
    for v in REPORTED:
        print(
            f"{v:<26} rules OR model P / R {_cell(total[v]['combined'])}"
            f"   both layers {_cell(total[v]['both'])}"
        )


if __name__ == "__main__":
    main()
