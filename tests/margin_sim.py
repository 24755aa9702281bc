"""What a margin on the learned model's own matches is worth: matches the watchlist does not
make need the model's probability to clear its threshold by ``margin``
(``ModelSet.decisions``), judged out of fold on the real training sets.

    python -m tests.loso_themes --only blind_RE,...,blind_SH --dump DUMP   # ~45 minutes
    python -m tests.margin_sim DUMP

The dump holds, for every left-out item, its matches (theme, layer) and every theme's
(probability, threshold). A margin only removes model-only matches whose probability is under
threshold + margin, so each margin is scored in milliseconds: pooled micro precision and
recall over the shipped themes, and per set (each a kind of feed). Not collected by pytest.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from pipeline.learning import Scores
from tests.test_classification_eval import SHIPPED_SLUGS
from tests.wary_sim import Row, cell, changed, load, pooled, side_by_side

THEMES = frozenset(SHIPPED_SLUGS)
PRIMARY = 0.10  # chosen on RW (development) in an earlier session, before the run; not adopted
GRID = (0.0, 0.05, 0.10, 0.15, 0.20)


def kept(row: Row, margin: float) -> set[str]:
    """The row's matches with ``margin`` on the model's own ones."""
    out: set[str] = set()
    for slug, layer in row["found"]:
        p, threshold = row["decisions"].get(slug, (1.0, 0.0))
        if layer != "model" or p >= threshold + margin:
            out.add(slug)
    return out


def score(rows: Sequence[Row], margin: float) -> Scores:
    total = Scores()
    for row in rows:
        wanted = {s for s in row["labels"] if s in THEMES}
        got = kept(row, margin) & THEMES
        total = total + Scores(len(got & wanted), len(got - wanted), len(wanted - got))
    return total


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dump", type=Path)
    args = parser.parse_args(argv)
    folds = load(args.dump)
    base = {f: score(rows, 0.0) for f, rows in folds.items()}
    print(f"{len(folds)} sets, {sum(len(r) for r in folds.values())} items")
    for margin in GRID:
        per = {f: score(rows, margin) for f, rows in folds.items()}
        better, worse = changed(base, per)
        label = f"margin {margin:.2f}" + (" (primary)" if margin == PRIMARY else "")
        print(f"{label:<22} {cell(pooled(per))}  sets better {better}, worse {worse}")
        if margin == PRIMARY:
            side_by_side(base, per, "    ")


if __name__ == "__main__":
    main()
