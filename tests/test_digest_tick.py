"""The digest tick against a real database: scheduled on each subscriber's clock, built from
the items since the last digest, unique per period even with two ticks at once, and an empty
digest only for those who asked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.queries import DIGEST_ROWS
from models.db.tables import Subscriber, Theme
from models.sources import SourceSpec
from pipeline.classification import Classifier
from pipeline.digests import run_digest_tick
from pipeline.ingest import AlertPolicy, pipeline_hooks
from pipeline.polling import Poller
from policywatch.app import fetch_config, poll_config
from policywatch.settings import Settings
from scrapers.http import Fetcher, build_http_client
from tests.conftest import Database
from tests.delivery_world import (
    Clock,
    add_items,
    add_source,
    add_subscriber,
    add_theme,
    deliveries,
    match,
    subscribe,
)
from tests.fakes.feeds import Route, feed_server
from tests.test_classification import THEMES
from tests.test_polling import feed


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


DUE = datetime(2026, 7, 28, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("digest_during", ["fetch", "store"])
async def test_a_match_stored_while_a_digest_is_built_goes_in_exactly_one_digest(
    db: Database, digest_during: str
) -> None:
    """A poll that starts at 07:59:58 and stores its matches after the 08:00 digest was built
    (its fetch was slow), or while it is built: the match is in the next digest, not lost
    between the two."""
    clock = Clock(DUE - timedelta(hours=2))
    settings = Settings.model_validate(
        {"POLICYWATCH_DATABASE_URL": db.url, "POLICYWATCH_ALLOW_PRIVATE_SOURCES": True}
    )
    async with db.transaction() as uow:
        await uow.themes.sync_from_config(THEMES, clock.now)
    async with db.sessions.begin() as session:
        reader = await add_subscriber(session, 1, digest_mode="daily", digest_time="08:00")
        theme = await session.scalar(select(Theme).where(Theme.slug == "export-controls"))
        assert theme is not None
        await subscribe(session, reader, theme, mode="digest")
    await run_digest_tick(db, clock.now)  # schedules the 08:00 digest
    built: list[asyncio.Task[object]] = []
    armed = False

    async def digest_meanwhile(*_: object) -> None:
        if not armed:
            return
        clock.now = DUE + timedelta(seconds=10)
        built.append(asyncio.create_task(run_digest_tick(db, clock.now)))
        if digest_during == "fetch":
            await built[-1]  # built before the store begins
        else:
            await asyncio.sleep(0.2)  # the store's transaction is open meanwhile

    with feed_server() as server:
        server.routes["/f.xml"] = Route(feed("Football results"))
        async with db.transaction() as uow:
            spec = SourceSpec(name="f", kind="rss", url=server.url("/f.xml"), interval_seconds=60)
            await uow.sources.sync_from_config([spec], clock.now)
        async with build_http_client(fetch_config(settings)) as client:
            fetcher = Fetcher(client, fetch_config(settings))
            hooks = pipeline_hooks(Classifier(None), AlertPolicy(max_age=None))
            during = (digest_meanwhile,)
            poller = Poller(
                db,
                fetcher,
                poll_config(settings),
                clock,
                hooks=hooks if digest_during == "fetch" else (*hooks, digest_meanwhile),
                before_store=during if digest_during == "fetch" else (),
            )
            await poller.poll_due(due_only=False)  # the first poll: history
            server.routes["/f.xml"] = Route(
                feed("Football results", "Commerce adds 12 firms to the Entity List")
            )
            clock.now = DUE - timedelta(seconds=2)
            armed = True
            (summary,) = await poller.poll_due(due_only=False)
            assert summary.new == 1
            await asyncio.gather(*built)
    await run_digest_tick(db, DUE + timedelta(days=1, seconds=10))
    async with db.sessions() as session:
        digests = [d for d in await deliveries(session) if d.kind == "digest"]
    texts = ["".join(m["text"] for m in d.payload["messages"]) for d in digests]
    assert sum("Entity List" in t for t in texts) == 1, texts


async def test_a_rule_taking_effect_soon_is_listed_however_much_news_came_since(
    db: Database,
) -> None:
    """The digest's "upcoming" dates come from regulatory documents of the last 120 days; a
    busy news beat (more matches than a digest reads) must not push a rule out of it."""
    due = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    published = due - timedelta(days=60)
    async with db.sessions.begin() as session:
        fr = await add_source(session)
        news = await add_source(session, "reuters", kind="rss")
        export = await add_theme(session, "export-controls", "US export controls")
        reader = await add_subscriber(
            session,
            5,
            digest_mode="daily",
            digest_time="08:00",
            last_digest_at=due - timedelta(days=1),
            next_digest_at=due,
        )
        await subscribe(session, reader, export)
        effective = (due + timedelta(days=3)).date().isoformat()
        rule = await add_items(
            session,
            fr,
            ["Final rule: advanced computing items"],
            published,
            fields={"effective_on": effective},
            prefix="rule",
        )
        await match(session, rule, export, ["advanced computing"], published)
        stories = await add_items(
            session,
            news,
            [f"Entity List story {i}" for i in range(DIGEST_ROWS)],
            published + timedelta(days=1),
            prefix="news",
        )
        await match(session, stories, export, ["Entity List"], published + timedelta(days=1))
    await run_digest_tick(db, due + timedelta(seconds=5))
    async with db.sessions() as session:
        [digest] = [d for d in await deliveries(session) if d.kind == "digest"]
    text = "".join(m["text"] for m in digest.payload["messages"])
    assert "advanced computing items" in text
    assert effective in text
