"""The digest tick against a real database: scheduled on each subscriber's clock, built from
the items since the last digest, unique per period even with two ticks at once, and an empty
digest only for those who asked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.tables import Subscriber
from pipeline.digests import run_digest_tick
from tests.conftest import Database
from tests.delivery_world import (
    add_items,
    add_source,
    add_subscriber,
    add_theme,
    deliveries,
    match,
    subscribe,
)


async def by_chat(session: AsyncSession) -> dict[int, Subscriber]:
    return {s.chat_id: s for s in (await session.scalars(select(Subscriber))).all()}


MONDAY = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)  # 10:00 in New York (EDT since Sunday)


async def test_daily_digest_on_the_subscribers_clock_once_per_period(db: Database) -> None:
    async with db.sessions.begin() as session:
        source = await add_source(session)
        export = await add_theme(session, "export-controls", "US export controls")
        china = await add_theme(session, "china-ai-rules", "China AI rules")
        reader = await add_subscriber(
            session, 1, timezone="America/New_York", digest_mode="daily", digest_time="08:00"
        )
        await add_subscriber(session, 2, digest_mode="daily", digest_time="08:00")
        keen = await add_subscriber(
            session, 3, digest_mode="weekly", digest_weekday=1, digest_send_empty=True
        )
        await subscribe(session, reader, export, mode="digest")
        await subscribe(session, reader, china)
        result = await add_items(
            session,
            source,
            ["Entity List additions", "Chip rule"],
            MONDAY,
            fields={"effective_on": "2026-03-12"},
        )
        await match(session, result, export, ["Entity List"], MONDAY)
        other = await add_items(session, source, ["生成式人工智能服务备案"], MONDAY, prefix="cac")
        await match(session, other, china, ["生成式人工智能服务"], MONDAY)

    report = await run_digest_tick(db, MONDAY)
    assert (report.scheduled, report.enqueued) == (3, 0)
    async with db.sessions() as session:
        due = {chat: s.next_digest_at for chat, s in (await by_chat(session)).items()}
    assert due == {
        1: datetime(2026, 3, 10, 12, 0, tzinfo=UTC),  # 08:00 EDT
        2: datetime(2026, 3, 10, 8, 0, tzinfo=UTC),
        3: datetime(2026, 3, 10, 8, 0, tzinfo=UTC),  # Tuesday
    }

    tuesday = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)
    reports = await asyncio.gather(run_digest_tick(db, tuesday), run_digest_tick(db, tuesday))
    assert sum(r.enqueued for r in reports) == 2  # reader and keen; quiet's digest is empty

    async with db.sessions() as session:
        rows = await deliveries(session)
        subs = await by_chat(session)
    assert sorted((r.subscriber_id, r.kind, r.dedupe_key) for r in rows) == [
        (reader.id, "digest", "digest:2026-03-10T12:00:00+00:00"),
        (keen.id, "digest", "digest:2026-03-10T08:00:00+00:00"),
    ]
    text = next(r for r in rows if r.subscriber_id == reader.id).payload["messages"][0]["text"]
    assert text.startswith("<b>Daily digest · 2026-03-10</b> (America/New_York)")
    assert "3 events in 2 themes" in text
    assert "<b>US export controls</b> (2)" in text
    assert "<b>China AI rules</b> (1)" in text
    assert "2026-03-12 effective" in text
    keen_text = next(r for r in rows if r.subscriber_id == keen.id).payload["messages"][0]["text"]
    assert "Nothing new matched your themes." in keen_text
    assert subs[1].next_digest_at == datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
    assert subs[1].last_digest_at == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert subs[2].next_digest_at == datetime(2026, 3, 11, 8, 0, tzinfo=UTC)
    assert subs[3].next_digest_at == datetime(2026, 3, 17, 8, 0, tzinfo=UTC)

    # the next day's digest covers only what came after the first one
    async with db.sessions.begin() as session:
        newer = await add_items(session, source, ["Later rule"], tuesday, prefix="later")
        await match(session, newer, export, ["export controls"], tuesday + timedelta(hours=1))
    await run_digest_tick(db, datetime(2026, 3, 11, 12, 1, tzinfo=UTC))
    async with db.sessions() as session:
        rows = await deliveries(session)
    wednesday = next(r for r in rows if r.dedupe_key == "digest:2026-03-11T12:00:00+00:00")
    text = wednesday.payload["messages"][0]["text"]
    assert "1 event in 1 theme" in text
    assert "Later rule" in text
    assert "Entity List additions" not in text.split("Upcoming")[0]
