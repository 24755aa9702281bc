"""Hostile or broken input: one bad item never blocks its source, PostgreSQL's limits are never
reached by what a source or a chat sends, and out-of-range input is a usage error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select

from models.db.tables import AuditLog, Delivery, Item, Source
from models.items import MAX_SUMMARY, MAX_TITLE, ItemData
from models.sources import SourceSpec
from pipeline.polling import STATUS_OK, PollConfig, Poller
from scrapers.federal_register import parse_documents
from scrapers.http import FetchConfig, Fetcher, build_http_client
from scrapers.public_inspection import parse_document_text, parse_public_inspection
from scrapers.rss import parse_feed
from tests.botkit import ADMIN, USER, bot_harness
from tests.conftest import Database
from tests.fakes.feeds import FeedServer, Route, feed_server

T0 = datetime(2026, 7, 27, 12, 0, tzinfo=UTC)


def rss(*items: str) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>https://example.org/{i}</link>"
        f"<guid>https://example.org/{i}</guid></item>"
        for i, t in enumerate(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{body}</channel></rss>'.encode()


def utf8_clean(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def test_a_lone_surrogate_reference_in_a_feed_is_cleaned_and_the_others_kept() -> None:
    parsed = parse_feed(rss("Export rules &#xD800; tightened", "Chip news"), {})
    titles = [i.title for i in parsed.items]
    assert titles == ["Export rules \ufffd tightened", "Chip news"]


def test_a_lone_surrogate_in_federal_register_json_is_cleaned() -> None:
    body = json.dumps(
        {
            "count": 2,
            "results": [
                {"document_number": "2026-1", "title": "Bad \ud800 title", "abstract": "a\x00b"},
                {"document_number": "2026-2", "title": "Good title"},
            ],
        }
    ).encode()
    items = parse_documents(body, {}).items
    assert [i.external_id for i in items] == ["2026-1", "2026-2"]
    assert all(utf8_clean(i.title) and utf8_clean(i.summary) for i in items)


def test_a_broken_public_inspection_entry_is_skipped_and_the_others_kept() -> None:
    bis = [{"slug": "industry-and-security-bureau"}]
    body = json.dumps(
        {
            "count": 7,
            "results": [
                {"document_number": "2026-1", "title": "Bad \ud800 title", "agencies": bis},
                {"document_number": ["2026-2"], "title": "a list for a number", "agencies": bis},
                {"document_number": "2026-3", "title": None, "agencies": bis},
                {"document_number": "2026-4", "title": "x" * 100_000, "agencies": "BIS"},
                "not an object",
                {
                    "document_number": "2026-5",
                    "title": "Kept",
                    "agencies": [None, 7, {"slug": "industry-and-security-bureau"}],
                    "filed_at": "yesterday",
                    "publication_date": "soon",
                    "raw_text_url": "file:///etc/passwd",
                },
                {"document_number": "2026-6", "title": "Also kept", "agencies": bis, "type": 5},
            ],
        }
    ).encode()
    parsed = parse_public_inspection(body, {})
    assert [i.external_id for i in parsed.items] == ["2026-1", "2026-5", "2026-6"]
    assert parsed.skipped == 3  # no number, no title, not an object; 2026-4 is no agency's
    assert all(utf8_clean(i.title) for i in parsed.items)
    kept = parsed.items[1]
    assert kept.published_at is None  # "yesterday" is no time: the store stamps it when seen
    assert "publishes_on" not in kept.fields
    assert kept.fields["raw_text_error"] == "its text URL is not on federalregister.gov: not read"


def test_a_hostile_document_text_is_read_in_bounded_time_and_capped() -> None:
    text = ("SUMMARY: " + "Regu-\nlations " * 200_000 + "DATES: " + "x" * 1_000_000).encode()
    facts = parse_document_text(text, {"content-type": "text/plain; charset=utf-8"})
    assert len(facts.summary) <= 1500
    assert facts.summary.startswith("Regulations Regulations")
    assert len(facts.dates) <= 600
    # a hyphen before a long run of blank lines: one line break joins words, more do not (a
    # pattern that let the break repeat took seconds per 30,000 characters)
    blank = ("SUMMARY: a-" + "\n \n" * 2_000_000 + "b DATES: x").encode()
    facts = parse_document_text(blank, {"content-type": "text/plain"})
    assert facts.summary == "a-"  # only the first 200,000 characters are read


def test_titles_and_summaries_are_capped() -> None:
    huge = "export " * 400_000  # 2.8 MB of title
    parsed = parse_feed(rss(huge, "fine"), {})
    assert len(parsed.items[0].title) <= MAX_TITLE
    assert parsed.items[1].title == "fine"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    config = FetchConfig(user_agent="PolicyWatch-test/1", allow_private=True)
    async with build_http_client(config) as client:
        yield Fetcher(client, config)


async def poll_all(db: Database, fetcher: Fetcher, *specs: SourceSpec) -> dict[str, Any]:
    async with db.transaction() as uow:
        await uow.sources.sync_from_config(list(specs), T0)
    poller = Poller(db, fetcher, PollConfig(worker_id="t"), lambda: T0, rng=lambda: 0.5)
    return {s.name: s for s in await poller.poll_due(due_only=False)}


async def titles_of(db: Database, name: str) -> list[str]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(Item.title).join(Source).where(Source.name == name).order_by(Item.external_id)
        )
        return list(rows.all())


async def test_one_bad_item_does_not_block_its_source(
    db: Database, server: FeedServer, fetcher: Fetcher
) -> None:
    """Lone surrogates and NULs in a feed and in the Federal Register's JSON, a 600-character
    ETag and a 2 MB title: every source's items are stored, cleaned, on both databases."""
    server.routes["/feed"] = Route(
        rss("Good one", "Bad &#xD800; one", "x" * 2_000_000), etag='"' + "e" * 600 + '"'
    )
    fr_doc = {
        "document_number": "2026-9",
        "title": "Rule \ud800 on \x00 chips",
        "abstract": "\ud800",
    }
    server.routes["/fr"] = Route(
        json.dumps({"count": 1, "results": [fr_doc]}).encode(), content_type="application/json"
    )
    results = await poll_all(
        db,
        fetcher,
        SourceSpec(name="feed", kind="rss", url=server.url("/feed"), interval_seconds=60),
        SourceSpec(name="fr", kind="federal_register", url=server.url("/fr"), interval_seconds=60),
    )
    assert results["feed"].status == STATUS_OK, results["feed"].error
    assert results["fr"].status == STATUS_OK, results["fr"].error
    feed_titles = await titles_of(db, "feed")
    assert feed_titles[:2] == ["Good one", "Bad \ufffd one"]
    assert len(feed_titles[2]) <= MAX_TITLE
    assert await titles_of(db, "fr") == ["Rule \ufffd on chips"]


async def test_an_item_too_broken_to_store_is_skipped_and_counted(db: Database) -> None:
    """What reaches the store is cleaned there too (a source kind may forget): an item whose
    title and link are nothing but control characters is skipped, the rest are stored."""
    async with db.transaction() as uow:
        await uow.sources.sync_from_config(
            [SourceSpec(name="s", kind="rss", url="https://e.org/f", interval_seconds=60)], T0
        )
        source = await uow.sources.get("s")
        assert source is not None
        items = [
            ItemData(external_id="ok", title="fine \ud800", summary="s" * (MAX_SUMMARY * 3)),
            ItemData(external_id="bad", title="\x00\x01\ud800"[:2]),
        ]
        result = await uow.items.store(source.id, items, T0)
    assert [i.title for i in result.new] == ["fine \ufffd"]
    assert len(result.new[0].summary) <= MAX_SUMMARY
    assert result.skipped == 1


async def test_statements_stay_small_whatever_the_page_size(db: Database) -> None:
    """PostgreSQL takes at most 65,535 parameters in one statement: storing a page never puts
    a parameter per item into one statement (the largest statement does not grow with it)."""
    largest: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any) -> None:
        nested = (
            isinstance(params, list | tuple) and params and not isinstance(params[0], str | int)
        )
        rows = params if nested and isinstance(params[0], list | tuple | dict) else [params]
        largest.append(max(len(row) for row in rows) if params else 0)

    async with db.transaction() as uow:
        await uow.sources.sync_from_config(
            [SourceSpec(name="s", kind="rss", url="https://e.org/f", interval_seconds=60)], T0
        )
        source = await uow.sources.get("s")
    assert source is not None
    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        peaks = []
        for n, start in ((600, 0), (3000, 1000)):
            largest.clear()
            items = [ItemData(external_id=f"i{start + k}", title=f"t{k}") for k in range(n)]
            async with db.transaction() as uow:
                stored = await uow.items.store(source.id, items, T0)
            assert len(stored.new) == n
            peaks.append(max(largest))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert peaks[1] <= peaks[0]


async def test_a_huge_mute_is_a_usage_error_not_an_admin_page(db: Database) -> None:
    async with bot_harness(db) as bot:
        [text] = await bot.send("/mute 99999999999999999999d")
        assert "Usage: /mute" in text
        [text] = await bot.send("/mute 1e400s")
        assert "Usage: /mute" in text
    async with db.sessions() as session:
        notices = await session.scalar(select(func.count()).select_from(Delivery))
    assert notices == 0


async def test_numbers_in_other_digits_or_out_of_range_are_usage_errors_not_admin_pages(
    db: Database,
) -> None:
    """ "²" passes ``str.isdigit`` yet ``int`` refuses it; a version beyond an INTEGER column
    overflows the query. Each used to fail the handler, paging every admin, for any user."""
    async with bot_harness(db) as bot:
        await bot.send("/start", chat_id=ADMIN)  # an admin chat the error notices would reach
        await bot.send("/theme add chips Chips", chat_id=ADMIN)
        for command, who, usage in [
            ("/latest ²", USER, "/latest"),
            ("/latest chips ²", USER, "/latest"),
            ("/policy ²", USER, "/policy"),
            ("/export ³", USER, "/export"),
            ("/event ²", USER, "/event"),
            ("/event 99999999999999999999", USER, "/event"),  # beyond a BIGINT
            ("/event split ²", ADMIN, "/event"),
            ("/admin grant ² editor", ADMIN, "/admin"),
            ("/admin revoke 99999999999999999999", ADMIN, "/admin"),
            ("/watch model chips use ²", ADMIN, "/watch"),
            ("/watch model chips use v99999999999", ADMIN, "/watch"),  # beyond an INTEGER
            ("/watch model chips use 99999999999999999999999", ADMIN, "/watch"),
        ]:
            [text] = await bot.send(command, chat_id=who)
            assert f"Usage: {usage}" in text, command
    async with db.sessions() as session:
        notices = await session.scalar(select(func.count()).select_from(Delivery))
    assert notices == 0


async def test_a_long_watchlist_rule_is_added_removed_and_audited(db: Database) -> None:
    rule = " ".join(["semiconductor"] * 30)  # 419 characters, under the 500 a rule may have
    async with bot_harness(db) as bot:
        await bot.send("/theme add chips Chips", chat_id=ADMIN)
        [added] = await bot.send(f"/watch add chips {rule}", chat_id=ADMIN)
        assert added.startswith("Added")
        [removed] = await bot.send(f"/watch remove chips {rule}", chat_id=ADMIN)
        assert removed.startswith("Removed")
    async with db.sessions() as session:
        keys = (
            await session.scalars(
                select(AuditLog.entity_key).where(AuditLog.entity_type == "theme_rule")
            )
        ).all()
    assert keys == [f"chips:{rule}", f"chips:{rule}"]
