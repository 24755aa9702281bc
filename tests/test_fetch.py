"""The fetcher over real loopback sockets: validators, statuses, limits, timeouts, redirects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from models.errors import FetchError, ParseError
from scrapers.base import SourceState
from scrapers.http import FetchConfig, Fetcher, build_http_client, parse_retry_after
from scrapers.rss import RssSource
from tests.fakes.feeds import FeedServer, Route, feed_server

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>t</title>
<item><title>Entity List additions</title><link>https://example.org/a</link>
<guid>https://example.org/a</guid><pubDate>Mon, 27 Jul 2026 12:15:01 GMT</pubDate></item>
</channel></rss>"""
LAST_MODIFIED = "Mon, 27 Jul 2026 12:00:00 GMT"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def config(**overrides: object) -> FetchConfig:
    values: dict[str, object] = {
        "user_agent": "PolicyWatch-test/1 (+https://example.org)",
        "allow_private": True,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "total_timeout": 5.0,
    }
    values.update(overrides)
    return FetchConfig(**values)  # type: ignore[arg-type]  # test overrides of typed fields


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    cfg = config()
    async with build_http_client(cfg) as client:
        yield Fetcher(client, cfg)


async def test_200_then_304_with_etag_and_last_modified(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.routes["/feed"] = Route(RSS, etag='"v1"', last_modified=LAST_MODIFIED)
    first = await fetcher.get(server.url("/feed"), source="s")
    assert (first.status, first.etag, first.last_modified) == (200, '"v1"', LAST_MODIFIED)
    assert first.body == RSS
    second = await fetcher.get(
        server.url("/feed"), source="s", etag=first.etag, last_modified=first.last_modified
    )
    assert second.not_modified
    assert second.body == b""
    assert second.etag == '"v1"'
    sent = server.requests[-1].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == LAST_MODIFIED
    assert sent["user-agent"].startswith("PolicyWatch-test/1")


async def test_304_through_the_rss_kind_is_not_an_error(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.routes["/feed"] = Route(RSS, etag='"v1"')
    state = SourceState(name="s", kind="rss", url=server.url("/feed"))
    now = datetime(2026, 7, 27, tzinfo=UTC)

    async def known(ids: object) -> set[str]:
        return set()

    first = await RssSource().poll(fetcher, state, now=now, known=known)
    assert [i.title for i in first.items] == ["Entity List additions"]
    again = SourceState(name="s", kind="rss", url=server.url("/feed"), etag=first.etag)
    second = await RssSource().poll(fetcher, again, now=now, known=known)
    assert second.not_modified
    assert second.items == ()


async def test_429_carries_retry_after(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/busy"] = Route(b"slow down", status=429, headers={"Retry-After": "120"})
    with pytest.raises(FetchError) as caught:
        await fetcher.get(server.url("/busy"), source="s")
    assert caught.value.status == 429
    assert caught.value.retry_after == 120
    assert not caught.value.permanent


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 7, 27, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 27 Jul 2026 12:05:00 GMT", now) == 300
    assert parse_retry_after("soon", now) is None


@pytest.mark.parametrize("value", ["99999999999999999", "9" * 400, "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_an_absurd_retry_after_waits_a_week_at_most(value: str) -> None:
    """A server's Retry-After is not trusted: an absurd one is a week, not a crash."""
    now = datetime(2026, 7, 27, 12, 0, tzinfo=UTC)
    assert parse_retry_after(value, now) == 7 * 24 * 3600


async def test_a_source_asking_to_wait_for_ever_fails_its_poll_and_waits_a_week(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.routes["/busy"] = Route(b"", status=429, headers={"Retry-After": "9" * 30})
    with pytest.raises(FetchError) as caught:
        await fetcher.get(server.url("/busy"), source="s")
    assert caught.value.retry_after == 7 * 24 * 3600


async def test_500_is_a_retryable_failure_and_404_a_permanent_one(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.routes["/broken"] = Route(b"oops", status=500)
    with pytest.raises(FetchError) as caught:
        await fetcher.get(server.url("/broken"), source="s")
    assert caught.value.status == 500
    assert not caught.value.permanent
    with pytest.raises(FetchError) as missing:
        await fetcher.get(server.url("/nowhere"), source="s")
    assert missing.value.status == 404
    assert missing.value.permanent


async def test_a_slow_server_times_out(server: FeedServer) -> None:
    server.routes["/slow"] = Route(RSS, delay=2.0)
    cfg = config(read_timeout=0.3)
    async with build_http_client(cfg) as client:
        with pytest.raises(FetchError, match="timed out"):
            await Fetcher(client, cfg).get(server.url("/slow"), source="s")


async def test_a_never_answering_server_is_cut_by_the_deadline(server: FeedServer) -> None:
    server.routes["/hang"] = Route(hang=True)
    cfg = config(read_timeout=30.0, total_timeout=0.5)
    async with build_http_client(cfg) as client:
        with pytest.raises(FetchError, match=r"timed out|no complete answer"):
            await Fetcher(client, cfg).get(server.url("/hang"), source="s")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_oversized_body_is_aborted(server: FeedServer, chunked: bool) -> None:
    server.routes["/huge"] = Route(b"x" * 300_000, chunked=chunked)
    cfg = config(max_bytes=100_000)
    async with build_http_client(cfg) as client:
        with pytest.raises(FetchError, match="limit"):
            await Fetcher(client, cfg).get(server.url("/huge"), source="s")


async def test_a_gzip_bomb_is_aborted_after_decoding(server: FeedServer) -> None:
    server.routes["/bomb"] = Route(b"\0" * 2_000_000, gzip=True)
    cfg = config(max_bytes=100_000)
    async with build_http_client(cfg) as client:
        with pytest.raises(FetchError, match="limit"):
            await Fetcher(client, cfg).get(server.url("/bomb"), source="s")


async def test_gzip_is_decoded(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/gz"] = Route(RSS, gzip=True)
    result = await fetcher.get(server.url("/gz"), source="s")
    assert result.body == RSS
    assert "gzip" in server.requests[-1].headers["accept-encoding"]


async def test_an_html_page_served_as_a_feed_is_a_failure(
    server: FeedServer, fetcher: Fetcher
) -> None:
    page = b"<!DOCTYPE html><html><head><title>Access Denied</title></head><body>No</body></html>"
    server.routes["/feed"] = Route(page, content_type="text/html")
    state = SourceState(name="s", kind="rss", url=server.url("/feed"))

    async def known(ids: object) -> set[str]:
        return set()

    with pytest.raises(ParseError, match="HTML page"):
        await RssSource().poll(fetcher, state, now=datetime(2026, 1, 1, tzinfo=UTC), known=known)


async def test_billion_laughs_is_refused(server: FeedServer, fetcher: Fetcher) -> None:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{entities}]>'
        "<rss><channel><item><title>&l9;</title></item></channel></rss>"
    ).encode()
    server.routes["/lol"] = Route(bomb)
    state = SourceState(name="s", kind="rss", url=server.url("/lol"))

    async def known(ids: object) -> set[str]:
        return set()

    with pytest.raises(ParseError, match="entit"):
        await RssSource().poll(fetcher, state, now=datetime(2026, 1, 1, tzinfo=UTC), known=known)


async def test_redirects_are_followed_and_checked(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/old"] = Route(status=301, headers={"Location": "/new"})
    server.routes["/new"] = Route(RSS)
    result = await fetcher.get(server.url("/old"), source="s")
    assert result.body == RSS
    assert result.final_url == server.url("/new")
    server.routes["/ftp"] = Route(status=302, headers={"Location": "ftp://example.org/x"})
    with pytest.raises(FetchError, match="only http and https"):
        await fetcher.get(server.url("/ftp"), source="s")
    server.routes["/loop"] = Route(status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="redirects"):
        await fetcher.get(server.url("/loop"), source="s")


async def test_private_addresses_are_refused_unless_allowed(server: FeedServer) -> None:
    server.routes["/feed"] = Route(RSS)
    cfg = config(allow_private=False)
    async with build_http_client(cfg) as client:
        refused = r"refused: 127\.0\.0\.1 is a loopback address"
        with pytest.raises(FetchError, match=refused) as caught:
            await Fetcher(client, cfg).get(server.url("/feed"), source="s")
    assert caught.value.permanent
    assert server.requests == []


async def test_only_http_and_https(fetcher: Fetcher) -> None:
    with pytest.raises(FetchError, match="only http and https"):
        await fetcher.get("file:///etc/passwd", source="s")
