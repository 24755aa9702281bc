"""Bot handlers through ``Application.process_update`` against the loopback fake Bot API:
what the user sees (the sendMessage texts the fake recorded) and what changed in the DB."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy import text as sql_text

from delivery.notices import notify_admins
from delivery.render import ThemeMatch, alert_buttons
from models.db.deliveries import NewDelivery
from models.db.queries import Queries
from models.db.tables import (
    AuditLog,
    Delivery,
    Item,
    ItemTheme,
    Source,
    Subscriber,
    Subscription,
    Theme,
    ThemeRule,
)
from models.outbox import DeliveryKind, OutboxPayload, plain_message
from tests.botkit import ADMIN, EDITOR, NOW, USER, BotHarness, bot_harness
from tests.conftest import Database
from tests.fakes.feeds import Route, feed_server

RSS_ONE_ITEM = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    b"<item><title>One rule</title><link>https://e.org/1</link></item></channel></rss>"
)


async def seed(db: Database) -> None:
    async with db.sessions.begin() as session:
        ec = Theme(slug="export-controls", title="US export controls", description="BIS rules")
        ai = Theme(slug="china-ai", title="China AI policy", priority="digest")
        fr = Source(
            name="fr-bis",
            kind="federal_register",
            url="https://fr.example/api",
            interval_seconds=900,
        )
        cac = Source(
            name="cac",
            kind="cac",
            url="https://cac.example/",
            interval_seconds=900,
            consecutive_failures=3,
            last_error="HTTP 503",
        )
        news = Source(
            name="news",
            kind="rss",
            url="https://news.example/rss",
            interval_seconds=900,
            last_success_at=NOW,
        )
        session.add_all([ec, ai, fr, cac, news])
        await session.flush()
        session.add_all(
            [
                ThemeRule(theme_id=ec.id, rule="Entity List"),
                ThemeRule(theme_id=ai.id, rule="生成式人工智能"),
            ]
        )
        rows = [
            Item(
                source_id=fr.id,
                external_id="2026-1",
                title="Additions to the Entity List <script>",
                url="https://fr.example/1?a=1&b=2",
                published_at=NOW - timedelta(days=1),
                published_date_only=True,
                first_seen_at=NOW,
                content_hash="a",
                fields={
                    "document_type": "Rule",
                    "effective_on": (NOW + timedelta(days=10)).date().isoformat(),
                },
            ),
            Item(
                source_id=fr.id,
                external_id="2026-2",
                title="Advanced computing items; request for comments",
                url="https://fr.example/2",
                published_at=NOW - timedelta(days=2),
                published_date_only=True,
                first_seen_at=NOW,
                content_hash="b",
                fields={
                    "document_type": "Proposed Rule",
                    "comments_close_on": (NOW + timedelta(days=45)).date().isoformat(),
                },
            ),
            Item(
                source_id=cac.id,
                external_id="c-1",
                title="生成式人工智能服务备案信息公告",
                summary="国家互联网信息办公室",
                url="https://cac.example/1",
                published_at=NOW - timedelta(days=3),
                first_seen_at=NOW,
                content_hash="c",
                fields={
                    "document_type": "公告",
                    "effective_on": (NOW + timedelta(days=5)).date().isoformat(),
                },
            ),
            Item(
                source_id=news.id,
                external_id="n-1",
                title="Chip stocks rally 100% on rumors",
                url="https://news.example/1",
                published_at=NOW - timedelta(hours=5),
                first_seen_at=NOW,
                content_hash="d",
            ),
        ]
        session.add_all(rows)
        await session.flush()
        session.add_all(
            [
                ItemTheme(
                    item_id=rows[0].id, theme_id=ec.id, matched=["Entity List"], matched_at=NOW
                ),
                ItemTheme(
                    item_id=rows[1].id,
                    theme_id=ec.id,
                    matched=["advanced computing"],
                    matched_at=NOW,
                ),
                ItemTheme(
                    item_id=rows[2].id, theme_id=ai.id, matched=["生成式人工智能"], matched_at=NOW
                ),
            ]
        )


@pytest.fixture
async def bot(db: Database) -> AsyncIterator[BotHarness]:
    await seed(db)
    async with bot_harness(db) as harness:
        yield harness


async def count(db: Database, table: Any, *where: Any) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def rules_of(db: Database, slug: str) -> list[tuple[str, bool, str]]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(ThemeRule.rule, ThemeRule.enabled, ThemeRule.origin)
            .join(Theme, Theme.id == ThemeRule.theme_id)
            .where(Theme.slug == slug)
            .order_by(ThemeRule.id)
        )
        return [(r, bool(e), o) for r, e, o in rows.all()]


async def test_start_registers_and_buttons_subscribe(bot: BotHarness, db: Database) -> None:
    [text] = await bot.send("/start")
    assert "Welcome to PolicyWatch" in text
    picker = bot.last().reply_markup
    keyboard = picker["inline_keyboard"]
    assert [row[0]["callback_data"] for row in keyboard] == ["sub:china-ai", "sub:export-controls"]
    assert await count(db, Subscriber, Subscriber.chat_id == USER, Subscriber.active.is_(True)) == 1

    await bot.press("sub:export-controls", markup=picker)
    assert await count(db, Subscription) == 1
    [answer] = bot.calls("answerCallbackQuery")
    assert "You now follow US export controls" in answer["text"]
    [edit] = bot.calls("editMessageReplyMarkup")
    datas = [row[0]["callback_data"] for row in edit["reply_markup"]["inline_keyboard"]]
    assert datas == ["sub:china-ai", "unsub:export-controls"]

    await bot.press("mute:export-controls")
    async with db.sessions() as session:
        assert await session.scalar(select(Subscription.mode)) == "digest"
    await bot.press("unsub:export-controls")
    assert await count(db, Subscription) == 0
    await bot.press("sub:../../etc")
    assert "no longer valid" in bot.calls("answerCallbackQuery")[-1]["text"]


async def test_unsubscribe_under_an_alert_keeps_the_alerts_buttons(
    bot: BotHarness, db: Database
) -> None:
    """An alert's Unsubscribe stops the theme and says so in a toast; the alert keeps its
    feedback and Mute/Unsubscribe buttons (only a theme picker is redrawn)."""
    await bot.send("/subscribe export-controls")
    themes = [ThemeMatch("export-controls", "US export controls", ("Entity List",), id=1)]
    buttons = alert_buttons(themes, item_id=1)
    assert buttons is not None
    await bot.press("unsub:export-controls", markup=dict(buttons))
    assert await count(db, Subscription) == 0
    [answer] = bot.calls("answerCallbackQuery")
    assert answer["text"] == "You no longer follow US export controls."
    assert bot.calls("editMessageReplyMarkup") == []


async def test_subscribe_themes_unsubscribe(bot: BotHarness, db: Database) -> None:
    [text] = await bot.send("/subscribe export-controls")
    assert text == "You now follow US export controls (instant alerts)."
    [text] = await bot.send("/subscribe china-ai")
    assert "(in the digest)" in text
    [text] = await bot.send("/themes")
    assert "US export controls export-controls — ✅ subscribed (instant)" in text
    [text] = await bot.send("/subscribe nonsense")
    assert "Unknown theme nonsense. Themes: china-ai, export-controls." in text
    assert "Usage: /subscribe [theme]" in text
    [text] = await bot.send("/unsubscribe export-controls")
    assert text == "You no longer follow US export controls."
    [text] = await bot.send("/unsubscribe export-controls")
    assert text == "You do not follow US export controls."
    [text] = await bot.send("/subscribe")
    assert bot.last().reply_markup["inline_keyboard"]
    assert await count(db, Subscription) == 1


async def test_group_commands_addressed_to_the_bot(bot: BotHarness, db: Database) -> None:
    group = -1001234
    bot.fake.chat_admins[group] = {USER}
    [text] = await bot.send(
        "/subscribe@policywatch_test_bot export-controls", chat_id=group, user_id=USER
    )
    assert "This chat now follows" in text
    assert await bot.send("/subscribe@some_other_bot china-ai", chat_id=group, user_id=USER) == []
    [text] = await bot.send("/latest@policywatch_test_bot", chat_id=group, user_id=USER)
    assert "Additions to the Entity List" in text
    [text] = await bot.send("/sources", chat_id=-1009999, chat_type="channel")
    assert "fr-bis" in text


async def test_latest_escapes_and_limits(bot: BotHarness) -> None:
    [text] = await bot.send("/latest")
    assert "You follow no themes yet" in text
    await bot.send("/subscribe export-controls")
    [text] = await bot.send("/latest")
    assert "Additions to the Entity List <script>" in text
    assert 'href="https://fr.example/1?a=1&amp;b=2"' in bot.last().text
    assert "&lt;script&gt;" in bot.last().text
    assert "#export_controls" in text
    assert "生成式" not in text
    [text] = await bot.send("/latest china-ai 1")
    assert "生成式人工智能服务备案信息公告" in text
    [text] = await bot.send("/latest export-controls 1")
    assert "Advanced computing" not in text
    [text] = await bot.send("/latest 1 china-ai")  # the count first: the same question
    assert text.startswith("Latest in China AI policy")
    assert "生成式人工智能服务备案信息公告" in text
    assert "Entity List" not in text
    for bad, says in [
        ("/latest 21", "is not a number from 1 to 20"),
        ("/latest 0", "is not a number from 1 to 20"),
        ("/latest nope", "Unknown theme nope"),
        ("/latest export-controls x", "is not a number"),
        ("/latest a b c", "Too many arguments"),
        ("/latest 5 7", "Too many arguments"),
    ]:
        [text] = await bot.send(bad)
        assert says in text
        assert "Usage: /latest [theme] [n]" in text


async def test_policy_search_upcoming(bot: BotHarness) -> None:
    [text] = await bot.send("/policy us")
    assert text.startswith("US regulatory documents (UTC)\n")
    assert "Additions to the Entity List <script>\n  fr-bis · 2026-10-01 · #export" in text
    assert "\n  Rule\n  Effective 2026-10-12\n" in text
    assert "\n  Proposed Rule\n  Comments close 2026-11-16" in text
    assert "生成式" not in text
    [text] = await bot.send("/policy cn 1")
    assert "\n  公告\n  Effective 2026-10-07" in text
    [text] = await bot.send("/policy 1 cn")  # the count first: the same question
    assert text.startswith("China regulatory documents (UTC)\n")
    assert "\n  公告\n  Effective 2026-10-07" in text
    assert "Entity List" not in text
    [text] = await bot.send("/policy")
    assert "Entity List" in text
    assert "生成式" in text
    assert "Chip stocks" not in text
    [text] = await bot.send("/policy eu")
    assert "eu is neither us, cn nor a number" in text

    [text] = await bot.send("/search entity list")
    assert "Additions to the Entity List" in text
    [text] = await bot.send("/search 互联网信息办公室")  # in the summary, no spaces
    assert "生成式人工智能服务备案信息公告" in text
    [text] = await bot.send("/search 100%")
    assert "Chip stocks" in text
    [text] = await bot.send("/search %")  # a literal percent sign, not "anything"
    assert "Entity List" not in text
    [text] = await bot.send("/search _")
    assert text == "Nothing stored matches _."
    [text] = await bot.send("/search")
    assert "Usage: /search <words>" in text
    [text] = await bot.send("/search " + "x" * 300)
    assert "too long" in text

    [text] = await bot.send("/upcoming")
    assert text.index("2026-10-07 — effective") < text.index("2026-10-12 — effective")
    assert "comments close" not in text  # 45 days away


async def test_digest_timezone_mute_settings(bot: BotHarness, db: Database) -> None:
    [text] = await bot.send("/timezone Asia/Shanghai")
    assert text == "Time zone set to Asia/Shanghai (it is 20:00 there now)."
    [text] = await bot.send("/digest weekly fri 8:30")
    assert text == "Weekly digest on Friday at 08:30 (Asia/Shanghai)."
    async with db.sessions() as session:
        row = await session.scalar(select(Subscriber).where(Subscriber.chat_id == USER))
        assert row is not None
        assert (row.digest_mode, row.digest_time, row.digest_weekday) == ("weekly", "08:30", 4)
        assert row.next_digest_at is None
    [text] = await bot.send("/mute 2d")
    assert text == "Alerts muted until 2026-10-04 20:00 (Asia/Shanghai)."
    [text] = await bot.send("/settings")
    assert "Digest: weekly on Friday at 08:30" in text
    assert "Muted: until 2026-10-04 20:00" in text
    for bad, says in [
        ("/timezone Mars/Olympus", "Unknown time zone Mars/Olympus"),
        ("/timezone ../../etc/passwd", "Unknown time zone ../../etc/passwd"),
        ("/timezone America", "Unknown time zone America"),  # a region's folder of zones
        ("/timezone Europe", "Unknown time zone Europe"),
        ("/timezone", "Give one time zone name"),
        ("/digest daily 25:00", "25:00 is not a time"),
        ("/digest weekly funday 08:00", "funday is not a day"),
        ("/digest hourly", "is not a digest schedule"),
        ("/digest", "Choose off, daily or weekly"),
        ("/mute forever", "forever is not a duration"),
        ("/mute 400d", "at most 365 days"),
        ("/mute", "Give a duration"),
    ]:
        [text] = await bot.send(bad)
        assert says in text, bad
        assert "Usage:" in text, bad
    async with db.sessions() as session:
        row = await session.scalar(select(Subscriber).where(Subscriber.chat_id == USER))
        assert row is not None
        assert (row.timezone, row.digest_mode, row.digest_time) == (
            "Asia/Shanghai",
            "weekly",
            "08:30",
        )
        assert row.muted_until == NOW + timedelta(days=2)
    [text] = await bot.send("/digest off")
    [text] = await bot.send("/mute off")
    assert text == "Alerts are on again."


async def test_alerts_sure_or_all_is_kept_shown_and_explained(
    bot: BotHarness, db: Database
) -> None:
    [text] = await bot.send("/alerts sure")
    assert "only for sure matches" in text
    assert "Your digest is off" in text  # so nothing is held back yet: it says so
    [text] = await bot.send("/settings")
    assert "Instant alerts: sure matches only" in text
    [text] = await bot.send("/digest daily 08:00")
    [text] = await bot.send("/alerts SURE")
    assert "Your digest is off" not in text
    for bad in ("/alerts", "/alerts some", "/alerts sure all"):
        [text] = await bot.send(bad)
        assert "Choose all" in text, bad
        assert "Usage: /alerts all | sure" in text, bad
    async with db.sessions() as session:
        row = await session.scalar(select(Subscriber).where(Subscriber.chat_id == USER))
        assert row is not None
        assert row.instant_alerts == "sure"
    [text] = await bot.send("/alerts all")
    assert text == "Every match alerts you at once again."
    [text] = await bot.send("/settings")
    assert "Instant alerts: every match" in text


async def test_sources_show_health(bot: BotHarness) -> None:
    [text] = await bot.send("/sources")
    assert "cac — ❌ failing (3×)" in text
    assert "HTTP 503" in text
    assert "news — ✅ ok" in text
    assert "last success 2026-10-02 12:00" in text


async def test_everyone_else_is_refused_and_nothing_changes(bot: BotHarness, db: Database) -> None:
    for text, who in [
        ("/watch add export-controls Huawei", "editors and admins"),
        ("/theme add chips Chips", "editors and admins"),
        ("/source add rss https://feeds.example/rss", "admins"),
        ("/admin grant 5 editor", "admins"),
        ("/broadcast hello", "admins"),
        ("/stats", "admins"),
    ]:
        [reply] = await bot.send(text)
        assert reply == f"Sorry, /{text.split()[0][1:]} is only for {who}."
    assert ("Huawei", True, "chat") not in await rules_of(db, "export-controls")
    assert await count(db, Theme) == 2
    assert await count(db, Source) == 3
    assert await count(db, Delivery) == 0
    assert await count(db, AuditLog) == 0


async def test_a_scope_entry_tells_the_editor_what_it_does_and_tries_what_it_finds(
    bot: BotHarness,
) -> None:
    """``SCOPE: ...`` matches nothing itself: it bounds the learned model (``Matcher.excluded``).
    Trying it counts the items its rule finds, which the model may still match alone."""
    scope = "SCOPE: Entity List"
    [text] = await bot.send(f"/watch add export-controls {scope}", chat_id=ADMIN)
    added, note = text.splitlines()
    assert added == f"Added {scope} to export-controls."
    assert note.startswith("A scope entry: it matches nothing itself.")
    [text] = await bot.send(f"/watch test export-controls {scope}", chat_id=ADMIN)
    assert text.splitlines()[1] == note
    assert text.splitlines()[0] == (
        f"{scope} in export-controls finds 1 of 4 items from the last 30 days (0 of them not "
        "matched by the theme today)."
    )
    [text] = await bot.send("/watch add export-controls SCOPE: China OR", chat_id=ADMIN)
    assert "Usage: /watch" in text


async def test_a_rule_that_disambiguates_a_name_tells_the_editor(
    bot: BotHarness, db: Database
) -> None:
    """A rule that starts with a single name and has a NOT part also keeps the learned model
    from the theme when the name meets its NOT part (``Matcher.excluded``); the editor is told
    when adding or trying it, not by a missed alert. Rules that start with a group are not."""
    rule = "Ernie AND (Baidu OR chatbot*) NOT (Els OR golf*)"
    [text] = await bot.send(f"/watch add export-controls {rule}", chat_id=ADMIN)
    added, note = text.splitlines()
    assert added == f"Added {rule} to export-controls."
    assert note.startswith("Read as a disambiguation of Ernie: an item that names Ernie together")
    assert "kept out of export-controls, even when the learned model would match it" in note
    [text] = await bot.send(f"/watch test export-controls {rule}", chat_id=ADMIN)
    assert text.splitlines()[1] == note
    for plain in ['(Ernie OR "Ernie Bot") AND Baidu NOT (Els OR golf*)', "Ernie AND Baidu"]:
        [text] = await bot.send(f"/watch add export-controls {plain}", chat_id=ADMIN)
        assert text == f"Added {plain} to export-controls."
        [text] = await bot.send(f"/watch test export-controls {plain}", chat_id=ADMIN)
        assert "disambiguation" not in text
    assert [r for r, *_ in await rules_of(db, "export-controls") if "Ernie" in r] == [
        rule,
        '(Ernie OR "Ernie Bot") AND Baidu NOT (Els OR golf*)',
        "Ernie AND Baidu",
    ]


async def test_watch_commands_edit_the_watchlist(bot: BotHarness, db: Database) -> None:
    [text] = await bot.send("/watch add export-controls Huawei", chat_id=ADMIN)
    assert text == "Added Huawei to export-controls."
    [text] = await bot.send('/watch add export-controls "SMIC" OR 中芯国际', chat_id=ADMIN)
    assert "Added" in text
    [text] = await bot.send("/watch list export-controls", chat_id=ADMIN)
    assert text.splitlines()[1:] == ["• Entity List", "• Huawei", '• "SMIC" OR 中芯国际']
    [text] = await bot.send("/watch remove export-controls entity list", chat_id=ADMIN)
    assert text == "Removed Entity List from export-controls."
    assert await rules_of(db, "export-controls") == [
        ("Entity List", False, "chat"),  # a tombstone
        ("Huawei", True, "chat"),
        ('"SMIC" OR 中芯国际', True, "chat"),
    ]
    [text] = await bot.send("/watch test export-controls entity", chat_id=ADMIN)
    assert "would match 1 of 4 items from the last 30 days" in text
    assert "Additions to the Entity List <script>" in text
    for bad, says in [
        (
            '/watch add export-controls "Huawei',
            "That rule does not parse: a quoted phrase is not closed (at character 1",
        ),
        ("/watch add export-controls Huawei AND", "the rule ends where a term was expected"),
        ("/watch add nope Huawei", "Unknown theme nope"),
        ("/watch add export-controls", "Give a term or rule"),
        ("/watch remove export-controls ZTE", "ZTE is not on the export-controls watchlist"),
        ("/watch frobnicate", "Choose list, add, remove or test"),
        ("/watch", "Choose list, add, remove or test"),
        ("/watch add export-controls " + "x" * 600, "That rule is too long (600 characters"),
    ]:
        [text] = await bot.send(bad, chat_id=ADMIN)
        assert says in text, bad
        assert "Usage: /watch" in text, bad
    async with db.sessions() as session:
        audit = (
            await session.execute(
                select(
                    AuditLog.action,
                    AuditLog.entity_key,
                    AuditLog.actor_user_id,
                    AuditLog.before,
                    AuditLog.after,
                ).order_by(AuditLog.id)
            )
        ).all()
    assert [(a, k, u) for a, k, u, _, _ in audit] == [
        ("watch.add", "export-controls:Huawei", ADMIN),
        ("watch.add", 'export-controls:"SMIC" OR 中芯国际', ADMIN),
        ("watch.remove", "export-controls:Entity List", ADMIN),
    ]
    assert audit[2][3] == {"rule": "Entity List", "enabled": True, "origin": "config"}
    async with db.reading() as uow:
        rules = await uow.themes.enabled_rules()
    active = [rule for _, slug, rule in rules if slug == "export-controls"]
    assert active == ["Huawei", '"SMIC" OR 中芯国际']  # no restart needed


async def test_editors_are_granted_and_revoked(bot: BotHarness, db: Database) -> None:
    [text] = await bot.send("/admin grant 901 editor", chat_id=ADMIN)
    assert text == "User 901 is now an editor."
    async with db.sessions() as session:
        row = await session.scalar(select(Subscriber).where(Subscriber.chat_id == EDITOR))
        assert row is not None
        assert (row.role, row.active) == ("editor", False)
    [text] = await bot.send("/theme add chips Semiconductors & chips", chat_id=EDITOR)
    assert "Theme Semiconductors & chips (chips) added" in text
    [text] = await bot.send("/watch add chips HBM", chat_id=EDITOR)
    assert text == "Added HBM to chips."
    [text] = await bot.send("/source list", chat_id=EDITOR)
    assert text == "Sorry, /source is only for admins."
    [text] = await bot.send("/start", chat_id=EDITOR)
    async with db.sessions() as session:
        row = await session.scalar(select(Subscriber).where(Subscriber.chat_id == EDITOR))
        assert row is not None
        assert (row.role, row.active) == ("editor", True)
    [text] = await bot.send("/admin revoke 901", chat_id=ADMIN)
    assert text == "User 901 is no longer an editor."
    [text] = await bot.send("/watch add chips CoWoS", chat_id=EDITOR)
    assert text == "Sorry, /watch is only for editors and admins."
    for bad, says in [
        ("/admin grant bob editor", "Give a numeric Telegram user id"),
        ("/admin grant 5 admin", "Only the editor role can be granted"),
        ("/admin", "Choose grant or revoke"),
    ]:
        [text] = await bot.send(bad, chat_id=ADMIN)
        assert says in text
        assert "Usage: /admin" in text
    assert await count(db, AuditLog, AuditLog.entity_type == "subscriber") == 2


async def test_theme_commands(bot: BotHarness, db: Database) -> None:
    [text] = await bot.send("/theme priority export-controls digest", chat_id=ADMIN)
    assert text == "US export controls is now digest."
    [text] = await bot.send("/theme remove china-ai", chat_id=ADMIN)
    assert "removed (its items and history are kept)" in text
    [text] = await bot.send("/subscribe china-ai")
    assert "Unknown theme china-ai" in text
    async with db.sessions() as session:
        theme = await session.scalar(select(Theme).where(Theme.slug == "export-controls"))
        assert theme is not None
        assert (theme.priority, theme.origin) == ("digest", "chat")
    for bad, says in [
        ("/theme add Bad_Slug Title", "is not a slug"),
        ("/theme add export-controls Again", "already exists"),
        ("/theme add newone", "Give the theme a title"),
        ("/theme priority export-controls urgent", "urgent is not instant or digest"),
        ("/theme remove nope", "Unknown theme nope"),
        ("/theme", "Choose add, remove or priority"),
        ("/theme add long " + "t" * 250, "That title is too long"),
    ]:
        [text] = await bot.send(bad, chat_id=ADMIN)
        assert says in text, bad
        assert "Usage: /theme" in text, bad
    assert await count(db, Theme) == 2


async def test_source_add_names_the_source_after_its_host(db: Database) -> None:
    """A source added in chat is tried once (``/source add`` against a loopback feed, with
    private addresses allowed) and named after its host, with a suffix when that is taken."""
    await seed(db)
    with feed_server() as feeds:
        feeds.routes["/policy.xml"] = Route(RSS_ONE_ITEM)
        feeds.routes["/other.xml"] = Route(RSS_ONE_ITEM)
        async with bot_harness(db, allow_private_sources=True) as bot:
            [text] = await bot.send(f"/source add rss {feeds.url('/policy.xml')}", chat_id=ADMIN)
            assert "Source 127.0.0.1 added (rss)" in text
            [text] = await bot.send(f"/source add rss {feeds.url('/other.xml')}", chat_id=ADMIN)
            assert "Source 127.0.0.1-2 added" in text
    async with db.sessions() as session:
        row = await session.scalar(select(Source).where(Source.name == "127.0.0.1"))
        assert row is not None
        assert (row.origin, row.enabled, row.next_check_at) == ("chat", True, NOW)
    assert await count(db, AuditLog, AuditLog.entity_type == "source") == 2


async def test_source_add_holds_no_transaction_open_while_it_tries_the_url(db: Database) -> None:
    """The trial fetch (up to 20 s) runs between two transactions: no pooled connection waits
    idle in a transaction meanwhile, and a source another admin adds under the same name in
    that time is kept, while this command says the name is taken."""
    await seed(db)
    with feed_server() as feeds:
        feeds.routes["/slow.xml"] = Route(RSS_ONE_ITEM, delay=1.0)
        async with bot_harness(db, allow_private_sources=True) as bot:
            command = asyncio.create_task(
                bot.send(f"/source add rss {feeds.url('/slow.xml')} policy", chat_id=ADMIN)
            )
            for _ in range(200):
                if feeds.requests:
                    break
                await asyncio.sleep(0.01)
            assert [r.path for r in feeds.requests] == ["/slow.xml"]
            if db.is_postgres:
                async with db.sessions() as session:
                    idle = await session.scalar(
                        sql_text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                            " current_database() AND state LIKE 'idle in transaction%'"
                        )
                    )
                assert idle == 0
            async with db.transaction() as uow:  # another admin, meanwhile
                await uow.sources.add_from_chat(
                    name="policy",
                    kind="rss",
                    url="https://other.example/feed",
                    options={},
                    interval_seconds=600,
                    now=NOW,
                )
            [answer] = await command
    assert "A source named policy already exists" in answer
    async with db.sessions() as session:
        row = await session.scalar(select(Source).where(Source.name == "policy"))
    assert row is not None
    assert row.url == "https://other.example/feed"


async def test_source_commands(bot: BotHarness, db: Database) -> None:
    for bad, says in [
        ("/source add rss http://127.0.0.1:8080/feed", "127.0.0.1 is a loopback address"),
        ("/source add rss http://[::1]/feed", "is a loopback address"),
        ("/source add rss http://169.254.169.254/latest", "is a link-local address"),
        ("/source add rss http://192.168.1.1/feed", "is a private address"),
        ("/source add rss http://localhost/feed", "localhost is a local name"),
        ("/source add rss https://intranet.example/feed", "intranet.example resolves to 10.1.2.3"),
        ("/source add rss ftp://feeds.example.org/x", "only http and https"),
        ("/source add rss https://feeds.example.org:80800/x", "the port must be a number"),
        ("/source add gopher https://feeds.example.org/x", "Unknown kind gopher. Kinds: rss"),
        ("/source add rss https://feeds.example.org/x Bad!Name", "is not a source name"),
        ("/source add rss https://feeds.example.org/x news", "A source named news already exists"),
        ("/source pause nope", "Unknown source nope. Sources: cac, fr-bis, news"),
        ("/source", "Choose list, add, pause, resume, digest, instant, trust, untrust or expect"),
        ("/source digest nope", "Unknown source nope"),
        ("/source expect news soon", "not a duration: 'soon'"),
        ("/source expect nope 7d", "Unknown source nope"),
    ]:
        [text] = await bot.send(bad, chat_id=ADMIN)
        assert says in text, bad
        assert "Usage: /source" in text, bad
    assert await count(db, Source) == 3
    [text] = await bot.send("/source pause fr-bis", chat_id=ADMIN)
    assert text == "Source fr-bis paused."
    [text] = await bot.send("/sources")
    assert "fr-bis" not in text
    [text] = await bot.send("/source list", chat_id=ADMIN)
    assert "fr-bis — ⏸ paused" in text
    assert (
        "federal_register · chat · new items expected within 21 days · https://fr.example/api"
    ) in text
    [text] = await bot.send("/source resume fr-bis", chat_id=ADMIN)
    async with db.sessions() as session:
        row = await session.scalar(select(Source).where(Source.name == "fr-bis"))
        assert row is not None
        assert (row.enabled, row.origin) == (True, "chat")
    assert await count(db, AuditLog, AuditLog.entity_type == "source") == 2
    [text] = await bot.send("/source digest news", chat_id=ADMIN)
    assert text.startswith("Matches from news now wait for the digest of every chat")
    [text] = await bot.send("/sources")
    assert "news — ✅ ok · to digests only" in text
    [text] = await bot.send("/source instant news", chat_id=ADMIN)
    assert text == "Matches from news alert at once again."
    async with db.sessions() as session:
        row = await session.scalar(select(Source).where(Source.name == "news"))
        assert row is not None
        assert (row.alerts, row.origin) == ("instant", "chat")
    assert await count(db, AuditLog, AuditLog.action == "source.alerts") == 2
    [text] = await bot.send("/source digest news export-controls", chat_id=ADMIN)
    assert text.startswith("export-controls matches from news now wait for the digest")
    [text] = await bot.send("/sources")
    assert "news — ✅ ok · export-controls to digests only" in text
    [text] = await bot.send("/source digest news nope", chat_id=ADMIN)
    assert "Unknown theme" in text
    [text] = await bot.send("/source instant news export-controls", chat_id=ADMIN)
    assert text == "export-controls matches from news alert at once."
    [text] = await bot.send("/sources")
    assert "news — ✅ ok\n" in text
    assert await count(db, AuditLog, AuditLog.action == "source.digest_theme") == 2
    [text] = await bot.send("/source trust news export-controls", chat_id=ADMIN)
    assert text.startswith("Unsure export-controls matches from news alert at once, whatever")
    [text] = await bot.send("/sources")
    assert "news — ✅ ok · export-controls trusted" in text
    [text] = await bot.send("/source trust news", chat_id=ADMIN)  # a theme is required
    assert "Choose list, add, pause, resume, digest, instant, trust, untrust or expect" in text
    [text] = await bot.send("/source untrust news export-controls", chat_id=ADMIN)
    assert text.startswith("Unsure export-controls matches from news wait for digests again")
    [text] = await bot.send("/sources")
    assert "news — ✅ ok\n" in text
    assert await count(db, AuditLog, AuditLog.action == "source.trust_theme") == 2
    [text] = await bot.send("/source expect news 7d", chat_id=ADMIN)
    assert text == (
        "Admins will hear when news brings nothing new for more than 7 days while its polls "
        "succeed."
    )
    [text] = await bot.send("/source expect cac off", chat_id=ADMIN)
    assert text == "cac will not be reported quiet."
    async with db.reading() as uow:
        views = {v.name: v for v in await uow.sources.all()}
    assert views["news"].expected_within == timedelta(days=7)
    assert (views["cac"].expected_within, views["cac"].origin) == (None, "chat")
    assert await count(db, AuditLog, AuditLog.action == "source.expect") == 2


async def test_private_sources_when_allowed(db: Database) -> None:
    with feed_server() as feeds:
        feeds.routes["/feed"] = Route(RSS_ONE_ITEM)
        async with bot_harness(db, allow_private_sources=True) as bot:
            [text] = await bot.send(f"/source add rss {feeds.url('/feed')} local", chat_id=ADMIN)
    assert text.startswith("Source local added")


async def test_broadcast_goes_through_the_outbox_once(bot: BotHarness, db: Database) -> None:
    await bot.send("/start", chat_id=USER)
    await bot.send("/start", chat_id=-1005, user_id=USER)
    await bot.send("/start", chat_id=ADMIN)
    update = {
        "message": {
            "message_id": 77,
            "date": 0,
            "chat": {"id": ADMIN, "type": "private", "first_name": "a"},
            "from": {"id": ADMIN, "is_bot": False, "first_name": "a"},
            "text": "/broadcast New <rules> & notes",
            "entities": [{"type": "bot_command", "offset": 0, "length": 10}],
        }
    }
    await bot.process(update)
    await bot.process(update)  # Telegram redelivers the same update
    assert bot.last(ADMIN).text == "Broadcast queued for 0 chats."
    assert [m.text for m in bot.fake.messages_to(ADMIN)][-2] == "Broadcast queued for 3 chats."
    async with db.sessions() as session:
        rows = (await session.scalars(select(Delivery))).all()
    assert len(rows) == 3
    assert {r.kind for r in rows} == {"broadcast"}
    assert {r.dedupe_key for r in rows} == {f"broadcast:{ADMIN}:77"}
    assert rows[0].payload == {
        "messages": [
            {"text": "📢 New &lt;rules&gt; &amp; notes", "parse_mode": "HTML", "reply_markup": None}
        ]
    }
    [text] = await bot.send("/broadcast", chat_id=ADMIN)
    assert "What should I send?" in text
    [text] = await bot.send("/broadcast " + "y" * 3550, chat_id=ADMIN)
    assert "That message is too long (3550 characters; at most 3500)" in text


async def test_notify_admins_reaches_admin_private_chats_once(
    bot: BotHarness, db: Database
) -> None:
    await bot.send("/start", chat_id=ADMIN)
    await bot.send("/start", chat_id=USER)
    admins = bot.ctx.config.admin_ids
    async with db.transaction() as uow:
        first = await notify_admins(
            uow, admins, "<b>cac</b> is failing", "source-failing:cac:1", NOW
        )
        again = await notify_admins(
            uow, admins, "<b>cac</b> is failing", "source-failing:cac:1", NOW
        )
    assert len(first) == 1
    assert again == []
    async with db.sessions() as session:
        row = await session.scalar(select(Delivery))
        assert row is not None
        assert row.kind == "notice"
        chat = await session.scalar(
            select(Subscriber.chat_id).where(Subscriber.id == row.subscriber_id)
        )
    assert chat == ADMIN


async def test_blocked_bot_deactivates_the_subscriber(bot: BotHarness, db: Database) -> None:
    await bot.send("/start")

    def member_update(status: str) -> dict[str, object]:
        return {
            "my_chat_member": {
                "chat": {"id": USER, "type": "private", "first_name": "a"},
                "from": {"id": USER, "is_bot": False, "first_name": "a"},
                "date": 0,
                "old_chat_member": {
                    "user": {"id": 123456, "is_bot": True, "first_name": "PW"},
                    "status": "member",
                },
                "new_chat_member": {
                    "user": {"id": 123456, "is_bot": True, "first_name": "PW"},
                    "status": status,
                    **({"until_date": 0} if status == "kicked" else {}),
                },
            }
        }

    await bot.process(member_update("kicked"))
    async with db.sessions() as session:
        row = await session.scalar(select(Subscriber).where(Subscriber.chat_id == USER))
        assert row is not None
        assert (row.active, row.deactivated_reason) == (
            False,
            "blocked the bot",
        )
    await bot.process(member_update("member"))
    assert await count(db, Subscriber, Subscriber.active.is_(True)) == 1


OLD_GROUP, SUPERGROUP, GROUP_ADMIN = -4242, -1004242, 555


async def migration_message(bot: BotHarness, *, to_new: bool) -> None:
    """What Telegram sends when a group becomes a supergroup: in the group, the new chat's id
    (``to_new``); in the supergroup, the group's."""
    chat, key, other = (
        (OLD_GROUP, "migrate_to_chat_id", SUPERGROUP)
        if to_new
        else (SUPERGROUP, "migrate_from_chat_id", OLD_GROUP)
    )
    chat_type = "group" if to_new else "supergroup"
    await bot.process(
        {
            "message": {
                "message_id": 900,
                "date": 0,
                "chat": {"id": chat, "type": chat_type, "title": "analysts"},
                "from": {"id": GROUP_ADMIN, "is_bot": False, "first_name": "a"},
                key: other,
            }
        }
    )


async def in_group(bot: BotHarness, text: str, chat_id: int = OLD_GROUP) -> str:
    chat_type = "group" if chat_id == OLD_GROUP else "supergroup"
    [reply] = await bot.send(text, chat_id=chat_id, user_id=GROUP_ADMIN, chat_type=chat_type)
    return reply


async def test_a_group_that_becomes_a_supergroup_keeps_its_subscriptions_and_settings(
    bot: BotHarness, db: Database
) -> None:
    """Turning on topics (among others) makes a group a supergroup with a new chat id: what the
    group followed, its settings, watched organisations and what waits to be sent move with
    it, once, whichever of Telegram's two messages comes first, or twice."""
    bot.fake.chat_admins[OLD_GROUP] = bot.fake.chat_admins[SUPERGROUP] = {GROUP_ADMIN}
    await bot.send("/start", chat_id=ADMIN)  # where a failed handler's notice would go
    assert "now follows" in await in_group(bot, "/subscribe export-controls")
    await in_group(bot, "/timezone Asia/Shanghai")
    await in_group(bot, "/digest daily 08:00")
    await in_group(bot, "/watch org add Huawei; 华为")
    async with db.transaction() as uow:
        group = await uow.subscribers.get_by_chat(OLD_GROUP)
        assert group is not None
        await uow.deliveries.enqueue(
            [NewDelivery(group.id, DeliveryKind.BROADCAST, "waiting", {"messages": []})], NOW
        )
    await migration_message(bot, to_new=True)
    await migration_message(bot, to_new=False)
    await migration_message(bot, to_new=True)  # Telegram may send an update again

    settings = await in_group(bot, "/settings", SUPERGROUP)
    assert settings.startswith("This chat's settings")  # the group's, not the asker's
    assert "Time zone: Asia/Shanghai" in settings
    assert "Digest: daily at 08:00" in settings
    assert "Themes: export-controls (instant)" in settings
    assert "Huawei — also 华为" in await in_group(bot, "/watch org list", SUPERGROUP)
    async with db.sessions() as session:
        rows = (await session.execute(select(Subscriber.id, Subscriber.chat_id))).all()
        waiting = await session.scalar(select(Delivery).where(Delivery.dedupe_key == "waiting"))
    assert (group.id, SUPERGROUP) in [tuple(r) for r in rows]
    assert len(rows) == 2  # and the admin's chat
    assert waiting is not None
    assert (waiting.subscriber_id, waiting.status) == (group.id, "pending")
    assert await count(db, Delivery, Delivery.kind == "notice") == 0  # no handler failed


async def test_a_supergroup_that_spoke_before_its_migration_was_seen_is_merged_into_the_group(
    bot: BotHarness, db: Database
) -> None:
    """A command in the new supergroup can come before Telegram's message about the move and
    register the supergroup afresh: the move merges it into the group, keeping the group's
    settings and adding what only the supergroup had."""
    bot.fake.chat_admins[OLD_GROUP] = bot.fake.chat_admins[SUPERGROUP] = {GROUP_ADMIN}
    await in_group(bot, "/subscribe export-controls")
    await in_group(bot, "/timezone Asia/Shanghai")
    await in_group(bot, "/subscribe china-ai", SUPERGROUP)
    await in_group(bot, "/timezone Europe/Berlin", SUPERGROUP)
    await migration_message(bot, to_new=False)  # only the supergroup's message

    settings = await in_group(bot, "/settings", SUPERGROUP)
    assert settings.startswith("This chat's settings")  # the group's, not the asker's
    assert "Time zone: Asia/Shanghai" in settings
    assert "export-controls (instant)" in settings
    assert "china-ai (digest)" in settings
    assert await count(db, Subscriber) == 1
    assert await count(db, Subscriber, Subscriber.chat_id == SUPERGROUP) == 1
    assert await count(db, Subscription) == 2


async def test_a_long_watchlist_is_listed_whole_over_several_messages(
    bot: BotHarness, db: Database
) -> None:
    """An editor removes an entry by its exact text, so /watch list may not drop any."""
    added = [f'"supplier {n:02d}" AND (export* OR licen*) AND ({"x" * 150})' for n in range(40)]
    for rule in added:
        [text] = await bot.send(f"/watch add export-controls {rule}", chat_id=ADMIN)
        assert text.startswith("Added"), text
    texts = await bot.send("/watch list export-controls", chat_id=ADMIN)
    assert len(texts) > 1
    assert all(len(t) <= 4096 for t in texts)
    listed = [line for t in texts for line in t.splitlines() if line.startswith("• ")]
    assert listed == ["• Entity List", *(f"• {rule}" for rule in added)]


async def test_a_rule_that_does_not_parse_is_refused_and_nothing_changes(
    bot: BotHarness, db: Database
) -> None:
    """The real rule parser checks chat edits: its message points at the problem."""
    [text] = await bot.send("/watch add export-controls Huawei NEAR/x chips", chat_id=ADMIN)
    assert text.startswith("That rule does not parse:")
    assert "Usage: /watch" in text
    [text] = await bot.send("/watch test export-controls (Huawei", chat_id=ADMIN)
    assert text.startswith("That rule does not parse:")
    assert await rules_of(db, "export-controls") == [("Entity List", True, "config")]
    assert await count(db, AuditLog) == 0


async def test_overlong_messages_are_refused_politely(bot: BotHarness, db: Database) -> None:
    [text] = await bot.send("/subscribe " + "a" * 2000)
    assert text == "That message is too long for /subscribe (at most 1000 characters)."
    assert await count(db, Subscriber) == 0


async def test_unexpected_errors_are_reported(
    bot: BotHarness, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.send("/start", chat_id=ADMIN)

    async def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Queries, "stats", broken)
    [text] = await bot.send("/stats", chat_id=ADMIN)
    assert text == "Sorry, something went wrong; the admins have been told."
    async with db.sessions() as session:
        row = await session.scalar(select(Delivery))
    assert row is not None
    assert row.kind == "notice"
    assert "RuntimeError: disk on fire" in row.payload["messages"][0]["text"]


async def test_help_and_stats(bot: BotHarness) -> None:
    [text] = await bot.send("/help")
    assert "/watch list [theme]" in text
    assert "(editors)" in text
    [text] = await bot.send("/stats", chat_id=ADMIN)
    assert "Items: 4 (4 in the last day)" in text
    assert "Matches: 3" in text
    assert "Sources: 3 enabled, 1 failing" in text


async def test_ending_or_changing_a_mute_moves_what_waits_for_its_end(
    bot: BotHarness, db: Database
) -> None:
    [text] = await bot.send("/mute 8h")
    assert text.startswith("Alerts muted until")
    async with db.transaction() as uow:
        sub = await uow.subscribers.ensure(
            chat_id=USER, chat_type="private", user_id=USER, title="me", now=NOW
        )
        await uow.deliveries.enqueue(
            [
                NewDelivery(
                    sub.id,
                    DeliveryKind.HELD,
                    f"muted:{(NOW + timedelta(hours=8)).isoformat()}",
                    {
                        "messages": [
                            {
                                "text": "While muted: 1 event",
                                "parse_mode": None,
                                "reply_markup": None,
                            }
                        ]
                    },
                    send_at=NOW + timedelta(hours=8),
                )
            ],
            NOW,
        )

    async def held_at() -> object:
        async with db.sessions() as session:
            return await session.scalar(
                select(Delivery.next_attempt_at).where(Delivery.kind == "held")
            )

    [text] = await bot.send("/mute 2h")  # shortened: the summary comes at the new end
    assert await held_at() == NOW + timedelta(hours=2)
    [text] = await bot.send("/mute off")
    assert text == "Alerts are on again. What matched while muted follows now."
    assert await held_at() == NOW
    [text] = await bot.send("/mute off")
    assert text == "Alerts are on again."


async def test_quiet_hours_are_set_shown_and_move_what_waits_for_their_end(
    bot: BotHarness, db: Database
) -> None:
    """NOW is 20:00 in Shanghai. What the planner held for the end of the quiet hours
    (``models.alerts`` rule 7) moves when the hours or the time zone change, and goes at once
    when they are turned off."""
    await bot.send("/timezone Asia/Shanghai")
    [text] = await bot.send("/settings")
    assert "Quiet hours: none" in text
    [text] = await bot.send("/quiet 22:00-7:00")
    assert (
        text
        == "Quiet hours 22:00–07:00 (Asia/Shanghai): alerts that come in then wait until 07:00."
    )
    [text] = await bot.send("/settings")
    assert "Quiet hours: 22:00–07:00, alerts wait until they end" in text
    for bad, says in [
        ("/quiet 25:00-07:00", "is not a span of hours"),
        ("/quiet 22:00-22:00", "is not a span of hours"),
        ("/quiet tonight", "tonight is not a span of hours"),
        ("/quiet", "Give the hours"),
    ]:
        [text] = await bot.send(bad)
        assert says in text, bad
        assert "Usage:" in text, bad

    [text] = await bot.send("/quiet 19:00-07:00")
    assert text.endswith("It is quiet now, until 2026-10-03 07:00.")
    ends_at_seven = NOW + timedelta(hours=11)  # 07:00 in Shanghai
    async with db.transaction() as uow:
        sub = await uow.subscribers.ensure(
            chat_id=USER, chat_type="private", user_id=USER, title="me", now=NOW
        )
        (info,) = (await uow.subscribers.infos([sub.id])).values()
        assert info.quiet_hours == "19:00-07:00"  # what the planner reads
        payload: OutboxPayload = {"messages": [plain_message("an alert")]}
        await uow.deliveries.enqueue(
            [
                NewDelivery(sub.id, DeliveryKind.ALERT, "held", payload, send_at=ends_at_seven),
                # a retry waiting for its own time is not the quiet hours' to move
                NewDelivery(
                    sub.id, DeliveryKind.ALERT, "later", payload, send_at=NOW + timedelta(hours=3)
                ),
            ],
            NOW,
        )

    async def due() -> dict[str, object]:
        async with db.sessions() as session:
            rows = await session.execute(select(Delivery.dedupe_key, Delivery.next_attempt_at))
            return dict(rows.all())

    await bot.send("/quiet 19:00-06:00")
    assert (await due())["held"] == NOW + timedelta(hours=10)
    await bot.send("/timezone Asia/Tokyo")  # 21:00 there: quiet until 06:00 Tokyo time
    assert (await due())["held"] == NOW + timedelta(hours=9)
    [text] = await bot.send("/quiet off")
    assert text == "Quiet hours are off. What waited for them to end follows now."
    assert await due() == {"held": NOW, "later": NOW + timedelta(hours=3)}
    [text] = await bot.send("/quiet off")
    assert text == "Quiet hours are off."


async def test_quiet_hours_may_let_chosen_themes_through(bot: BotHarness, db: Database) -> None:
    async def through() -> dict[str, bool]:
        async with db.sessions() as session:
            rows = await session.execute(
                select(Theme.slug, Subscription.through_quiet).join(
                    Subscription, Subscription.theme_id == Theme.id
                )
            )
            return dict(rows.all())

    [text] = await bot.send("/quiet 22:00-07:00 except export-controls")
    assert "You do not follow US export controls: /subscribe export-controls first." in text
    await bot.send("/subscribe export-controls")
    await bot.send("/subscribe china-ai")
    [text] = await bot.send("/quiet 22:00-07:00 EXCEPT export-controls")
    assert text == (
        "Quiet hours 22:00–07:00 (UTC): alerts that come in then wait until 07:00, except those "
        "of US export controls, which come at any hour."
    )
    assert await through() == {"export-controls": True, "china-ai": False}
    [text] = await bot.send("/settings")
    assert (
        "Quiet hours: 22:00–07:00, alerts wait until they end (export-controls: at any hour)"
        in text
    )
    for bad, says in [
        ("/quiet 22:00-07:00 except", "Name the themes after except"),
        ("/quiet 22:00-07:00 except nonsense", "nonsense"),
        ("/quiet off except export-controls", "off is not a span of hours"),
    ]:
        [text] = await bot.send(bad)
        assert says in text, bad
    assert await through() == {"export-controls": True, "china-ai": False}  # unchanged
    await bot.send("/quiet 22:00-07:00")  # the exceptions are what the last /quiet named
    assert await through() == {"export-controls": False, "china-ai": False}

    # It is quiet now (11:00-13:00 UTC); an alert of each theme waits for 13:00. Letting
    # export controls through sends its waiting alert now; China AI's still waits.
    await bot.send("/quiet 11:00-13:00")
    one_pm = NOW + timedelta(hours=1)
    async with db.sessions() as session:
        items = dict((await session.execute(select(Item.external_id, Item.id))).all())
    async with db.transaction() as uow:
        sub = await uow.subscribers.ensure(
            chat_id=USER, chat_type="private", user_id=USER, title="me", now=NOW
        )
        payload: OutboxPayload = {"messages": [plain_message("an alert")]}
        await uow.deliveries.enqueue(
            [
                NewDelivery(sub.id, DeliveryKind.ALERT, key, payload, items[ext], send_at=one_pm)
                for key, ext in (("rule", "2026-1"), ("cac", "c-1"))
            ],
            NOW,
        )
    await bot.send("/quiet 11:00-13:00 except export-controls")
    async with db.sessions() as session:
        due = dict(
            (await session.execute(select(Delivery.dedupe_key, Delivery.next_attempt_at))).all()
        )
    assert due == {"rule": NOW, "cac": one_pm}


async def test_export_sends_the_matched_items_as_a_spreadsheet(
    bot: BotHarness, db: Database
) -> None:
    [text] = await bot.send("/export")
    assert text == "You follow no themes yet: /subscribe, or /export <theme>."
    async with db.sessions.begin() as session:  # a feed headline written to be run as a formula
        news = await session.scalar(select(Source).where(Source.name == "news"))
        ec = await session.scalar(select(Theme).where(Theme.slug == "export-controls"))
        assert news is not None
        assert ec is not None
        hostile = Item(
            source_id=news.id,
            external_id="n-2",
            title='=HYPERLINK("https://evil.example","Entity List")',
            url="https://news.example/2",
            published_at=NOW - timedelta(hours=2),
            first_seen_at=NOW,
            content_hash="e",
        )
        session.add(hostile)
        await session.flush()
        session.add(ItemTheme(item_id=hostile.id, theme_id=ec.id, matched=["x"], matched_at=NOW))
    await bot.send("/subscribe export-controls")
    await bot.send("/timezone Asia/Shanghai")
    [text] = await bot.send("/export")
    assert text == "3 items, newest first; times in Asia/Shanghai."
    (document,) = bot.fake.documents
    assert document.filename == "policywatch-export-controls-2026-10-02.csv"
    assert document.caption == "📄 3 items of 3 events in your themes, the last 7 days"
    assert document.data.startswith(b"\xef\xbb\xbf")  # so Excel reads Chinese as UTF-8
    rows = list(csv.reader(io.StringIO(document.data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["published (Asia/Shanghai)", "event", "title"]
    assert [(r[0], r[2], r[6]) for r in rows[1:]] == [
        ("2026-10-02 18:00", "'" + '=HYPERLINK("https://evil.example","Entity List")', ""),
        ("2026-10-01", "Additions to the Entity List <script>", "Rule"),  # a date, no time
        ("2026-09-30", "Advanced computing items; request for comments", "Proposed Rule"),
    ]
    assert rows[2][5] == "export-controls"

    [text] = await bot.send("/export china-ai 2")
    assert text == "Nothing in China AI policy matched in the last 2 days."
    [text] = await bot.send("/export china-ai 3")
    assert text == "1 item, newest first; times in Asia/Shanghai."
    china_ai = bot.fake.documents[-1]
    assert china_ai.caption == "📄 1 item of 1 event in China AI policy, the last 3 days"
    rows = list(csv.reader(io.StringIO(china_ai.data.decode("utf-8-sig"))))
    assert rows[1][2] == "生成式人工智能服务备案信息公告"
    [text] = await bot.send("/export 3 china-ai")  # the days first: the same question
    assert bot.fake.documents[-1] == china_ai
    for bad, says in [
        ("/export export-controls 0", "is not a number from 1 to 90"),
        ("/export 91", "is not a number from 1 to 90"),
        ("/export nope", "Unknown theme"),
        ("/export a b c", "Too many arguments"),
    ]:
        [text] = await bot.send(bad)
        assert says in text, bad


async def test_export_shows_a_documents_date_as_latest_does(bot: BotHarness, db: Database) -> None:
    """A CAC notice of 2026-09-29 is stored at midnight in Beijing (16:00 UTC the day before):
    a chat on UTC sees 2026-09-29 in /latest, and the spreadsheet says the same."""
    async with db.sessions.begin() as session:
        cac = await session.scalar(select(Source).where(Source.name == "cac"))
        ai = await session.scalar(select(Theme).where(Theme.slug == "china-ai"))
        assert cac is not None
        assert ai is not None
        notice = Item(
            source_id=cac.id,
            external_id="c-9",
            title="关于发布生成式人工智能服务备案信息的公告",
            url="https://cac.example/9",
            published_at=datetime(2026, 9, 28, 16, 0, tzinfo=UTC),
            published_date_only=True,
            first_seen_at=NOW,
            content_hash="f",
            fields={"publication_date": "2026-09-29"},
        )
        session.add(notice)
        await session.flush()
        session.add(ItemTheme(item_id=notice.id, theme_id=ai.id, matched=["x"], matched_at=NOW))
    [text] = await bot.send("/latest china-ai 1")
    assert "cac · 2026-09-29" in text
    await bot.send("/export china-ai")
    rows = list(csv.reader(io.StringIO(bot.fake.documents[-1].data.decode("utf-8-sig"))))
    assert [(r[0], r[2]) for r in rows[1:]] == [
        ("2026-09-29 12:00", "生成式人工智能服务备案信息公告"),  # the seeded news, a time
        ("2026-09-29", "关于发布生成式人工智能服务备案信息的公告"),
    ]
