"""What a subscriber notices: one time zone everywhere (theirs, labelled), dates for documents
published on a date, replies within Telegram's 4,096 UTF-16 units, groups run by their
admins, honest answers for digest themes, search across Traditional and Simplified Chinese,
a hint for unknown commands, and /source add that tries the URL before adding it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from delivery.telegram_html import MAX_MESSAGE, utf16_len
from models.db.tables import Delivery, Item, ItemTheme, Source, Subscriber, Subscription, Theme
from models.schedule import HealthChange
from pipeline.ingest import health_hook
from pipeline.polling import STATUS_FAILED, SourcePollSummary
from tests.botkit import ADMIN, NOW, USER, BotHarness, bot_harness
from tests.conftest import Database
from tests.fakes.feeds import FeedServer, Route, feed_server

ROOT = Path(__file__).resolve().parents[1]
GROUP = -100500
GROUP_ADMIN = 4242
GROUP_MEMBER = 4343
EMOJI_TITLE = "🇺🇸🇨🇳 " + "🔥💾🧠" * 60  # 370 characters, 736 UTF-16 units


async def seed(db: Database, *, emoji_items: int = 0) -> None:
    async with db.sessions.begin() as session:
        ec = Theme(slug="export-controls", title="US export controls")
        ai = Theme(slug="china-ai", title="China AI policy", priority="digest")
        gone = Theme(slug="old-theme", title="Old theme", enabled=False)
        fr = Source(
            name="fr-bis",
            kind="federal_register",
            url="https://fr.example/api",
            interval_seconds=900,
            last_success_at=NOW - timedelta(hours=3),
        )
        news = Source(
            name="news",
            kind="rss",
            url="https://news.example/rss",
            interval_seconds=900,
            last_success_at=NOW - timedelta(hours=1),
        )
        session.add_all([ec, ai, gone, fr, news])
        await session.flush()
        items = [
            Item(
                source_id=fr.id,
                external_id="2026-1",
                title="Entity List additions",
                url="https://fr.example/1",
                published_at=datetime(2026, 10, 1, 4, 0, tzinfo=UTC),  # midnight in New York
                published_date_only=True,
                first_seen_at=NOW,
                content_hash="a",
                fields={"document_type": "Rule", "publication_date": "2026-10-01"},
            ),
            Item(
                source_id=news.id,
                external_id="n-1",
                title="出口管制 新規則 export news",
                url="https://news.example/1",
                published_at=NOW - timedelta(hours=5),
                first_seen_at=NOW,
                content_hash="b",
            ),
            Item(
                source_id=news.id,
                external_id="n-2",
                title="美國商務部發布人工智能晶片出口新規",
                url="https://news.example/2",
                published_at=NOW - timedelta(hours=6),
                first_seen_at=NOW,
                content_hash="c",
            ),
        ]
        items += [
            Item(
                source_id=news.id,
                external_id=f"e-{n}",
                title=f"{EMOJI_TITLE} {n}",
                url=f"https://news.example/e/{n}",
                published_at=NOW - timedelta(minutes=n),
                first_seen_at=NOW,
                content_hash=f"e{n}",
            )
            for n in range(emoji_items)
        ]
        session.add_all(items)
        await session.flush()
        session.add_all(
            [ItemTheme(item_id=i.id, theme_id=ec.id, matched=["x"], matched_at=NOW) for i in items]
        )


@pytest.fixture
async def bot(db: Database) -> AsyncIterator[BotHarness]:
    await seed(db)
    async with bot_harness(db) as harness:
        harness.fake.chat_admins[GROUP] = {GROUP_ADMIN}
        yield harness


async def count(db: Database, table: object, *where: object) -> int:
    async with db.sessions() as session:
        stmt = select(func.count()).select_from(table).where(*where)  # type: ignore[arg-type]
        return int(await session.scalar(stmt) or 0)


# ---------------------------------------------------------------- times


async def test_every_reply_shows_times_in_the_chats_zone_labelled(bot: BotHarness) -> None:
    """The chat is in Asia/Shanghai (UTC+8): the news item of 07:00 UTC is 15:00 there, in
    every reply that lists it; the Federal Register document shows its date and no time."""
    await bot.send("/timezone Asia/Shanghai")
    await bot.send("/subscribe export-controls")
    for command in ("/latest", "/search export", "/policy", "/sources"):
        [text] = await bot.send(command)
        assert "(Asia/Shanghai)" in text.splitlines()[0], command
    [latest] = await bot.send("/latest")
    [search] = await bot.send("/search export")
    for text in (latest, search):
        assert "news · 2026-10-02 15:00" in text
    [policy] = await bot.send("/policy")
    assert "fr-bis · 2026-10-01 · #export_controls" in policy  # a date, no invented time
    [sources] = await bot.send("/sources")
    assert "last success 2026-10-02 19:00" in sources  # 11:00 UTC
    await bot.send("/timezone Pacific/Honolulu")  # west of New York: its midnight is 18:00 there
    [policy] = await bot.send("/policy")
    assert "fr-bis · 2026-10-01 · #export_controls" in policy  # not the day before


async def test_a_source_health_notice_shows_the_admins_time(db: Database) -> None:
    async with bot_harness(db) as bot:
        await bot.send("/start", chat_id=ADMIN)
        await bot.send("/timezone Asia/Tokyo", chat_id=ADMIN)
    summary = SourcePollSummary(
        name="news",
        kind="rss",
        status=STATUS_FAILED,
        fetched=0,
        new=0,
        updated=0,
        error="HTTP 503",
        duration=0.1,
        consecutive_failures=3,
        next_check_at=NOW + timedelta(hours=1),
        health=HealthChange.FAILING,
    )
    await health_hook(db, {ADMIN}, lambda: NOW)(summary)
    async with db.sessions() as session:
        row = await session.scalar(select(Delivery).where(Delivery.kind == "notice"))
    assert row is not None
    text = row.payload["messages"][0]["text"]
    assert "Next try: 2026-10-02 22:00 (Asia/Tokyo)" in text  # 13:00 UTC
    assert "UTC" not in text


async def test_latest_20_with_emoji_titles_fits_one_message(db: Database) -> None:
    await seed(db, emoji_items=20)
    async with bot_harness(db) as bot:
        await bot.send("/subscribe export-controls")
        await bot.send("/latest 20")
        sent = bot.last().text
    assert utf16_len(sent) <= MAX_MESSAGE
    assert "🔥💾🧠" in sent


# ---------------------------------------------------------------- subscriptions and groups


async def test_in_groups_only_chat_admins_change_subscriptions(
    bot: BotHarness, db: Database
) -> None:
    [refused] = await bot.send(
        "/subscribe export-controls", chat_id=GROUP, user_id=GROUP_MEMBER, chat_type="supergroup"
    )
    assert "only the group's admins" in refused
    for command in ("/digest daily 08:00", "/mute 2h", "/timezone Asia/Tokyo"):
        [text] = await bot.send(
            command, chat_id=GROUP, user_id=GROUP_MEMBER, chat_type="supergroup"
        )
        assert "only the group's admins" in text, command
    assert await count(db, Subscription) == 0
    [done] = await bot.send(
        "/subscribe export-controls", chat_id=GROUP, user_id=GROUP_ADMIN, chat_type="supergroup"
    )
    assert done == "This chat now follows US export controls (instant alerts)."
    [again] = await bot.send(
        "/subscribe export-controls", chat_id=GROUP, user_id=GROUP_ADMIN, chat_type="supergroup"
    )
    assert again == "This chat already follows US export controls."
    # reading is for everyone
    [latest] = await bot.send(
        "/latest", chat_id=GROUP, user_id=GROUP_MEMBER, chat_type="supergroup"
    )
    assert "Latest in this chat's themes" in latest
    await bot.press("unsub:export-controls", chat_id=GROUP, user_id=GROUP_MEMBER)
    assert await count(db, Subscription) == 1
    assert "only the group's admins" in bot.calls("answerCallbackQuery")[-1]["text"]


async def test_a_digest_theme_with_digests_off_says_so(bot: BotHarness) -> None:
    [text] = await bot.send("/subscribe china-ai")
    assert "China AI policy" in text
    assert "digest" in text
    assert "/digest daily" in text
    await bot.send("/digest daily 08:00")
    await bot.send("/unsubscribe china-ai")
    [text] = await bot.send("/subscribe china-ai")
    assert "/digest daily" not in text


async def test_removed_themes_are_not_in_settings(bot: BotHarness, db: Database) -> None:
    await bot.send("/subscribe export-controls")
    async with db.sessions.begin() as session:
        sub = await session.scalar(select(Subscriber).where(Subscriber.chat_id == USER))
        gone = await session.scalar(select(Theme).where(Theme.slug == "old-theme"))
        assert sub is not None
        assert gone is not None
        session.add(Subscription(subscriber_id=sub.id, theme_id=gone.id, mode="instant"))
    [text] = await bot.send("/settings")
    assert "export-controls" in text
    assert "old-theme" not in text


async def test_search_matches_traditional_and_simplified_alike(bot: BotHarness) -> None:
    """The item is written in Traditional characters (美國商務部); a reader types Simplified
    (美国商务部), or the other way round."""
    [simplified] = await bot.send("/search 美国商务部")
    assert "美國商務部發布人工智能晶片出口新規" in simplified
    [traditional] = await bot.send("/search 美國 發布")
    assert "美國商務部發布人工智能晶片出口新規" in traditional
    [other_way] = await bot.send("/search 新规则")  # the item says 新規則
    assert "出口管制 新規則" in other_way


async def test_unknown_commands_in_private_chats_get_a_hint(bot: BotHarness) -> None:
    [text] = await bot.send("/subscirbe export-controls")
    assert "/subscirbe" in text
    assert "/help" in text
    assert await bot.send("/subscirbe", chat_id=GROUP, chat_type="supergroup") == []


# ---------------------------------------------------------------- /source add


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Policy</title>'
    b"<item><title>New chip rule</title><link>https://e.org/1</link>"
    b"<pubDate>Fri, 02 Oct 2026 09:00:00 GMT</pubDate></item>"
    b"<item><title>Older</title><link>https://e.org/2</link></item></channel></rss>"
)


async def test_source_add_tries_the_url_once_and_reports_what_it_found(
    db: Database, feeds: FeedServer
) -> None:
    feeds.routes["/feed"] = Route(RSS)
    feeds.routes["/page"] = Route(b"<html><body>Not a feed</body></html>", content_type="text/html")
    async with bot_harness(db, allow_private_sources=True) as bot:
        [added] = await bot.send(f"/source add rss {feeds.url('/feed')} policy", chat_id=ADMIN)
        assert "Source policy added" in added
        assert "2 items" in added
        assert "New chip rule" in added
        [refused] = await bot.send(f"/source add rss {feeds.url('/page')} page", chat_id=ADMIN)
        assert "HTML page" in refused
        assert "not added" in refused
        [missing] = await bot.send(f"/source add rss {feeds.url('/none')} none", chat_id=ADMIN)
        assert "404" in missing
    assert [r.path for r in feeds.requests] == ["/feed", "/page", "/none"]
    assert await count(db, Source) == 1


async def test_a_refused_private_address_names_the_setting(db: Database) -> None:
    async with bot_harness(db) as bot:
        [text] = await bot.send("/source add rss http://192.168.1.1/feed", chat_id=ADMIN)
    assert "POLICYWATCH_ALLOW_PRIVATE_SOURCES" in text


# ---------------------------------------------------------------- the command line


def test_parse_into_head_ends_quietly(tmp_path: Path) -> None:
    items = "".join(
        f"<item><title>t{n}</title><link>https://e.org/{n}</link></item>" for n in range(3000)
    )
    feed = tmp_path / "feed.xml"
    feed.write_text(f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>')
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYWATCH_")}
    script = f"{sys.executable} -m policywatch parse --kind rss {feed} | head -n 1"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr
