"""The polling pipeline end to end: loopback sources → database, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.replies import sources_reply
from models.db import UnitOfWork
from models.db.items import StoreResult
from models.db.tables import Item, Source
from models.items import ItemData
from models.schedule import HealthChange
from models.sources import SourceSpec
from pipeline.ingest import health_notice
from pipeline.polling import (
    STATUS_FAILED,
    STATUS_NOT_MODIFIED,
    STATUS_OK,
    PollConfig,
    Poller,
    SourcePollSummary,
)
from policywatch.app import fetch_config, poll_config, record_poll_metrics
from policywatch.metrics import Metrics
from policywatch.settings import Settings
from scrapers.http import Fetcher, build_http_client
from tests.conftest import Database
from tests.fakes.feeds import FeedServer, Route, feed_server

DATA = Path(__file__).parent / "data"
T0 = datetime(2026, 7, 27, 12, 0, tzinfo=UTC)
CAPTURED = datetime(2026, 10, 2, 15, 0, tzinfo=UTC)  # the Federal Register capture's day


def feed(*titles: str) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>https://example.org/{i}</link>"
        f"<guid>https://example.org/{i}</guid>"
        f"<pubDate>Mon, 27 Jul 2026 0{i}:00:00 GMT</pubDate></item>"
        for i, t in enumerate(titles)
    )
    channel = f"<channel><title>f</title>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


@dataclass
class World:
    """What a poller runs with: the database, a fetcher, the clock and the poll settings."""

    db: Database
    fetcher: Fetcher
    clock: Clock
    config: PollConfig


@pytest.fixture
async def services(db: Database) -> AsyncIterator[World]:
    settings = Settings.model_validate(
        {
            "POLICYWATCH_DATABASE_URL": db.url,
            "POLICYWATCH_ALLOW_PRIVATE_SOURCES": True,
            "POLICYWATCH_SOURCE_TIMEOUT": "1.5s",
            "POLICYWATCH_HTTP_READ_TIMEOUT": 5,
            "POLICYWATCH_SOURCE_FAILING_AFTER": 2,
            "POLICYWATCH_WORKER_ID": "test-worker",
        }
    )
    config = fetch_config(settings)
    async with build_http_client(config) as client:
        yield World(db, Fetcher(client, config), Clock(), poll_config(settings))


async def add_sources(services: World, *specs: SourceSpec) -> None:
    async with services.db.transaction() as uow:
        await uow.sources.sync_from_config(list(specs), T0)


def rss_source(name: str, url: str, **options: Any) -> SourceSpec:
    return SourceSpec(name=name, kind="rss", url=url, interval_seconds=60, options=options)


def poller(services: World, **kwargs: Any) -> Poller:
    return Poller(
        services.db, services.fetcher, services.config, services.clock, rng=lambda: 0.5, **kwargs
    )


async def items_of(services: World, name: str) -> list[Item]:
    async with services.db.sessions() as session:
        rows = await session.scalars(
            select(Item).join(Source).where(Source.name == name).order_by(Item.external_id)
        )
        return list(rows.all())


async def source_row(services: World, name: str) -> Source:
    async with services.db.sessions() as session:
        row = await session.scalar(select(Source).where(Source.name == name))
        assert row is not None
        return row


def by_name(summaries: list[SourcePollSummary]) -> dict[str, SourcePollSummary]:
    return {s.name: s for s in summaries}


async def test_first_poll_then_304_then_an_update_in_place(
    services: World, server: FeedServer
) -> None:
    server.routes["/a"] = Route(feed("one", "two", "three"), etag='"v1"')
    await add_sources(services, rss_source("a", server.url("/a")))
    (first,) = await poller(services).poll_due(due_only=False)
    assert (first.status, first.new, first.first_poll) == (STATUS_OK, 3, True)
    assert all(i.from_first_poll for i in await items_of(services, "a"))

    (second,) = await poller(services).poll_due(due_only=False)
    assert (second.status, second.new, second.updated) == (STATUS_NOT_MODIFIED, 0, 0)
    assert server.requests[-1].headers["if-none-match"] == '"v1"'
    assert len(await items_of(services, "a")) == 3

    server.routes["/a"] = Route(feed("one", "two (corrected)", "three", "four"), etag='"v2"')
    (third,) = await poller(services).poll_due(due_only=False)
    assert (third.status, third.new, third.updated, third.first_poll) == (STATUS_OK, 1, 1, False)
    rows = {i.title: i for i in await items_of(services, "a")}
    assert set(rows) == {"one", "two (corrected)", "three", "four"}
    assert not rows["four"].from_first_poll
    assert rows["two (corrected)"].updated_at is not None
    row = await source_row(services, "a")
    assert (row.etag, row.items_last_poll, row.consecutive_failures) == ('"v2"', 4, 0)
    assert row.last_new_item_at is not None


def guid_feed(*entries: tuple[str, str]) -> bytes:
    """An RSS document of (title, guid) entries whose guid is also their link."""
    items = "".join(
        f"<item><title>{title}</title><link>{guid}</link><guid>{guid}</guid>"
        "<pubDate>Mon, 27 Jul 2026 10:00:00 GMT</pubDate></item>"
        for title, guid in entries
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>'
    return f"{head}{items}</channel></rss>".encode()


LIVE = ("Live: BIS adds 12 Chinese entities", "https://news.example/live/bis-entity-list")
LIVE_UPDATE = ("Update: Nvidia responds", "https://news.example/live/bis-entity-list#update-1")


@pytest.mark.parametrize("live_still_listed", [True, False])
async def test_a_new_fragment_entry_is_new_and_leaves_the_story_it_updates_alone(
    services: World, server: FeedServer, live_still_listed: bool
) -> None:
    """Rows stored under an id an older release derived are adopted by their entry (the
    fragment used to be dropped); a new ``…#update-1`` entry is not that entry: it must be
    alerted as new, and the story it updates must keep its row and not be alerted again."""
    server.routes["/f"] = Route(guid_feed(("Yesterday", "https://news.example/other")))
    await add_sources(services, rss_source("news", server.url("/f")))
    await poller(services).poll_due(due_only=False)  # the first poll: history
    server.routes["/f"] = Route(guid_feed(LIVE))
    (second,) = await poller(services).poll_due(due_only=False)
    assert second.new == 1
    before = {i.external_id: (i.id, i.title) for i in await items_of(services, "news")}
    server.routes["/f"] = Route(guid_feed(LIVE_UPDATE, *([LIVE] if live_still_listed else [])))
    (third,) = await poller(services).poll_due(due_only=False)
    assert (third.new, third.updated) == (1, 0)
    after = {i.external_id: (i.id, i.title) for i in await items_of(services, "news")}
    assert after[LIVE[1]] == before[LIVE[1]]
    assert after[LIVE_UPDATE[1]][1] == LIVE_UPDATE[0]


async def test_a_far_future_date_is_not_believed(services: World, server: FeedServer) -> None:
    """An item dated 2100 (a typo, a CMS placeholder) headed /latest and /search for ever: it is
    dated when first seen, flagged as guessed like an undated one, and newer news passes it; a
    date a few hours ahead (a source's clock or zone off) is kept."""

    def dated(*entries: tuple[str, str]) -> bytes:
        items = "".join(
            f"<item><title>{t}</title><link>https://x.example/{t}</link><pubDate>{d}</pubDate></item>"
            for t, d in entries
        )
        return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()

    typo = ("typo", "Fri, 01 Jan 2100 00:00:00 GMT")
    ahead = ("ahead", "Mon, 27 Jul 2026 20:00:00 GMT")  # T0 + 8 hours
    server.routes["/d"] = Route(dated(typo, ahead))
    await add_sources(services, rss_source("d", server.url("/d")))
    await poller(services).poll_due(due_only=False)
    services.clock.now = T0 + timedelta(days=2)
    server.routes["/d"] = Route(dated(("later", "Tue, 28 Jul 2026 12:00:00 GMT"), typo, ahead))
    await poller(services).poll_due(due_only=False)
    rows = sorted(await items_of(services, "d"), key=lambda i: i.published_at, reverse=True)
    assert [(i.title, i.published_at, i.published_at_guessed) for i in rows] == [
        ("later", T0 + timedelta(days=1), False),
        ("ahead", T0 + timedelta(hours=8), False),
        ("typo", T0, True),
    ]


async def test_a_guid_shared_by_every_item_does_not_merge_the_articles(
    services: World, server: FeedServer
) -> None:
    """A small CMS puts its site URL in every <guid>: each article is its own item, and a new
    one is new (the first was stored, each later one overwrote it as an "update", never
    alerted, and the rest vanished without being counted)."""

    def site(*titles: str) -> bytes:
        items = "".join(
            f"<item><title>{t}</title><link>https://small.example/news/{t[-1]}.html</link>"
            "<guid>https://small.example/</guid></item>"
            for t in titles
        )
        return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()

    server.routes["/s"] = Route(site("story 1", "story 2", "story 3"))
    await add_sources(services, rss_source("small", server.url("/s")))
    (first,) = await poller(services).poll_due(due_only=False)
    assert (first.new, first.skipped) == (3, 0)
    server.routes["/s"] = Route(
        site("MIIT issues AI chip rules 4", "story 1", "story 2", "story 3")
    )
    (second,) = await poller(services).poll_due(due_only=False)
    assert (second.new, second.updated) == (1, 0)
    rows = {i.external_id: i.title for i in await items_of(services, "small")}
    assert rows == {
        "https://small.example/news/1.html": "story 1",
        "https://small.example/news/2.html": "story 2",
        "https://small.example/news/3.html": "story 3",
        "https://small.example/news/4.html": "MIIT issues AI chip rules 4",
    }


async def test_the_article_stored_under_a_shared_guid_keeps_its_row(
    services: World, server: FeedServer
) -> None:
    """Before shared guids were noticed, the one article stored under the site's URL was that
    feed's only row; it stays that article's row (not alerted again), the others are new."""
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel>'
        + "".join(
            f"<item><title>story {n}</title><link>https://small.example/news/{n}.html</link>"
            "<guid>https://small.example/</guid></item>"
            for n in (3, 2, 1)
        )
        + "</channel></rss>"
    )
    server.routes["/s"] = Route(feed.encode())
    await add_sources(services, rss_source("small", server.url("/s")))
    async with services.db.transaction() as uow:
        source = await uow.sources.get("small")
        assert source is not None
        old = ItemData(external_id="https://small.example/", title="story 1")
        await uow.items.store(source.id, [old], T0, from_first_poll=True)
    old_id = {i.title: i.id for i in await items_of(services, "small")}["story 1"]
    (poll,) = await poller(services).poll_due(due_only=False)
    assert (poll.new, poll.updated) == (2, 0)
    rows = {i.title: (i.id, i.external_id) for i in await items_of(services, "small")}
    assert rows["story 1"] == (old_id, "https://small.example/news/1.html")
    assert len(rows) == 3


async def test_a_feed_cut_off_in_transfer_stores_each_article_once(
    services: World, server: FeedServer
) -> None:
    """A CDN served a copy cut before the last item's guid: that item waits for the next poll
    (it was stored undated under its link, then again under its guid: alerted twice)."""
    item = (
        "<item><title>{t}</title><link>https://technode.com/2026/07/27/{n}/</link>"
        "<pubDate>Mon, 27 Jul 2026 0{n}:00:00 +0000</pubDate>"
        '<guid isPermaLink="false">https://technode.com/?p={n}</guid>'
        "<description>About {t}</description></item>"
    )
    items = item.format(t="Older story", n=1) + item.format(t="Nvidia H20 licences", n=2)
    whole = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>TN</title>{items}</channel></rss>'
    )
    server.routes["/tn"] = Route(whole[: whole.index("<guid", whole.index("H20"))].encode())
    await add_sources(services, rss_source("tn", server.url("/tn")))
    (cut,) = await poller(services).poll_due(due_only=False)
    assert (cut.status, cut.new, cut.skipped) == (STATUS_OK, 1, 1)
    server.routes["/tn"] = Route(whole.encode())
    (complete,) = await poller(services).poll_due(due_only=False)
    assert (complete.new, complete.updated) == (1, 0)
    rows = [
        (i.external_id, i.title, i.published_at_guessed) for i in await items_of(services, "tn")
    ]
    assert rows == [
        ("https://technode.com/?p=1", "Older story", False),
        ("https://technode.com/?p=2", "Nvidia H20 licences", False),
    ]


async def test_one_bad_source_does_not_stop_the_others(services: World, server: FeedServer) -> None:
    server.routes["/good"] = Route(feed("good news"))
    server.routes["/500"] = Route(b"boom", status=500)
    server.routes["/hang"] = Route(hang=True)
    server.routes["/html"] = Route(
        b"<html><body>Access Denied</body></html>", content_type="text/html"
    )
    server.routes["/429"] = Route(b"", status=429, headers={"Retry-After": "3600"})
    await add_sources(
        services,
        *(rss_source(n, server.url(f"/{n}")) for n in ("good", "500", "hang", "html", "429")),
        SourceSpec(
            name="unknown-kind", kind="gopher", url=server.url("/good"), interval_seconds=60
        ),
    )
    results = by_name(await poller(services).poll_due(due_only=False))
    assert results["good"].status == STATUS_OK
    assert [i.title for i in await items_of(services, "good")] == ["good news"]
    for name in ("500", "hang", "html", "429", "unknown-kind"):
        assert results[name].status == STATUS_FAILED, name
        row = await source_row(services, name)
        assert row.consecutive_failures == 1
        assert row.last_error
        assert row.lease_owner is None
        assert row.next_check_at is not None
        assert row.next_check_at > T0
    assert "timed out" in (results["hang"].error or "")
    assert "HTML page" in (results["html"].error or "")
    assert (await source_row(services, "429")).next_check_at == T0 + timedelta(hours=1)


async def test_health_crosses_into_failing_and_recovers(
    services: World, server: FeedServer
) -> None:
    server.routes["/flaky"] = Route(b"down", status=503)
    await add_sources(services, rss_source("flaky", server.url("/flaky")))
    notices: list[tuple[str, HealthChange | None]] = []

    async def on_health(summary: SourcePollSummary) -> None:
        notices.append((summary.name, summary.health))

    runner = poller(services, on_health=on_health)
    one = await runner.poll_due(due_only=False)
    two = await runner.poll_due(due_only=False)
    assert [one[0].health, two[0].health] == [None, HealthChange.FAILING]
    backoff_1 = one[0].next_check_at
    backoff_2 = two[0].next_check_at
    assert backoff_1 is not None
    assert backoff_2 is not None
    assert backoff_2 > backoff_1
    server.routes["/flaky"] = Route(feed("back"))
    (three,) = await runner.poll_due(due_only=False)
    assert three.health is HealthChange.RECOVERED
    assert notices == [("flaky", HealthChange.FAILING), ("flaky", HealthChange.RECOVERED)]
    row = await source_row(services, "flaky")
    assert (row.consecutive_failures, row.last_error) == (0, None)


async def test_hooks_run_in_order_inside_the_store_transaction(
    services: World, server: FeedServer
) -> None:
    server.routes["/a"] = Route(feed("x", "y"))
    await add_sources(services, rss_source("a", server.url("/a")))
    calls: list[str] = []

    async def first(uow: UnitOfWork, result: StoreResult, now: datetime) -> None:
        # The hook sees the items inside the transaction that stores them.
        ids = [i.external_id for i in result.new]
        count = len(await uow.items.known_external_ids(result.new[0].source_id, ids))
        calls.append(f"first:{len(result.new)}:{count}")

    async def failing(uow: UnitOfWork, result: StoreResult, now: datetime) -> None:
        calls.append("failing")
        raise RuntimeError("classifier exploded")

    (failed,) = await poller(services, hooks=[first, failing]).poll_due(due_only=False)
    assert failed.status == STATUS_FAILED
    assert "classifier exploded" in (failed.error or "")
    assert calls == ["first:2:2", "failing"]
    assert await items_of(services, "a") == []  # rolled back with the hook: nothing half-done

    (ok,) = await poller(services, hooks=[first]).poll_due(due_only=False)
    assert ok.new == 2
    assert ok.first_poll  # the failed attempt was not a success
    assert calls[-1] == "first:2:2"


async def test_due_sources_and_leases(services: World, server: FeedServer) -> None:
    server.routes["/a"] = Route(feed("x"))
    await add_sources(services, *(rss_source(f"s{i}", server.url("/a")) for i in range(5)))
    now = T0

    async def claim(limit: int) -> set[str]:
        async with services.db.transaction() as uow:
            claimed = await uow.sources.claim_due(
                now=now, worker_id="w", lease=timedelta(minutes=5), limit=limit
            )
        return {c.name for c in claimed}

    first, second = await asyncio.gather(claim(3), claim(3))
    assert not first & second  # two claims at once never get the same source
    # PostgreSQL's SKIP LOCKED spreads them over all five; on SQLite the later claim may find
    # its picks already leased and get fewer. Nothing is lost: the next claim takes the rest.
    rest = await claim(5)
    assert not (first | second) & rest
    assert first | second | rest == {f"s{i}" for i in range(5)}
    assert await claim(5) == set()  # all leased
    now = T0 + timedelta(minutes=6)
    assert len(await claim(5)) == 5  # leases expired: a crashed worker's claims come back


async def test_a_stopped_poll_gives_its_sources_back(services: World, server: FeedServer) -> None:
    """A worker stopped mid-poll (SIGTERM) releases its claims: the sources stay due and the
    next worker polls them now, not when the lease (minutes) runs out."""
    server.routes["/slow"] = Route(feed("x"), hang=True)
    await add_sources(services, rss_source("slow", server.url("/slow")))
    polling = asyncio.create_task(poller(services).poll_due())
    for _ in range(200):
        if any(r.path == "/slow" for r in server.requests):
            break
        await asyncio.sleep(0.02)
    assert (await source_row(services, "slow")).lease_owner == "test-worker"
    polling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await polling
    slow = await source_row(services, "slow")
    assert (slow.lease_owner, slow.lease_until, slow.last_success_at) == (None, None, None)
    assert await items_of(services, "slow") == []
    async with services.db.transaction() as uow:
        claimed = await uow.sources.claim_due(
            now=T0, worker_id="next", lease=timedelta(minutes=5), limit=5
        )
    assert "slow" in {c.name for c in claimed}


async def test_only_due_sources_are_polled(services: World, server: FeedServer) -> None:
    server.routes["/a"] = Route(feed("x"))
    await add_sources(services, rss_source("a", server.url("/a")))
    clock = services.clock
    assert len(await poller(services).poll_due()) == 1
    assert await poller(services).poll_due() == []  # next check is an interval away
    clock.now = T0 + timedelta(seconds=61)
    assert len(await poller(services).poll_due()) == 1


async def test_cac_stores_the_list_first_then_fetches_articles_of_new_items(
    services: World, server: FeedServer
) -> None:
    page = (DATA / "cac/cac_wxfb_list_page1_reconstructed.html").read_text(encoding="utf-8")
    local = page.replace("//www.cac.gov.cn/", f"//127.0.0.1:{server.port}/")
    lines = local.split("\n")
    new_entry = (
        f'<li><h5><a href="//127.0.0.1:{server.port}/2026-03/02/c_1799999999999999.htm" '
        'title="国家互联网信息办公室关于发布2025年生成式人工智能服务已备案信息的公告">'
        "国家互联网信息办公室关于发布...</a></h5>"
        '<div class="times">2026-01-09</div></li>'
    )
    server.routes["/list"] = Route(local.encode(), content_type="text/html; charset=utf-8")
    article = (DATA / "cac/cac_article_genai_2025_full_year_reconstructed.html").read_bytes()
    server.routes["/2026-03/02/c_1799999999999999.htm"] = Route(article, content_type="text/html")
    await add_sources(
        services,
        SourceSpec(name="cac", kind="cac", url=server.url("/list"), interval_seconds=3600),
    )
    (first,) = await poller(services).poll_due(due_only=False)
    assert (first.new, first.requests) == (20, 1)  # history: no article fetched

    at = next(i for i, line in enumerate(lines) if "<ul>" in line)
    server.routes["/list"] = Route(
        "\n".join([*lines[: at + 1], new_entry, *lines[at + 1 :]]).encode(),
        content_type="text/html",
    )
    (second,) = await poller(services).poll_due(due_only=False)
    assert (second.new, second.requests) == (1, 2)
    (stored,) = [i for i in await items_of(services, "cac") if not i.from_first_poll]
    assert stored.external_id == "cac:c_1799999999999999"
    assert stored.fields["services_filed_total"] == 748
    assert stored.published_at == datetime(2026, 1, 9, 10, 30, tzinfo=UTC)


def cac_list(port: int, numbers: list[int]) -> bytes:
    rows = "".join(
        f'<li><h5><a href="//127.0.0.1:{port}/2026-03/02/c_17999999999{n:05d}.htm" '
        f'title="公告 {n}">公告 {n}</a></h5><div class="times">2026-03-02</div></li>'
        for n in numbers
    )
    return f'<html><body><div id="loadingInfoPage"><ul>{rows}</ul></div></body></html>'.encode()


async def test_cac_items_left_for_the_next_poll_are_read_by_it(
    services: World, server: FeedServer
) -> None:
    """More new items than ``max_articles``: the rest wait for the next poll, which must read
    the list again (a 304 would leave them unstored until the page changes)."""
    server.routes["/list"] = Route(
        cac_list(server.port, [1, 2]), content_type="text/html", etag='"v1"'
    )
    await add_sources(
        services,
        SourceSpec(
            name="cac",
            kind="cac",
            url=server.url("/list"),
            interval_seconds=3600,
            options={"max_articles": 2},
        ),
    )
    await poller(services).poll_due(due_only=False)  # the first poll: history
    fresh = [3, 4, 5, 6, 7]
    for n in fresh:
        server.routes[f"/2026-03/02/c_17999999999{n:05d}.htm"] = Route(
            f'<html><body><h1 class="title">公告 {n}</h1><div id="BodyLabel"><p>正文 {n}</p>'
            "</div></body></html>".encode(),
            content_type="text/html",
        )
    server.routes["/list"] = Route(
        cac_list(server.port, [*fresh, 1, 2]), content_type="text/html", etag='"v2"'
    )
    news = [s.new for _ in range(3) for s in await poller(services).poll_due(due_only=False)]
    assert news == [2, 2, 1]
    stored = {i.external_id for i in await items_of(services, "cac")}
    assert {f"cac:c_17999999999{n:05d}" for n in fresh} <= stored
    assert (await source_row(services, "cac")).etag == '"v2"'  # kept once nothing waits


async def test_federal_register_pages_and_watermark(services: World, server: FeedServer) -> None:
    base = json.loads(
        (DATA / "federal_register/fr_documents_bis_results_capture_2026-10-02.json").read_text()
    )
    page1 = {"count": 7, "results": base[:4], "next_page_url": server.url("/api/v1/page2?c=1")}
    page2 = {"count": 7, "results": base[4:], "next_page_url": "https://elsewhere.example/api?x"}
    server.routes["/api/v1/documents.json"] = Route(
        json.dumps(page1).encode(), content_type="application/json"
    )
    server.routes["/api/v1/page2?c=1"] = Route(
        json.dumps(page2).encode(), content_type="application/json"
    )
    await add_sources(
        services,
        SourceSpec(
            name="fr",
            kind="federal_register",
            url=server.url("/api/v1/documents.json"),
            interval_seconds=1800,
        ),
    )
    services.clock.now = CAPTURED  # the day the documents were captured
    (summary,) = await poller(services).poll_due(due_only=False)
    assert (summary.status, summary.new, summary.requests) == (STATUS_OK, 7, 2)
    assert "conditions%5Bpublication_date%5D%5Bgte%5D=2026-09-02" in server.requests[0].path
    assert (await source_row(services, "fr")).cursor == {"watermark": "2026-09-30"}
    server.routes["/api/v1/documents.json"] = Route(b'{"description": "none", "count": 0}')
    (again,) = await poller(services).poll_due(due_only=False)
    assert (again.status, again.new) == (STATUS_OK, 0)
    assert "gte%5D=2026-09-27" in server.requests[-1].path
    assert (await source_row(services, "fr")).cursor == {"watermark": "2026-09-30"}


async def test_a_mistyped_future_date_does_not_move_the_federal_register_search(
    services: World, server: FeedServer
) -> None:
    """One document dated 2062 (a typo) must not make every later search start in 2062,
    where no real document would ever be found again."""
    base = json.loads(
        (DATA / "federal_register/fr_documents_bis_results_capture_2026-10-02.json").read_text()
    )
    typo = dict(base[0], document_number="2026-99999", publication_date="2062-10-01")
    api = "/api/v1/documents.json"
    server.routes[api] = Route(
        json.dumps({"count": 8, "results": [typo, *base]}).encode(),
        content_type="application/json",
    )
    await add_sources(
        services,
        SourceSpec(name="fr", kind="federal_register", url=server.url(api), interval_seconds=1800),
    )
    services.clock.now = CAPTURED
    (first,) = await poller(services).poll_due(due_only=False)
    assert first.new == 8
    assert (await source_row(services, "fr")).cursor == {"watermark": "2026-09-30"}
    await poller(services).poll_due(due_only=False)
    assert "gte%5D=2026-09-27" in server.requests[-1].path
    async with services.db.sessions.begin() as session:  # as an older release stored it
        row = await session.scalar(select(Source).where(Source.name == "fr"))
        assert row is not None
        row.cursor = {"watermark": "2062-10-01"}
    await poller(services).poll_due(due_only=False)
    assert "gte%5D=2026-09-29" in server.requests[-1].path  # from today, less the lookback


async def test_a_source_that_brings_nothing_new_is_reported_quiet_once_and_active_again(
    services: World, server: FeedServer
) -> None:
    """Polls that succeed are not enough: a feed frozen at its old URL answers 304 for ever."""
    server.routes["/q"] = Route(feed("one"), etag='"v1"')
    await add_sources(services, rss_source("q", server.url("/q"), expect_new_within="2d"))
    heard: list[SourcePollSummary] = []

    async def on_health(summary: SourcePollSummary) -> None:
        heard.append(summary)

    runner = poller(services, on_health=on_health)
    polled: list[SourcePollSummary] = []
    for day in (0, 1, 3, 4):  # the first poll stores "one"; then the feed stays the same
        services.clock.now = T0 + timedelta(days=day)
        polled += await runner.poll_due(due_only=False)
    [quiet] = heard  # told on day 3, not again on day 4
    assert [s.quiet for s in polled] == [False, False, True, True]  # still quiet on day 4
    metrics = Metrics()
    record_poll_metrics(metrics, polled)
    assert 'policywatch_source_quiet{source="q"} 1.0' in metrics.render().decode()
    assert (quiet.health, quiet.silent_for, quiet.expected_within) == (
        HealthChange.QUIET,
        timedelta(days=3),
        timedelta(days=2),
    )
    notice = health_notice(quiet)
    assert "<b>q</b> has brought nothing new for 3 days" in notice
    assert "(new items are expected within 2 days)" in notice
    assert "/source expect q &lt;period&gt; (or off) sets the period." in notice
    async with services.db.reading() as uow:
        listed = sources_reply(await uow.sources.all(), "UTC")
    assert "💤 quiet: nothing new for over 2 days" in listed

    server.routes["/q"] = Route(feed("one", "two"), etag='"v2"')
    services.clock.now = T0 + timedelta(days=5)
    (active,) = await runner.poll_due(due_only=False)
    assert (active.new, active.health) == (1, HealthChange.ACTIVE)
    assert health_notice(active) == "✅ Source <b>q</b> brings new items again."
    record_poll_metrics(metrics, [active])
    assert 'policywatch_source_quiet{source="q"} 0.0' in metrics.render().decode()
    assert 'policywatch_source_consecutive_failures{source="q"} 0.0' in metrics.render().decode()
    async with services.db.reading() as uow:
        assert "✅ ok" in sources_reply(await uow.sources.all(), "UTC")


async def test_a_source_recovering_after_a_quiet_spell_is_told_recovered_first(
    services: World, server: FeedServer
) -> None:
    server.routes["/r"] = Route(feed("one"), etag='"v1"')
    await add_sources(services, rss_source("r", server.url("/r")))  # rss: 3 days by default
    heard: list[HealthChange | None] = []

    async def on_health(summary: SourcePollSummary) -> None:
        heard.append(summary.health)

    runner = poller(services, on_health=on_health)
    await runner.poll_due(due_only=False)
    server.routes["/r"] = Route(b"down", status=503)
    metrics = Metrics()
    for day in (1, 2):
        services.clock.now = T0 + timedelta(days=day)
        record_poll_metrics(metrics, await runner.poll_due(due_only=False))
    assert 'policywatch_source_consecutive_failures{source="r"} 2.0' in metrics.render().decode()
    server.routes["/r"] = Route(feed("one"), etag='"v1"')
    for day in (4, 5):
        services.clock.now = T0 + timedelta(days=day)
        await runner.poll_due(due_only=False)
    assert heard == [HealthChange.FAILING, HealthChange.RECOVERED, HealthChange.QUIET]


async def test_one_failed_poll_does_not_hide_a_quiet_spell(
    services: World, server: FeedServer
) -> None:
    """Below the failing threshold (2 here) a failure is never told, so the next success is no
    recovery: a source that fails now and then must still be reported quiet."""
    server.routes["/f"] = Route(feed("one"), etag='"v1"')
    await add_sources(services, rss_source("f", server.url("/f")))  # rss: 3 days by default
    heard: list[HealthChange | None] = []

    async def on_health(summary: SourcePollSummary) -> None:
        heard.append(summary.health)

    runner = poller(services, on_health=on_health)
    await runner.poll_due(due_only=False)
    server.routes["/f"] = Route(b"down", status=503)
    services.clock.now = T0 + timedelta(days=3, hours=12)
    await runner.poll_due(due_only=False)
    server.routes["/f"] = Route(feed("one"), etag='"v1"')
    services.clock.now = T0 + timedelta(days=4)
    await runner.poll_due(due_only=False)
    assert heard == [HealthChange.QUIET]
