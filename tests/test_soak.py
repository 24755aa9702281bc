"""Soak: six simulated hours compressed into a bounded run over loopback servers — 100 sources,
500 subscribers (some on daily digests), news arriving every five minutes and polled every
fifteen, a few items matching
the themes. The process's memory must stay flat and the outbox must drain.

The clock is simulated (the services take it as a parameter); HTTP, SQLite, the notifier's
pacing and the fake Bot API's flood limits are all real.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median

import pytest
from sqlalchemy import func, select

from models.db.sources import SourceRepository
from models.db.tables import Delivery, Item, Subscriber, Subscription, Theme
from models.db.themes import ThemeRepository
from models.sources import SourceSpec
from pipeline.digests import run_digest_tick
from policywatch.app import build_services
from policywatch.config_files import load_theme_specs
from policywatch.settings import Settings
from tests.conftest import Database
from tests.fakes.feeds import FeedServer, Route
from tests.fakes.telegram import TOKEN, RunningFake
from tests.test_e2e import rss

ROOT = Path(__file__).resolve().parents[1]
SOURCES, SUBSCRIBERS, DIGESTERS = 100, 500, 100
STEP, STEPS = timedelta(minutes=5), 72  # six hours
POLL_EVERY = timedelta(minutes=15)
START = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
MATCHING = {  # step → a headline the default themes match (about one an hour and a half)
    6: "BIS adds 12 Chinese AI chip firms to the Entity List",
    24: "CAC publishes new batch of generative AI service filings (生成式人工智能服务已备案信息)",
    42: "Huawei Ascend 910C production ramps up at SMIC",
    60: "US Commerce tightens export controls on HBM to China",
}


def rss_time(at: datetime) -> str:
    return at.strftime("%a, %d %b %Y %H:%M:%S +0000")


def rss_kib() -> int:
    with Path("/proc/self/statm").open() as statm:
        pages = int(statm.read().split()[1])
    return pages * 4


class SimClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_six_hours_of_traffic(db: Database, feeds: FeedServer, telegram: RunningFake) -> None:
    rng = random.Random(2026)
    clock = SimClock()
    stories: dict[int, list[tuple[str, str, str]]] = {n: [] for n in range(SOURCES)}
    version: Counter[int] = Counter()

    def publish(n: int, title: str) -> None:
        stories[n].insert(0, (title, f"s{n}-{len(stories[n])}", rss_time(clock.now)))
        del stories[n][20:]  # a feed shows its latest 20 stories
        version[n] += 1
        feeds.routes[f"/f{n}.xml"] = Route(body=rss(*stories[n]), etag=f'"{version[n]}"')

    for n in range(SOURCES):
        publish(n, f"Local weather report {n}")
    async with db.sessions.begin() as session:
        await ThemeRepository(session).sync_from_config(
            load_theme_specs(ROOT / "config" / "themes.yaml"), clock.now
        )
        specs = [
            SourceSpec(f"feed-{n}", "rss", feeds.url(f"/f{n}.xml"), int(POLL_EVERY.total_seconds()))
            for n in range(SOURCES)
        ]
        await SourceRepository(session).sync_from_config(specs, clock.now)
        themes = {t.slug: t.id for t in (await session.scalars(select(Theme))).all()}
        for n in range(SUBSCRIBERS):
            digest = n < DIGESTERS
            sub = Subscriber(
                chat_id=100_000 + n,
                chat_type="private",
                user_id=100_000 + n,
                timezone=rng.choice(["UTC", "Asia/Shanghai", "America/New_York"]),
                digest_mode="daily" if digest else "off",
                digest_time=f"{rng.randrange(24):02d}:00" if digest else None,
            )
            session.add(sub)
            await session.flush()
            for slug in rng.sample(sorted(themes), k=rng.randint(1, 3)):
                mode = "digest" if digest else "instant"
                session.add(Subscription(subscriber_id=sub.id, theme_id=themes[slug], mode=mode))

    settings = Settings(
        POLICYWATCH_DATABASE_URL=db.url,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=telegram.base_url,
        POLICYWATCH_ALLOW_PRIVATE_SOURCES=True,
    )
    memory: list[int] = []
    async with build_services(settings, clock=clock) as services:
        await services.warm_up()  # as ``policywatch run`` does before its first tick
        for step in range(STEPS):
            clock.now += STEP
            for n in rng.sample(range(SOURCES), k=20):  # a fifth of the feeds publish
                publish(n, f"Market wrap {step}-{n}: stocks, weather and sports")
            if step in MATCHING:
                publish(rng.randrange(SOURCES), MATCHING[step])
            summaries = await services.poll()
            assert all(s.status != "failed" for s in summaries), [s.line() for s in summaries]
            await run_digest_tick(services.db, clock.now)
            await services.notifier.run_once()
            memory.append(rss_kib())

        async with services.db.sessions() as session:
            statuses = dict(
                (
                    await session.execute(
                        select(Delivery.status, func.count()).group_by(Delivery.status)
                    )
                ).all()
            )
            items = await session.scalar(select(func.count()).select_from(Item))
    fake = telegram.fake
    # The outbox drained: nothing pending or failed, everything sent (or folded into a summary).
    assert set(statuses) <= {"sent", "folded"}, statuses
    assert statuses["sent"] == len(fake.sent) > 300
    # The fake Bot API runs in this process and stamps arrivals under the GIL contention of
    # the soak itself, so a 1.05 s per-chat gap can arrive as 0.99 s. A rare 429 is allowed:
    # what matters is that it was rescheduled and delivered (counted above), never lost.
    assert fake.flood_errors <= len(fake.sent) // 100
    assert len({(m.chat_id, m.text) for m in fake.sent}) == len(fake.sent)  # no repeats
    assert items is not None
    assert items > 1000
    # Memory stays flat: the last hours use no more than the early hours (after warm-up).
    early, late = median(memory[8:24]), median(memory[-16:])
    print("soak:", len(fake.sent), "messages,", items, "items; RSS KiB early", early, "late", late)
    assert late - early < 20_000, (early, late, memory)
