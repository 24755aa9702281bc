"""Fan-out benchmark: 1,000 subscribers receive one alert through the fake Bot API.

The alert is planned by the real planning hook (one new item matching a theme that every
subscriber follows), then the notifier drains the outbox through python-telegram-bot to the
loopback fake Bot API, which enforces Telegram's limits (30 msg/s overall, 1 msg/s per chat).

Prints the achieved send rate as a share of the configured ceiling (goal ≥ 0.9), the 429s
provoked (goal 0) and the duplicates (must be 0). ``python -m bench.fanout [subscribers] [rate]``
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from delivery.notifier import Notifier, NotifierConfig
from delivery.senders import TelegramSender
from models.db import UnitOfWork
from models.db.engine import make_engine, make_session_factory
from models.db.migrate import upgrade
from models.db.outbox import Outbox
from models.timeutil import utcnow
from pipeline.planning import plan_new_items
from tests.delivery_world import add_items, add_source, add_subscriber, add_theme, match, subscribe
from tests.fakes.telegram import TOKEN, FakeBotAPI, serve_fake_bot_api


async def _run(subscribers: int, rate: float, directory: Path) -> dict[str, float]:
    engine = make_engine(f"sqlite:///{directory / 'bench.db'}")
    try:
        await upgrade(engine)
        sessions = make_session_factory(engine)
        now = utcnow()
        started = time.perf_counter()
        async with sessions.begin() as session:
            source = await add_source(session)
            theme = await add_theme(session, "export-controls", "US export controls")
            for chat in range(1, subscribers + 1):
                await subscribe(session, await add_subscriber(session, chat), theme)
        setup_seconds = time.perf_counter() - started
        started = time.perf_counter()
        async with sessions.begin() as session:
            result = await add_items(session, source, ["Additions to the Entity List"], now)
            await match(session, result, theme, ["Entity List"], now)
            await plan_new_items(UnitOfWork(session), result, now)
        plan_seconds = time.perf_counter() - started

        with serve_fake_bot_api(FakeBotAPI()) as running:
            fake = running.fake
            sender = TelegramSender(TOKEN, running.base_url)
            outbox = Outbox(sessions, worker_id="bench", lease=timedelta(seconds=60))
            notifier = Notifier(outbox, sender, NotifierConfig(rate=rate))
            try:
                started = time.perf_counter()
                report = await notifier.run_once()
                drain_seconds = time.perf_counter() - started
            finally:
                await sender.stop()
            times = sorted(m.at for m in fake.sent)
            copies = Counter(m.chat_id for m in fake.sent)
            span = times[-1] - times[0] if len(times) > 1 else float("nan")
            achieved = (len(times) - 1) / span if len(times) > 1 else 0.0
            return {
                "subscribers": float(subscribers),
                "ceiling_msg_per_s": rate,
                "delivered_chats": float(len(copies)),
                "messages_sent": float(report.messages_sent),
                "achieved_msg_per_s": achieved,
                "share_of_ceiling": achieved / rate,
                "flood_429s": float(fake.flood_errors),
                "duplicates": float(sum(n - 1 for n in copies.values())),
                "drain_seconds": drain_seconds,
                "plan_seconds": plan_seconds,
                "setup_seconds": setup_seconds,
            }
    finally:
        await engine.dispose()


def run(subscribers: int = 1000, rate: float = 25.0) -> dict[str, float]:
    """Run the benchmark once and return its numbers."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as directory:
        return asyncio.run(_run(subscribers, rate, Path(directory)))


def main() -> None:
    args = sys.argv[1:]
    subscribers = int(args[0]) if args else 1000
    rate = float(args[1]) if len(args) > 1 else 25.0
    results = run(subscribers, rate)
    print(f"fan-out: {subscribers} subscribers, one alert each, ceiling {rate:g} msg/s")
    for key, value in results.items():
        print(f"  {key:22} {value:10.3f}")
    ok = (
        results["share_of_ceiling"] >= 0.9
        and results["flood_429s"] == 0
        and results["duplicates"] == 0
        and results["delivered_chats"] == subscribers
    )
    print("  goals (share >= 0.9, 0 429s, 0 duplicates, all delivered):", "met" if ok else "MISSED")


if __name__ == "__main__":
    main()
