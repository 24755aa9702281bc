"""What subscribers' verdicts on a feed's unsure alerts are worth: a simulation of
``models.feedback.WaryPolicy`` on out-of-fold matches of the real training sets.

    python -m tests.loso_themes --only blind_RE,...,blind_SH --dump DUMP   # ~30 minutes
    python -m tests.wary_sim DUMP [--online]

Each real-news set stands for a feed (its queries are one kind of feed, as in
``tests.feedback_sim``); its items are split in halves by a hash of their ids. Every alert of
the first half is judged by its label (👍 for a right theme, 👎 for a wrong one); the policy
decides from those verdicts which of the feed's themes' unsure matches wait for digests, and
the second half is scored: instant alerts' micro precision and recall (recall over every wanted
(item, theme) pair; what waits is in the digest, so nothing is lost), beside every match
instant and sure matches only (``/alerts sure``). ``--online`` instead lets verdicts accrue in
the set's order, an alert held for the digest giving none, and scores every item; it also
scores exploring (``WaryPolicy.explore_every``: one in N of a wary pair's unsure matches alerts
anyway and is judged). Runs in
seconds; not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from models.alerts import is_sure
from models.feedback import AlertVerdicts, WaryPolicy, explores, unsure_record, wary_pairs
from pipeline.learning import Scores
from tests.test_classification_eval import SHIPPED_SLUGS

THEMES = frozenset(SHIPPED_SLUGS)  # a model judges every shipped theme
PRIMARY = WaryPolicy()  # the policy chosen before the simulation was run
GRID = [WaryPolicy(m, f) for m in (3, 5, 8) for f in (0.4, 0.5, 0.6)]
EXPLORE = 4  # one in four of a wary pair's unsure matches alerts anyway (chosen before the run)
EXPLORE_GRID = (2, 3, 4, 6, 8)

Row = dict[str, Any]
Keep = Callable[[str, str, str], bool]  # (feed, theme, layer) -> alert now


def load(path: Path) -> dict[str, list[Row]]:
    """The dump's rows by fold (the first variant only, in the set's order)."""
    folds: dict[str, list[Row]] = {}
    seen: set[tuple[str, str]] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line:
            continue
        row = json.loads(line)
        key = (row["fold"], row["id"])
        if key not in seen:
            seen.add(key)
            folds.setdefault(row["fold"], []).append(row)
    return {fold: sorted(rows, key=lambda r: str(r["id"])) for fold, rows in folds.items()}


def halves(rows: Sequence[Row]) -> tuple[list[Row], list[Row]]:
    split: tuple[list[Row], list[Row]] = ([], [])
    for row in rows:
        split[zlib.crc32(str(row["id"]).encode()) % 2].append(row)
    return split


def verdicts(feed: str, row: Row, keep: Keep) -> list[AlertVerdicts]:
    """The verdicts the row's alerts (the matches ``keep`` alerts now) get from its label."""
    return [
        AlertVerdicts(feed, slug, layer, int(slug in row["labels"]), int(slug not in row["labels"]))
        for slug, layer in row["found"]
        if keep(feed, slug, layer)
    ]


def score(rows: Iterable[Row], feed: str, keep: Keep) -> Scores:
    total = Scores()
    for row in rows:
        wanted = {s for s in row["labels"] if s in THEMES}
        sent = {slug for slug, layer in row["found"] if keep(feed, slug, layer)}
        total = total + Scores(len(sent & wanted), len(sent - wanted), len(wanted - sent))
    return total


def every(feed: str, slug: str, layer: str) -> bool:
    return True


def sure(feed: str, slug: str, layer: str) -> bool:
    return is_sure(layer, True)


def held_by(wary: frozenset[tuple[str, str]], explored: bool = False) -> Keep:
    def keep(feed: str, slug: str, layer: str) -> bool:
        return is_sure(layer, True) or explored or (feed, slug) not in wary

    return keep


def by_halves(folds: Mapping[str, list[Row]], policy: WaryPolicy) -> dict[str, Scores]:
    """Per feed, instant alerts on the second half under ``policy``."""
    out: dict[str, Scores] = {}
    for feed, rows in folds.items():
        judged, scored = halves(rows)
        record = unsure_record(
            (v for row in judged for v in verdicts(feed, row, every)), judged=THEMES
        )
        out[feed] = score(scored, feed, held_by(wary_pairs(record, policy)))
    return out


def online(folds: Mapping[str, list[Row]], policy: WaryPolicy) -> dict[str, Scores]:
    """Per feed, instant alerts over every item, verdicts accruing in the set's order."""
    out: dict[str, Scores] = {}
    for feed, rows in folds.items():
        given: list[AlertVerdicts] = []
        total = Scores()
        for row in rows:
            wary = wary_pairs(unsure_record(given, THEMES), policy)
            keep = held_by(wary, explores(str(row["id"]), policy))
            total = total + score([row], feed, keep)
            given.extend(verdicts(feed, row, keep))
        out[feed] = total
    return out


def plain(folds: Mapping[str, list[Row]], keep: Keep, second_half: bool) -> dict[str, Scores]:
    return {
        feed: score(halves(rows)[1] if second_half else rows, feed, keep)
        for feed, rows in folds.items()
    }


def pooled(per_feed: Mapping[str, Scores]) -> Scores:
    total = Scores()
    for s in per_feed.values():
        total = total + s
    return total


def cell(s: Scores) -> str:
    return f"{s.precision:.3f} / {s.recall:.3f} F1 {s.f1:.3f} ({s.tp}, {s.fp}, {s.fn})"


def changed(base: Mapping[str, Scores], per: Mapping[str, Scores]) -> tuple[int, int]:
    """How many sets' F1 rose and how many fell from ``base`` to ``per``."""
    better = sum(1 for f in base if per[f].f1 > base[f].f1 + 1e-9)
    worse = sum(1 for f in base if per[f].f1 < base[f].f1 - 1e-9)
    return better, worse


def side_by_side(base: Mapping[str, Scores], per: Mapping[str, Scores], indent: str) -> None:
    for name in sorted(base):
        print(f"{indent}{name:<12} {cell(base[name])}  ->  {cell(per[name])}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dump", type=Path)
    parser.add_argument("--online", action="store_true")
    args = parser.parse_args(argv)
    folds = load(args.dump)
    second = not args.online
    run = online if args.online else by_halves
    base = plain(folds, every, second)
    primary = run(folds, PRIMARY)
    print(f"{len(folds)} feeds, {'online' if args.online else 'second halves'}")
    print(f"{'every match instant':<34} {cell(pooled(base))}")
    print(f"{'sure matches only':<34} {cell(pooled(plain(folds, sure, second)))}")
    print(f"{'wary, primary':<34} {cell(pooled(primary))}")
    better, worse = changed(base, primary)
    print(f"  feeds better {better}, worse {worse}, same {len(folds) - better - worse}")
    side_by_side(base, primary, "  ")
    print("sensitivity (not used to choose):")
    for policy in GRID:
        label = f"min {policy.min_alerts}, floor {policy.floor}"
        print(f"  {label:<32} {cell(pooled(run(folds, policy)))}")
    if args.online:
        explore(folds, primary)


def explore(folds: Mapping[str, list[Row]], without: Mapping[str, Scores]) -> None:
    """Online, one in N of a wary pair's unsure matches alerting anyway (N chosen before the
    run: ``EXPLORE``), against the same policy without it."""
    print(f"exploring, one in N of a wary pair's unsure matches alerts (primary N = {EXPLORE}):")
    for every in EXPLORE_GRID:
        per_feed = online(folds, replace(PRIMARY, explore_every=every))
        better, worse = changed(without, per_feed)
        label = f"N = {every}" + (" (primary)" if every == EXPLORE else "")
        print(f"  {label:<32} {cell(pooled(per_feed))}  feeds better {better}, worse {worse}")
        if every == EXPLORE:
            side_by_side(without, per_feed, "    ")


if __name__ == "__main__":
    main()
