"""Planning benchmark: what reading feedback at planning time costs (wary sources).

A source has ``history`` past model-only matches of a theme, each judged by three chats
(3 × ``history`` feedback rows, two in three 👎, so the pair is wary); 200 chats follow the
theme, one of them with a digest (without any, the planner reads no feedback), so the runs
plan nearly the same alerts and the difference is the cost of reading the feedback. One poll
brings 100 new model-only matches from that source; the planner (the real ``plan_items`` on
SQLite) plans them with ``WaryPolicy`` off and on, each run rolled back, and the median of
five is printed. ``python -m bench.planning [history]``
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from models.alerts import BurstPolicy
from models.db import UnitOfWork
from models.db.engine import make_engine, make_session_factory
from models.db.migrate import upgrade
from models.db.tables import Feedback
from models.feedback import WaryPolicy
from models.items import StoredItem
from pipeline.planning import plan_items
from tests.delivery_world import (
    T0,
    add_items,
    add_source,
    add_subscriber,
    add_theme,
    match,
    subscribe,
)

CHATS = 200
NEW = 100
RUNS = 5


async def _run(history: int, directory: Path) -> dict[str, float]:
    engine = make_engine(f"sqlite:///{directory / 'bench.db'}")
    try:
        await upgrade(engine)
        sessions = make_session_factory(engine)
        async with sessions.begin() as session:
            source = await add_source(session, "wire")
            theme = await add_theme(session, "export-controls")
            chats = []
            for chat in range(1, CHATS + 1):
                extra = {"digest_mode": "daily", "digest_time": "08:00"} if chat == 1 else {}
                sub = await add_subscriber(session, chat, **extra)
                await subscribe(session, sub, theme)
                chats.append(sub.id)
            past = await add_items(
                session, source, [f"past {i}" for i in range(history)], T0, prefix="p"
            )
            await match(session, past, theme, [], T0, layer="model")
            session.add_all(
                Feedback(
                    subscriber_id=chats[k],
                    item_id=item.id,
                    theme_id=theme.id,
                    verdict="down" if n % 3 else "up",
                    created_at=T0,
                    updated_at=T0,
                )
                for n, item in enumerate(past.new)
                for k in range(3)
            )
            later = T0 + timedelta(hours=1)
            new = await add_items(
                session, source, [f"new {i}" for i in range(NEW)], later, prefix="n"
            )
            await match(session, new, theme, [], later, layer="model")
        items: list[StoredItem] = list(new.new)

        async def timed(policy: WaryPolicy) -> tuple[float, int]:
            seconds: list[float] = []
            alerts = 0
            for _ in range(RUNS):
                async with sessions() as session:
                    started = time.perf_counter()
                    plan = await plan_items(
                        UnitOfWork(session), items, later, policy=BurstPolicy(), wary=policy
                    )
                    seconds.append(time.perf_counter() - started)
                    await session.rollback()
                alerts = len(plan.alerts) + len(plan.folds)
            return statistics.median(seconds) * 1000, alerts

        off_ms, off_alerts = await timed(WaryPolicy(min_alerts=0))
        on_ms, on_alerts = await timed(WaryPolicy())
        return {
            "history": float(history),
            "feedback_rows": float(3 * history),
            "plan_ms_wary_off": off_ms,
            "plan_ms_wary_on": on_ms,
            "chats_planned_wary_off": float(off_alerts),
            "chats_planned_wary_on": float(on_alerts),
        }
    finally:
        await engine.dispose()


def run(history: int = 5000) -> dict[str, float]:
    """Run the benchmark once and return its numbers."""
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as directory:
        return asyncio.run(_run(history, Path(directory)))


def main() -> None:
    history = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    results = run(history)
    print(f"planning: {NEW} new unsure matches, {CHATS} chats, {history} judged past alerts")
    for key, value in results.items():
        print(f"  {key:24} {value:10.1f}")


if __name__ == "__main__":
    main()
