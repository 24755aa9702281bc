"""Leave-one-set-out scores of the learned themes: the development measure.

    python -m tests.loso_themes [--jobs 2] [--encoder e5|off] [--no-neighbours]
                                [--group blind_AA,blind_AB,...] [--tuning FILE]
                                [--fold-tunings FILE0,FILE1,...]
                                [--only blind_RE,blind_RF,...] [--real-weight W]
                                [--threshold-pool all|real [all|real]]
                                [--objective f1|min_pr] [--dump FILE]

For each blind set in the training split, train the models on every other training item
(``pipeline.learning.train_models``, thresholds from F and out-of-fold probabilities, exactly as
``policywatch train --export`` does) and score rules OR model on the set left out. The sets come
from different labellers, so this says how a change does on headlines and a labeller it never
saw, over ~4,000 items instead of G's 200; the test splits G and X are never read. Takes
several minutes (one training per set). With the encoder (the default) every item is encoded
once up front and the trainings read the vectors from that table. Not collected by pytest.

The shipped encoder tuning (``pipeline/data/encoder_tuning.json``) was trained on every
training set, so it would leak the left-out set's labels: this script uses the plain encoder, or
``--tuning FILE``, a tuning made without the sets left out (``tools/tune_encoder.py --hold-out
N`` leaves out the last N training items; the newest sets are last), with ``--group`` leaving
those sets out together in one training; ``--only`` leaves out just the sets it names, one
at a time (the real-news sets, say, with a tuning made without them), and ``--real-weight``
trains with another ``TrainParams.real_weight`` (``--threshold-pool`` and ``--objective``
with another threshold choice; ``--threshold-pool all real`` trains both on the same folds
and vectors). ``--fold-tunings`` gives the cross-fitting tunings
(``pipeline.learning.CrossFit``; ``tools/tune_encoder.py --folds K --fold k``), made without
the same sets. ``--dump FILE`` writes every left-out item's out-of-fold matches (theme and
layer) as JSON lines, so a rule applied after classification can be judged on them in seconds.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Literal

from models.encoder_tuning import tuning_from_json
from models.learned import ModelSet, encoder_text
from pipeline.encoder import CrossFit, E5Encoder, Encoder, encode_items
from pipeline.learning import (
    Example,
    Scores,
    TrainParams,
    examples_from_jsonl,
    train_models,
    trained_indexes,
)
from tests.scoring import (
    ROOT,
    TEST_SPLITS,
    classify_rows,
    decide_rows,
    load_rows,
    score_rows,
    shipped,
)

DATA = ROOT / "tests" / "data"
BASE = "classification_eval"  # the older items: always in training (not one labeller's set)
VALIDATION = "blind_F"
FOLD_LAYERS = ("combined", "both")  # rules OR model; the matches both layers agree on
HELD_OUT = TEST_SPLITS  # never read here


def training_sets() -> list[str]:
    """The blind sets of the training split, in the order of ``tests/test_learned_eval``."""
    names = sorted(p.stem for p in DATA.glob("blind_*.jsonl"))
    return [n for n in names if n != VALIDATION and n not in HELD_OUT]


def _examples(name: str) -> list[Example]:
    """A set's items as training reads them (real items too, by their ``url``)."""
    path = DATA / f"{name}.jsonl"
    return examples_from_jsonl(path.read_text(encoding="utf-8"), where=str(path))


class TableEncoder:
    """An encoder's vectors looked up by text (computed once for all sets)."""

    def __init__(self, name: str, table: dict[str, tuple[float, ...]]) -> None:
        self.name = name
        self.table = table

    def encode(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        return [self.table[t] for t in texts]


def encoded(encoder: Encoder, names: Sequence[str]) -> TableEncoder:
    texts = {
        encoder_text(e.title, e.summary): (e.title, e.summary) for n in names for e in _examples(n)
    }
    vectors = encode_items(encoder, list(texts.values()))
    return TableEncoder(encoder.name, {t: v.values for t, v in zip(texts, vectors, strict=True)})


def left_out(
    name: str,
    sets: Sequence[str],
    encoder: TableEncoder | None = None,
    cross_fit: CrossFit | None = None,
    params: TrainParams | None = None,
    dump: list[dict[str, object]] | None = None,
) -> dict[str, dict[str, Scores]]:
    """Per theme, the shipped combination (``tests.scoring.score_rows``) on ``name`` (sets
    joined by commas: together) after training without it, under "combined"; under "both",
    the matches both layers agree on (the sure ones, ``/alerts sure``)."""
    matcher, _, slugs = shipped()

    def rules(title: str, summary: str) -> set[str]:
        return {m.slug for m in matcher.classify(title, summary)}

    names = name.split(",")
    training = [e for n in (BASE, *sets) if n not in names for e in _examples(n)]
    trained = train_models(
        slugs,
        training,
        _examples(VALIDATION),
        rules=rules,
        encoder=encoder,
        params=params,
        cross_fit=cross_fit,
    )
    models = ModelSet(t.model for t in trained)
    rows = [r for n in names for r in load_rows(DATA / f"{n}.jsonl")]
    indexes = trained_indexes(trained)
    scores = score_rows(rows, matcher, models, slugs, encoder=encoder, indexes=indexes)
    if dump is not None:
        found = classify_rows(rows, matcher, models, encoder=encoder, indexes=indexes)
        decided = decide_rows(rows, models, encoder=encoder, indexes=indexes)
        for row, matches, decisions in zip(rows, found, decided, strict=True):
            dump.append(
                {
                    **row,
                    "fold": name,
                    "found": [[m.slug, m.layer] for m in matches],
                    "rules": sorted(
                        {m.slug for m in matcher.classify(row["title"], row["summary"])}
                    ),
                    "decisions": {s: [round(p, 5), round(t, 5)] for s, (p, t) in decisions.items()},
                }
            )
    return {layer: {slug: scores[layer][slug] for slug in slugs} for layer in FOLD_LAYERS}


def _left_out_dumped(
    name: str,
    sets: Sequence[str],
    encoder: TableEncoder | None,
    cross_fit: CrossFit | None,
    params: TrainParams | None,
    dump: bool,
) -> tuple[dict[str, dict[str, Scores]], list[dict[str, object]]]:
    """``left_out``, and with ``dump`` every left-out item's matches (``--dump``)."""
    items: list[dict[str, object]] = []
    return left_out(name, sets, encoder, cross_fit, params, items if dump else None), items


def _row(label: str, s: Scores) -> str:
    return f"{label:<26} P {s.precision:.3f} R {s.recall:.3f} F1 {s.f1:.3f}"


def _line(label: str, combined: Scores, both: Scores) -> str:
    return (
        f"{_row(label, combined)} | both layers P {both.precision:.3f} R {both.recall:.3f} "
        f"({both.tp} right, {both.fp} false)"
    )


def _micro(themes: Mapping[str, Scores]) -> Scores:
    total = Scores()
    for s in themes.values():
        total = total + s
    return total


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--encoder", choices=["e5", "off"], default="e5")
    parser.add_argument("--no-neighbours", action="store_true", help="the two heads alone")
    left_out_sets = parser.add_mutually_exclusive_group()
    left_out_sets.add_argument("--group", help="leave these sets (comma-separated) out together")
    parser.add_argument("--tuning", type=Path, help="an encoder tuning made without the group")
    parser.add_argument("--fold-tunings", help="cross-fitting tunings (comma-separated files)")
    left_out_sets.add_argument(
        "--only", help="leave out only these sets, one at a time (comma-separated)"
    )
    parser.add_argument(
        "--real-weight", type=float, help="TrainParams.real_weight (default: its own)"
    )
    parser.add_argument(
        "--threshold-pool",
        choices=["all", "real"],
        nargs="+",
        help="TrainParams.threshold_pool; two values compare them on the same folds and vectors",
    )
    parser.add_argument("--objective", choices=["f1", "min_pr"], help="TrainParams.objective")
    parser.add_argument("--dump", type=Path, help="write each left-out item's matches here")
    args = parser.parse_args(argv)
    params = TrainParams(neighbours=not args.no_neighbours)
    if args.real_weight is not None:
        params = replace(params, real_weight=args.real_weight)
    if args.objective:
        params = replace(params, objective=args.objective)
    pools: list[Literal["all", "real"]] = args.threshold_pool or [params.threshold_pool]
    variants = {pool: replace(params, threshold_pool=pool) for pool in pools}
    sets = training_sets()
    tuning = tuning_from_json(args.tuning.read_text(encoding="utf-8")) if args.tuning else None
    found = E5Encoder(tuning=tuning) if args.encoder == "e5" else None
    table = encoded(found, [BASE, VALIDATION, *sets]) if found else None
    cross_fit = None
    if found and args.fold_tunings:
        fold_tunings = [
            tuning_from_json(Path(f).read_text(encoding="utf-8"))
            for f in args.fold_tunings.split(",")
        ]
        cross_fit = CrossFit([encoded(E5Encoder(tuning=t), [BASE, *sets]) for t in fold_tunings])
    folds = [args.group] if args.group else args.only.split(",") if args.only else sets
    # variant → layer ("combined", "both") → theme → scores over the folds
    per_theme: dict[str, dict[str, dict[str, Scores]]] = {
        pool: {layer: {} for layer in FOLD_LAYERS} for pool in variants
    }
    with ProcessPoolExecutor(args.jobs) as executor:
        running = {
            executor.submit(
                _left_out_dumped, name, sets, table, cross_fit, variant, bool(args.dump)
            ): (name, pool)
            for name in folds  # a fold's variants side by side, so they finish together
            for pool, variant in variants.items()
        }
        # Each fold is a whole training (about 2.5 minutes a pair on two idle cores): print it
        # when it is done, so that a run stopped early still says what its folds measured.
        for done in as_completed(running):
            name, chosen = running[done]
            result, items = done.result()
            if args.dump:
                with args.dump.open("a", encoding="utf-8") as out:
                    for item in items:
                        out.write(
                            json.dumps({**item, "variant": chosen}, ensure_ascii=False) + "\n"
                        )
            for layer, themes in result.items():
                for slug, s in themes.items():
                    summed = per_theme[chosen][layer]
                    summed[slug] = summed.get(slug, Scores()) + s
            label = f"{name} [{chosen}]" if len(variants) > 1 else name
            print(_line(label, _micro(result["combined"]), _micro(result["both"])), flush=True)
    for variant_name, layers in per_theme.items():
        for slug, s in layers["combined"].items():
            label = f"{slug} [{variant_name}]" if len(variants) > 1 else slug
            print(_line(label, s, layers["both"][slug]))
        label = f"micro [{variant_name}]" if len(variants) > 1 else "micro"
        print(_line(label, _micro(layers["combined"]), _micro(layers["both"])))


if __name__ == "__main__":
    main()
