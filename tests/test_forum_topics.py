"""Forum topics (``models.alerts`` rule 9): a forum chat subscribes to a theme from inside a
topic and that theme's alerts go there, replies to commands too; updates reply in their
alert's topic; a topic deleted or closed later loses nothing: the message goes to the chat
itself, the theme is unrouted and the chat is told why. Through the real sender against the
loopback fake Bot API, which refuses a thread that is no open topic as Telegram does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from delivery.notifier import REPLY_WAIT, Notifier, NotifierConfig
from delivery.senders import TelegramSender
from models.db import UnitOfWork
from models.db.deliveries import NewDelivery
from models.db.outbox import Outbox
from models.db.tables import Item, ItemTheme, Source, Subscriber, Subscription, Theme
from models.outbox import DeliveryKind, OutboxPayload, plain_message
from pipeline.digests import run_digest_tick
from pipeline.planning import plan_new_items
from pipeline.reminders import run_reminder_tick
from tests.botkit import NOW, USER, BotHarness, bot_harness
from tests.conftest import Database
from tests.delivery_world import (
    T0,
    Clock,
    add_items,
    add_source,
    add_subscriber,
    add_theme,
    deliveries,
    match,
    subscribe,
)
from tests.fakes.telegram import TOKEN, FakeBotAPI, serve_fake_bot_api

FORUM = -100777
TOPIC = 7


@pytest.fixture
async def bot(db: Database) -> AsyncIterator[BotHarness]:
    async with db.sessions.begin() as session:
        export = Theme(slug="export-controls", title="US export controls")
        china = Theme(slug="china-ai", title="China AI rules")
        news = Source(name="news", kind="rss", url="https://news.example/", interval_seconds=60)
        session.add_all([export, china, news])
        await session.flush()
        for n, (title, theme) in enumerate(
            [("Entity List additions", export), ("生成式人工智能服务备案", china)]
        ):
            item = Item(
                source_id=news.id,
                external_id=str(n),
                title=title,
                url=f"https://news.example/{n}",
                published_at=NOW - timedelta(hours=n + 1),
                first_seen_at=NOW,
                content_hash=str(n),
            )
            session.add(item)
            await session.flush()
            session.add(ItemTheme(item_id=item.id, theme_id=theme.id, matched_at=NOW))
    async with bot_harness(db) as harness:
        harness.fake.chat_admins[FORUM] = {USER}
        harness.fake.chat_admins[-100888] = {USER}
        harness.fake.open_topic(FORUM, TOPIC)
        yield harness


async def topic_of(db: Database) -> int | None:
    """Where the forum's export-controls alerts go."""
    async with db.sessions() as session:
        return await session.scalar(
            select(Subscription.topic_id)
            .join(Theme, Theme.id == Subscription.theme_id)
            .where(Theme.slug == "export-controls")
        )


async def say(bot: BotHarness, text: str, topic: int | None = None) -> list[str]:
    """A command in the forum, in ``topic`` or in its General topic. (Telegram allows a bot
    20 messages a minute in one group, which PTB's rate limiter enforces: a test sends fewer.)"""
    return await bot.send(
        text, chat_id=FORUM, user_id=USER, chat_type="supergroup", forum=True, topic=topic
    )


async def test_a_theme_subscribed_from_a_topic_is_routed_there_and_can_move(
    bot: BotHarness, db: Database
) -> None:
    [text] = await say(bot, "/subscribe export-controls", TOPIC)
    assert text == "This chat now follows US export controls (instant alerts, in this topic)."
    assert bot.last(FORUM).topic == TOPIC  # the answer is in the topic it was asked in
    assert await topic_of(db) == TOPIC
    [text] = await say(bot, "/settings", TOPIC)
    assert "export-controls (instant, in topic 7)" in text

    [text] = await say(bot, "/subscribe export-controls")  # from the General topic
    assert text == "Alerts of US export controls now come to the General topic."
    assert bot.last(FORUM).topic is None
    assert await topic_of(db) is None
    [text] = await say(bot, "/subscribe export-controls")
    assert text == "This chat already follows US export controls."
    [text] = await say(bot, "/subscribe export-controls", TOPIC)
    assert text == "Alerts of US export controls now come to this topic."
    assert await topic_of(db) == TOPIC

    # The theme keyboard's button, pressed in the topic, routes there too.
    await say(bot, "/unsubscribe export-controls")
    assert await topic_of(db) is None
    await bot.press("sub:export-controls", chat_id=FORUM, user_id=USER, topic=TOPIC)
    assert await topic_of(db) == TOPIC

    # A group that is no forum: a reply chain's thread id is no topic, and is not kept.
    [text] = await bot.send(
        "/subscribe export-controls", chat_id=-100888, chat_type="group", user_id=USER
    )
    assert text == "This chat now follows US export controls (instant alerts)."


async def test_latest_and_the_digest_asked_in_a_topic_are_that_topics(bot: BotHarness) -> None:
    await say(bot, "/subscribe export-controls", TOPIC)
    await say(bot, "/subscribe china-ai")  # from General
    [text] = await say(bot, "/latest", TOPIC)  # asked in the topic: its themes' events
    assert text.startswith("Latest in this topic's themes")
    assert "Entity List additions" in text
    assert "生成式人工智能服务备案" not in text
    [text] = await say(bot, "/latest")  # in General: every theme of the chat
    assert text.startswith("Latest in this chat's themes")
    assert "生成式人工智能服务备案" in text

    [text] = await say(bot, "/digest daily 08:00", TOPIC)
    assert text == "Daily digest at 08:00 (UTC) in this topic."
    [text] = await say(bot, "/settings")
    assert "Digest: daily at 08:00, in topic 7" in text
    await say(bot, "/digest weekly mon 08:00")  # asked in General: the digest goes there
    [text] = await say(bot, "/settings")
    assert "Digest: weekly on Monday at 08:00\n" in text


@pytest.mark.parametrize("gone", ["deleted", "closed"])
async def test_alerts_and_updates_go_to_the_topic_until_it_is_gone_then_to_the_chat(
    db: Database, gone: str
) -> None:
    async with db.sessions.begin() as session:
        source = await add_source(session)
        export = await add_theme(session, "export-controls", "US export controls")
        chips = await add_theme(session, "chips", "Chips")
        forum = await add_subscriber(session, FORUM, chat_type="supergroup")
        await subscribe(session, forum, export)
        await subscribe(session, forum, chips)
        # both themes to the topic, as /subscribe inside it stores them
        routed = await session.scalars(select(Subscription))
        for row in routed:
            row.topic_id = TOPIC
        first = await add_items(session, source, ["Entity List additions"], T0, prefix="a")
        await match(session, first, export, ["Entity List"], T0)
        await plan_new_items(UnitOfWork(session), first, T0)
        reply: OutboxPayload = {
            "messages": [plain_message("also: Reuters")],
            "reply_to": f"alert:{first.new[0].id}",
        }
        await UnitOfWork(session).deliveries.enqueue(
            [NewDelivery(forum.id, DeliveryKind.UPDATE, "update:1", reply)], T0
        )

    fake = FakeBotAPI(per_chat_interval=0.0, group_per_minute=1000)
    fake.open_topic(FORUM, TOPIC)
    with serve_fake_bot_api(fake) as running:
        sender = TelegramSender(TOKEN, running.base_url)
        outbox = Outbox(db.sessions, worker_id="w", lease=timedelta(seconds=30))
        clock = Clock()
        config = NotifierConfig(private_interval=0.0, group_interval=0.0)
        notifier = Notifier(outbox, sender, config, clock=clock)
        try:
            await notifier.run_once()  # the update waits for the alert it replies to
            clock.advance(seconds=REPLY_WAIT.total_seconds())
            await notifier.run_once()
            alert, update = fake.messages_to(FORUM)
            assert "Entity List additions" in alert.text
            assert (alert.topic, update.topic) == (TOPIC, TOPIC)
            assert update.reply_to == alert.message_id

            # The topic goes; the next alert still reaches the chat, in its General topic.
            if gone == "deleted":
                fake.delete_topic(FORUM, TOPIC)
            else:
                fake.close_topic(FORUM, TOPIC)
            async with db.sessions.begin() as session:
                later = await add_items(session, source, ["Chip rule"], clock.now, prefix="b")
                await match(session, later, export, ["Entity List"], clock.now)
                await plan_new_items(UnitOfWork(session), later, clock.now)
            await notifier.run_once()
            await notifier.run_once()  # the notice the first drain queued
            # a late update of the first alert, which is in the gone topic: it comes to the
            # chat itself, as no reply (nothing to reply to there), and no second notice
            async with db.sessions.begin() as session:
                late: OutboxPayload = {
                    "messages": [plain_message("also: Xinhua")],
                    "reply_to": f"alert:{first.new[0].id}",
                }
                await UnitOfWork(session).deliveries.enqueue(
                    [NewDelivery(forum.id, DeliveryKind.UPDATE, "update:2", late)], clock.now
                )
            await notifier.run_once()
        finally:
            await sender.stop()
    _, _, *after, last = fake.messages_to(FORUM)
    assert [m.topic for m in after] == [None, None]  # the alert, then why it came here
    assert (last.text, last.topic, last.reply_to) == ("also: Xinhua", None, None)
    assert "Chip rule" in after[0].text
    assert after[1].text.startswith(
        "The forum topic that alerts of <code>chips</code>, <code>export-controls</code> went "
        "to is closed or deleted, so they come to the General topic now."
    )
    async with db.sessions() as session:
        assert list(await session.scalars(select(Subscription.topic_id))) == [None, None]
        rows = await deliveries(session)
    assert {r.status for r in rows} == {"sent"}
    assert "topic" not in rows[2].payload  # stored as sent: an update to it replies there


async def test_reminders_follow_their_themes_topic_and_the_digest_its_own(db: Database) -> None:
    deadline = date(2026, 10, 20)
    async with db.sessions.begin() as session:
        export = Theme(slug="export-controls", title="US export controls")
        fr = Source(
            name="fr", kind="federal_register", url="https://fr.example/", interval_seconds=60
        )
        chat = Subscriber(
            chat_id=FORUM,
            chat_type="supergroup",
            digest_mode="daily",
            digest_time="08:00",
            digest_topic_id=9,
        )
        session.add_all([export, fr, chat])
        await session.flush()
        doc = Item(
            source_id=fr.id,
            external_id="2026-20000",
            title="Revisions to the Entity List",
            url="https://fr.example/d/2026-20000",
            published_at=datetime(2026, 10, 12, tzinfo=UTC),
            first_seen_at=datetime(2026, 10, 12, tzinfo=UTC),
            content_hash="x",
            fields={"comments_close_on": deadline.isoformat()},
        )
        session.add(doc)
        await session.flush()
        session.add_all(
            [
                ItemTheme(item_id=doc.id, theme_id=export.id, matched_at=doc.first_seen_at),
                Subscription(subscriber_id=chat.id, theme_id=export.id, topic_id=TOPIC),
            ]
        )
    week_before = datetime(2026, 10, 13, 9, 0, tzinfo=UTC)
    await run_reminder_tick(db, week_before - timedelta(minutes=1))
    await run_reminder_tick(db, week_before)
    await run_digest_tick(db, week_before)  # schedules the next 08:00
    await run_digest_tick(db, datetime(2026, 10, 14, 8, 0, 30, tzinfo=UTC))
    async with db.sessions() as session:
        rows = await deliveries(session)
    assert [(r.kind, r.payload.get("topic")) for r in rows] == [("reminder", TOPIC), ("digest", 9)]
