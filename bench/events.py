"""Event assignment cost per item with 10,000 and 100,000 items already stored.

    python -m bench.events [--sizes 10000,100000]

The stored items are the evaluation set's real items (``tests/data/events``), cycled with new
ids and spread evenly at ``PER_DAY`` items a day (so 100,000 items cover about nine years),
stored with their signatures and index keys the way the
assignment stores them (in bulk, to build the table quickly). Then 200 further items are
assigned through ``EventRepository.assign``, one transaction each, as polls do; the benchmark
prints the time per assignment and how many candidate members each one compared with.

Candidates come from a time window of a few keys (``item_keys``), never from a scan of the
items, so the cost follows how many stored items share an anchor within the window (the density
of on-topic news), not the size of the table. Every template is on-topic and they share a small
vocabulary (Nvidia, BIS, the Entity List...), so the density here is pessimistic; ``--per-day``
raises it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from models.db import Database, UnitOfWork
from models.db.events import _key, event_item
from models.db.migrate import upgrade
from models.db.tables import Event, Item, ItemEvent, ItemKey, Source
from models.events import item_from_json, read, window_keys
from models.items import StoredItem, content_hash

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2023, 1, 1, tzinfo=UTC)
PER_DAY = 30
PROBES = 200
BATCH = 2_000
SEED = 11


def templates() -> list[dict[str, Any]]:
    rows = []
    for split in ("dev", "test"):
        path = ROOT / "tests" / "data" / "events" / f"events_{split}.jsonl"
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows


def span(size: int, per_day: int) -> timedelta:
    return timedelta(days=size / per_day)


async def build(db: Database, size: int, per_day: int, rng: random.Random) -> None:
    """``size`` stored items, each its own event, with signatures and keys."""
    base = templates()
    async with db.sessions.begin() as session:
        spec_row = {"name": "bench", "kind": "rss", "url": "https://e.org/", "interval_seconds": 60}
        await session.execute(insert(Source), [spec_row])
    for start in range(0, size, BATCH):
        items, events, links, keys = [], [], [], []
        for n in range(start, min(start + BATCH, size)):
            template = base[n % len(base)]
            when = START + span(size, per_day) * rng.random()
            record = {**template, "url": f"{template['url']}#{n}", "published_at": when.isoformat()}
            signature = read(item_from_json(record))
            item_id = n + 1
            items.append(
                {
                    "id": item_id,
                    "source_id": 1,
                    "external_id": f"e{n}",
                    "url": record["url"],
                    "title": template["title"],
                    "summary": template["summary"],
                    "published_at": when,
                    "first_seen_at": when,
                    "content_hash": content_hash(template["title"], template["summary"]),
                    "fields": template["fields"],
                }
            )
            events.append(
                {"id": item_id, "title": template["title"], "first_at": when, "last_at": when}
            )
            links.append(
                {
                    "item_id": item_id,
                    "event_id": item_id,
                    "reason": "new event",
                    "signature": signature.to_json(),
                    "assigned_at": when,
                }
            )
            hard, soft = window_keys(signature)
            keys += [
                {"item_id": item_id, "key": key, "at": signature.when}
                for key in dict.fromkeys(_key(k) for k in (*hard, *soft))
            ]
        async with db.sessions.begin() as session:
            await session.execute(insert(Item), items)
            await session.execute(insert(Event), events)
            await session.execute(insert(ItemEvent), links)
            await session.execute(insert(ItemKey), keys)


async def probe(db: Database, size: int, per_day: int, rng: random.Random) -> dict[str, float]:
    base = templates()
    seconds: list[float] = []
    compared: list[int] = []
    for n in range(PROBES):
        template = base[rng.randrange(len(base))]
        when = START + span(size, per_day) * rng.random()
        record = {
            **template,
            "url": f"{template['url']}#probe{n}",
            "published_at": when.isoformat(),
        }
        async with db.sessions.begin() as session:
            uow = UnitOfWork(session)
            result = await session.execute(
                insert(Item).returning(Item.id),
                [
                    {
                        "source_id": 1,
                        "external_id": f"probe{n}",
                        "url": record["url"],
                        "title": template["title"],
                        "summary": template["summary"],
                        "published_at": when,
                        "first_seen_at": when,
                        "content_hash": "x",
                        "fields": template["fields"],
                    }
                ],
            )
            item_id = int(result.scalar_one())
            stored = StoredItem(
                id=item_id,
                source_id=1,
                source_name="bench",
                external_id=f"probe{n}",
                title=template["title"],
                url=record["url"],
                summary=template["summary"],
                language=template["language"],
                published_at=when,
                published_at_guessed=False,
                first_seen_at=when,
                content_hash="x",
                fields=item_from_json(record).fields,
            )
            members = await uow.events.candidates(read(event_item(stored)))
            compared.append(len(members))
            started = time.perf_counter()
            await uow.events.assign([stored], when)
            seconds.append(time.perf_counter() - started)
    return {
        f"ms_per_item_{size}": statistics.mean(seconds) * 1000,
        f"p95_ms_{size}": sorted(seconds)[int(0.95 * len(seconds))] * 1000,
        f"compared_{size}": statistics.mean(compared),
    }


async def measure(sizes: list[int], per_day: int) -> dict[str, float]:
    results: dict[str, float] = {}
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            db = Database.connect(f"sqlite:///{folder}/bench.db")
            try:
                await upgrade(db.engine)
                rng = random.Random(SEED)
                started = time.perf_counter()
                await build(db, size, per_day, rng)
                results[f"build_seconds_{size}"] = time.perf_counter() - started
                results.update(await probe(db, size, per_day, rng))
            finally:
                await db.dispose()
    return results


def run(sizes: list[int] | None = None, per_day: int = PER_DAY) -> dict[str, float]:
    return asyncio.run(measure(sizes or [10_000, 100_000], per_day))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--per-day", type=int, default=PER_DAY, help="stored items a day")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    numbers = run(sizes, args.per_day)
    print(f"{args.per_day} on-topic items a day")
    for size in sizes:
        print(
            f"{size:>7,} stored: {numbers[f'ms_per_item_{size}']:.2f} ms per assignment "
            f"(p95 {numbers[f'p95_ms_{size}']:.2f} ms), "
            f"{numbers[f'compared_{size}']:.1f} members compared on average "
            f"(built in {numbers[f'build_seconds_{size}']:.0f} s)"
        )


if __name__ == "__main__":
    main()
