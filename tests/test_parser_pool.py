"""Parsers run in worker processes give the same items, and their errors cross intact."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.errors import FetchError, ParseError
from scrapers.cpu import ParserPool
from scrapers.rss import parse_feed

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "news" / "tech_qq_rss_2015_gb2312.xml"


@pytest.fixture(scope="module")
def pool() -> Iterator[ParserPool]:
    pool = ParserPool(1)
    yield pool
    pool.close()


async def test_a_worker_parses_like_the_loop(pool: ParserPool) -> None:
    body = SAMPLE.read_bytes()
    headers = {"content-type": "application/rss+xml"}
    inline = parse_feed(body, headers, url="http://tech.qq.com/", source="qq")
    worked = await pool.run(parse_feed, body, headers, url="http://tech.qq.com/", source="qq")
    assert worked == inline
    assert len(worked.items) == 4


async def test_a_parse_error_crosses_the_process_boundary(pool: ParserPool) -> None:
    page = b"<html><body>Access Denied</body></html>"
    with pytest.raises(ParseError) as info:
        await pool.run(parse_feed, page, {"content-type": "text/html"}, url=None, source="gov")
    assert info.value.source == "gov"
    assert info.value.message


def test_source_errors_pickle() -> None:
    error = FetchError("fr-bis", "HTTP 429", retry_after=35.0, status=429)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.source, copy.message, copy.retry_after, copy.status) == (
        "fr-bis",
        "HTTP 429",
        35.0,
        429,
    )
    parse = pickle.loads(pickle.dumps(ParseError("cac", "layout changed")))
    assert str(parse) == "cac: layout changed"
