"""How far independent labellers agree with the blind sets' labels: the ceiling any classifier
can be measured against.

    python -m tests.agreement

Compares each relabelling in ``tests/data/agreement/`` with the set's own labels (micro
precision / recall, taking the set's labels as the truth) and the two relabellings of a set with
each other. Not collected by pytest; the numbers are logged in ``classification_eval.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.learning import Scores, score

DATA = Path(__file__).resolve().parent / "data"
PAIRS = (
    ("blind_G.jsonl", "agreement/G_labeller_A.jsonl", "agreement/G_labeller_B.jsonl"),
    ("blind_O.jsonl", "agreement/O_labeller_C.jsonl", "agreement/O_labeller_D.jsonl"),
    ("blind_RW.jsonl", "agreement/RW_labeller_A.jsonl", "agreement/RW_labeller_B.jsonl"),
    ("blind_RT.jsonl", "agreement/RT_labeller_A.jsonl", "agreement/RT_labeller_B.jsonl"),
)


def labels(name: str) -> dict[str, frozenset[str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return {row["id"]: frozenset(row["labels"]) for row in map(json.loads, filter(None, lines))}


def agreement(truth: dict[str, frozenset[str]], other: dict[str, frozenset[str]]) -> Scores:
    if truth.keys() != other.keys():
        msg = "the two labellings cover different items"
        raise ValueError(msg)
    slugs = sorted(set().union(*truth.values(), *other.values()))
    ids = sorted(truth)
    total = Scores()
    for slug in slugs:
        total = total + score([slug in other[i] for i in ids], [slug in truth[i] for i in ids])
    return total


def main() -> None:
    for original, first, second in PAIRS:
        truth, a, b = labels(original), labels(first), labels(second)
        for name, got, ref in (
            (first, a, truth),
            (second, b, truth),
            (f"{second} vs {first}", b, a),
        ):
            s = agreement(ref, got)
            same = sum(ref[i] == got[i] for i in ref)
            print(
                f"{original} {name}: P {s.precision:.3f} R {s.recall:.3f}; "
                f"identical label sets {same}/{len(ref)}"
            )


if __name__ == "__main__":
    main()
