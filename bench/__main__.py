"""``make bench``: run every benchmark and print one summary table.

Each benchmark module exposes ``run() -> dict[str, float]`` (its headline numbers) and ``main()``
(its own detailed report). Benchmarks are measurements, not tests: nothing here asserts timing.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    benchmark: str
    metric: str
    key: str
    goal: str
    fmt: Callable[[float], str]


def _f(digits: int) -> Callable[[float], str]:
    return lambda v: f"{v:,.{digits}f}"


ROWS: dict[str, list[Row]] = {
    "bench.ingest": [
        Row("ingest", "poll --once, 200 feeds × 50 items (s)", "poll_once_seconds", "", _f(2)),
        Row("ingest", "bare httpx + feedparser loop (s)", "bare_seconds", "", _f(2)),
        Row("ingest", "ratio pipeline / floor", "ratio", "≤ 1.5", _f(2)),
        Row("ingest", "start-up alone, no sources (s)", "startup_seconds", "", _f(2)),
        Row("ingest", "ratio with migrate + seed from an empty file", "cold_ratio", "", _f(2)),
        Row("ingest", "second pass (s)", "second_run_seconds", "", _f(2)),
        Row("ingest", "second pass: 304 answers", "second_run_304s", "200", _f(0)),
        Row("ingest", "second pass: items stored", "second_run_items_stored", "0", _f(0)),
    ],
    "bench.classify": [
        Row("classify", "engine items/s (5,000 terms)", "engine_items_per_s", "", _f(0)),
        Row("classify", "naive regex items/s", "naive_items_per_s", "", _f(0)),
        Row("classify", "speed-up", "ratio", "", _f(1)),
        Row(
            "classify",
            "shipped themes (boolean rules) items/s",
            "shipped_themes_items_per_s",
            "",
            _f(0),
        ),
        Row(
            "classify",
            "shipped themes + learned models items/s",
            "shipped_with_models_items_per_s",
            "",
            _f(0),
        ),
    ],
    "bench.events": [
        Row("events", "assignment, 10,000 stored (ms/item)", "ms_per_item_10000", "", _f(2)),
        Row("events", "assignment, 100,000 stored (ms/item)", "ms_per_item_100000", "", _f(2)),
        Row("events", "members compared, 100,000 stored", "compared_100000", "", _f(1)),
    ],
    "bench.names": [
        Row("names", "same_org, labelled pairs (µs/call)", "pairs_us_shipped", "", _f(1)),
        Row("names", "same, with editors' additions (µs/call)", "pairs_us_added", "", _f(1)),
        Row("names", "same_org, queries × list names (µs/call)", "csl_us_shipped", "", _f(1)),
        Row("names", "merging 11 added groups (ms)", "merge_ms", "", _f(1)),
    ],
    "bench.planning": [
        Row("planning", "100 unsure matches, wary off (ms)", "plan_ms_wary_off", "", _f(1)),
        Row("planning", "same, wary on, 15,000 verdicts (ms)", "plan_ms_wary_on", "", _f(1)),
    ],
    "bench.fanout": [
        Row("fan-out", "chats reached (of 1,000)", "delivered_chats", "1,000", _f(0)),
        Row("fan-out", "achieved msg/s (ceiling 25)", "achieved_msg_per_s", "", _f(1)),
        Row("fan-out", "share of the ceiling", "share_of_ceiling", "≥ 0.90", _f(3)),
        Row("fan-out", "429s provoked", "flood_429s", "0", _f(0)),
        Row("fan-out", "duplicates", "duplicates", "0", _f(0)),
    ],
}


def main() -> None:
    machine = f"{platform.node()}, {platform.machine()}, Python {platform.python_version()}"
    print(f"PolicyWatch benchmarks — {machine}")
    results: list[tuple[Row, str]] = []
    for module_name, rows in ROWS.items():
        started = time.perf_counter()
        try:
            module = importlib.import_module(module_name)
            numbers: dict[str, float] = module.run()
        except Exception as exc:  # a broken benchmark is reported, the others still run
            print(f"{module_name}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            results.extend((row, "failed") for row in rows)
            continue
        print(f"{module_name}: done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        for row in rows:
            value = numbers.get(row.key)
            results.append((row, row.fmt(value) if value is not None else "n/a"))
    width = max(len(r.metric) for r, _ in results)
    print()
    print(f"| benchmark | {'metric'.ljust(width)} | value | goal |")
    print(f"|---|{'-' * (width + 2)}|---:|---|")
    for row, shown in results:
        print(f"| {row.benchmark} | {row.metric.ljust(width)} | {shown} | {row.goal} |")


if __name__ == "__main__":
    main()
