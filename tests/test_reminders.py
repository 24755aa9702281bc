"""Deadline reminders (7 days and 1 day before, in each chat's zone, never twice) and the
``/upcoming`` calendar file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlalchemy import select

from models.db.tables import (
    Delivery,
    Item,
    ItemTheme,
    Reminder,
    Source,
    Subscriber,
    Subscription,
    Theme,
)
from models.items import ItemData
from models.reminders import DatedDocument, due_at, plan_reminders, still_worth_sending
from pipeline.reminders import run_reminder_tick
from scrapers.cac import parse_cac_article
from tests.botkit import NOW, USER, BotHarness, bot_harness
from tests.conftest import Database

DATA = Path(__file__).parent / "data"
DEADLINE = date(2026, 10, 20)


def test_a_reminder_is_at_nine_in_the_chats_zone() -> None:
    assert due_at(DEADLINE, 7, "Asia/Shanghai") == datetime(2026, 10, 13, 1, 0, tzinfo=UTC)
    assert due_at(DEADLINE, 1, "America/New_York") == datetime(2026, 10, 19, 13, 0, tzinfo=UTC)
    assert due_at(DEADLINE, 1, "Not/AZone") == datetime(2026, 10, 19, 9, 0, tzinfo=UTC)


def test_planning_skips_what_has_passed_and_dedupes_chats() -> None:
    docs = [DatedDocument(1, "comments", DEADLINE, (10, 11))]
    audience = {10: [(5, "UTC")], 11: [(5, "UTC"), (6, "Asia/Shanghai")]}
    early = plan_reminders(docs, audience, datetime(2026, 10, 1, tzinfo=UTC))
    assert sorted((p.subscriber_id, p.lead_days) for p in early) == [(5, 1), (5, 7), (6, 1), (6, 7)]
    late = plan_reminders(docs, audience, datetime(2026, 10, 16, tzinfo=UTC))
    assert sorted((p.subscriber_id, p.lead_days) for p in late) == [(5, 1), (6, 1)]
    assert not still_worth_sending(DEADLINE, 7, "UTC", datetime(2026, 10, 19, 9, tzinfo=UTC))
    assert still_worth_sending(DEADLINE, 1, "UTC", datetime(2026, 10, 19, 9, tzinfo=UTC))
    assert not still_worth_sending(DEADLINE, 1, "UTC", datetime(2026, 10, 21, tzinfo=UTC))


async def seed(
    db: Database,
    *,
    on: date,
    zone: str = "Asia/Shanghai",
    kind: str = "federal_register",
    document: ItemData | None = None,
) -> None:
    """A chat following a theme that matched a dated document: by default a Federal Register
    rule whose comments close ``on``; or ``document``, stored from a source of ``kind``."""
    async with db.sessions.begin() as session:
        theme = Theme(slug="export-controls", title="US export controls")
        other = Theme(slug="other", title="Other")
        fr = Source(name="fr", kind=kind, url="https://fr.example/", interval_seconds=60)
        chat = Subscriber(chat_id=USER, chat_type="private", user_id=USER, timezone=zone)
        stranger = Subscriber(chat_id=777, chat_type="private", user_id=777)
        session.add_all([theme, other, fr, chat, stranger])
        await session.flush()
        doc = Item(
            source_id=fr.id,
            external_id=document.external_id if document else "2026-20000",
            title=document.title if document else "Revisions to the Entity List",
            url=document.url if document else "https://fr.example/d/2026-20000",
            published_at=NOW - timedelta(days=2),
            first_seen_at=NOW,
            content_hash="x",
            published_date_only=True,
            fields=(
                dict(document.fields)
                if document
                else {"comments_close_on": on.isoformat(), "citation": "91 FR 1234"}
            ),
        )
        session.add(doc)
        await session.flush()
        session.add_all(
            [
                ItemTheme(item_id=doc.id, theme_id=theme.id, matched_at=NOW),
                Subscription(subscriber_id=chat.id, theme_id=theme.id),
                Subscription(subscriber_id=stranger.id, theme_id=other.id),
            ]
        )


async def deliveries(db: Database) -> list[Delivery]:
    async with db.sessions() as session:
        return list((await session.scalars(select(Delivery).order_by(Delivery.id))).all())


async def test_reminders_go_once_at_each_lead_to_the_themes_subscribers(db: Database) -> None:
    start = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)
    await seed(db, on=DEADLINE)
    report = await run_reminder_tick(db, start)  # planning only: nothing is due yet
    assert (report.planned, report.sent) == (0, 0)  # the date is beyond the horizon

    week_before = datetime(2026, 10, 13, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    report = await run_reminder_tick(db, week_before - timedelta(minutes=1))
    assert (report.planned, report.sent) == (2, 0)
    report = await run_reminder_tick(db, week_before)
    assert report.sent == 1
    await run_reminder_tick(db, week_before + timedelta(hours=1))  # again: nothing more
    (reminder,) = await deliveries(db)
    assert reminder.kind == "reminder"
    text = reminder.payload["messages"][0]["text"]
    assert "Comments close in 7 days</b> (2026-10-20)" in text
    assert "Revisions to the Entity List" in text

    await run_reminder_tick(db, datetime(2026, 10, 19, 1, 0, tzinfo=UTC))
    sent = await deliveries(db)
    assert len(sent) == 2
    assert "Comments close tomorrow" in sent[1].payload["messages"][0]["text"]
    async with db.sessions() as session:
        statuses = (await session.scalars(select(Reminder.status))).all()
    assert sorted(statuses) == ["sent", "sent"]  # the other theme's subscriber got none


async def test_a_chat_that_unsubscribed_is_not_reminded(db: Database) -> None:
    await seed(db, on=DEADLINE)
    await run_reminder_tick(db, datetime(2026, 10, 12, tzinfo=UTC))
    async with db.sessions.begin() as session:
        for sub in (await session.scalars(select(Subscription))).all():
            await session.delete(sub)
    await run_reminder_tick(db, datetime(2026, 10, 19, 12, tzinfo=UTC))
    assert await deliveries(db) == []


async def test_a_chinese_measure_is_reminded_of_before_it_takes_effect(db: Database) -> None:
    page = DATA / "cac/cac_article_meteorology_measures_reconstructed.html"
    measure = parse_cac_article(
        page.read_bytes(), {}, url="https://www.cac.gov.cn/2025-04/30/c_1747718893685033.htm"
    )
    assert measure.fields.get("effective_on") == "2025-06-01"
    await seed(db, on=date(2025, 6, 1), kind="cac", document=measure)
    week_before = datetime(2025, 5, 25, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    await run_reminder_tick(db, week_before - timedelta(minutes=1))
    report = await run_reminder_tick(db, week_before)
    assert report.sent == 1
    (reminder,) = await deliveries(db)
    text = reminder.payload["messages"][0]["text"]
    assert "Takes effect in 7 days</b> (2025-06-01)" in text
    assert "人工智能气象应用服务办法" in text


@pytest.fixture
async def bot(db: Database) -> AsyncIterator[BotHarness]:
    await seed(db, on=(NOW + timedelta(days=10)).date(), zone="UTC")
    async with bot_harness(db) as harness:
        yield harness


async def test_upcoming_sends_a_calendar_file(bot: BotHarness) -> None:
    [reply] = await bot.send("/upcoming")
    assert "comments close: Revisions to the Entity List" in reply
    (document,) = bot.fake.documents
    assert document.filename == "policywatch-deadlines.ics"
    assert "reminders 7 days and 1 day before" in (document.caption or "")
    calendar = Calendar.from_ical(document.data)
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == (NOW + timedelta(days=10)).date()
    assert str(event.get("summary")) == "Comments close: Revisions to the Entity List"
    assert "91 FR 1234" in str(event.get("description"))
    assert len(event.walk("VALARM")) == 2
