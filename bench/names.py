"""Name matching cost: ``models.orgnames.same_org`` per call, on the labelled name pairs and on
queries against a screening-list snapshot's names, with the shipped known organisations and
with editors' additions merged in (``known_with``), as ``/entity`` and watches call it.

    python -m bench.names [--repeat 5]

Each measure is the best of ``--repeat`` rounds (the parse caches are warm after the first, as
in a running service). Also: how long building the merged known organisations takes, which a
lookup pays once per set of editors' additions.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from models.orgnames import EditorsNames, KnownOrgs, known_with, same_org, shipped_known
from scrapers.csl import parse_csl

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "data" / "entities" / "name_pairs.jsonl"
SNAPSHOT = ROOT / "tests" / "data" / "csl" / "csl_snapshot_2.csv"
QUERIES = (
    "寒武纪",
    "Huawei",
    "华为技术有限公司",
    "CETC 38",
    "智谱",
    "Zhipu AI",
    "Acme Widgets",
    "摩尔线程",
    "Inspur",
    "北京百度网讯科技有限公司",
)
# what editors might have added: ten groups, two joining shipped organisations
ADDED = (
    ("宁畅", "Nettrix", "Nettrix Information Industry (Beijing) Co., Ltd."),
    ("寒武纪", "寒武纪科技"),
    ("海光", "海光信息技术股份有限公司"),
    *((f"示例公司{i}", f"Example Holdings {i}") for i in range(8)),
)


def _per_call(pairs: list[tuple[str, str]], known: KnownOrgs, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for a, b in pairs:
            same_org(a, b, known)
        best = min(best, time.perf_counter() - started)
    return best / len(pairs) * 1e6


def _timed(build: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        build()
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def run(repeat: int = 5) -> dict[str, float]:
    labelled = [
        (row["query"], row["candidate"])
        for row in map(json.loads, PAIRS.read_text(encoding="utf-8").splitlines())
    ]
    entries = parse_csl(SNAPSHOT.read_bytes(), {}).entries
    names = [n for e in entries for n in (e.name, *e.alt_names)]
    against = [(q, n) for q in QUERIES for n in names]
    shipped, merged = shipped_known(), known_with(EditorsNames(ADDED))
    return {
        "pairs_us_shipped": _per_call(labelled, shipped, repeat),
        "pairs_us_added": _per_call(labelled, merged, repeat),
        "csl_us_shipped": _per_call(against, shipped, repeat),
        "csl_us_added": _per_call(against, merged, repeat),
        "merge_ms": _timed(lambda: shipped.with_added(ADDED), repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    numbers = run(parser.parse_args().repeat)
    print(
        f"labelled pairs ({PAIRS.name}): {numbers['pairs_us_shipped']:.1f} µs a call shipped, "
        f"{numbers['pairs_us_added']:.1f} µs with editors' additions"
    )
    print(
        f"queries × screening-list names: {numbers['csl_us_shipped']:.1f} µs a call shipped, "
        f"{numbers['csl_us_added']:.1f} µs with editors' additions"
    )
    print(f"merging {len(ADDED)} added groups into the shipped list: {numbers['merge_ms']:.1f} ms")


if __name__ == "__main__":
    main()
