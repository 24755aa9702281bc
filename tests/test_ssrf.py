"""What may be fetched: one rule (``scrapers.http.target_problem``) for ``/source add`` and for
every fetch, failing closed, and the connection made to the very address that was checked."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from models.errors import FetchError
from scrapers.http import FetchConfig, Fetcher, build_http_client, target_problem
from tests.fakes.feeds import FeedServer, Route, feed_server

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
PUBLIC = "93.184.216.34"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def config(*, allow_private: bool) -> FetchConfig:
    return FetchConfig(
        user_agent="PolicyWatch-test/1",
        allow_private=allow_private,
        connect_timeout=2.0,
        read_timeout=2.0,
        total_timeout=5.0,
    )


@pytest.mark.parametrize(
    "address",
    [
        "224.0.0.1",  # IPv4 multicast
        "ff02::1",  # IPv6 multicast
        "::127.0.0.1",  # IPv4-compatible loopback
        "::ffff:10.0.0.1",  # IPv4-mapped private
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    ],
)
async def test_every_form_of_a_private_address_is_refused_literal_or_resolved(
    address: str,
) -> None:
    async def resolve(host: str) -> list[str]:
        return [address]

    literal = f"http://[{address}]/feed" if ":" in address else f"http://{address}/feed"
    assert await target_problem(literal, allow_private=False, resolve=resolve) is not None
    resolved = await target_problem(
        "http://feeds.example.org/", allow_private=False, resolve=resolve
    )
    assert resolved is not None
    assert "feeds.example.org" in resolved


async def test_public_forms_stay_allowed() -> None:
    async def resolve(host: str) -> list[str]:
        return [PUBLIC, "2002:5db8:d822::1"]  # and 6to4 of that public address

    assert (
        await target_problem("https://example.org/", allow_private=False, resolve=resolve) is None
    )


async def test_a_failed_lookup_is_refused_not_allowed() -> None:
    async def nothing(host: str) -> list[str]:
        return []

    problem = await target_problem("https://example.org/", allow_private=False, resolve=nothing)
    assert problem is not None
    assert "does not resolve" in problem


async def test_a_port_out_of_range_is_refused_by_the_rule_for_every_fetch(
    server: FeedServer,
) -> None:
    """A typo such as :80800 is refused as a target (``/source add`` says so), and a redirect to
    one is a refused fetch, not a failure inside the connection."""

    async def resolve(host: str) -> list[str]:
        return [PUBLIC]

    for url in ("https://feeds.example.org:80800/rss", "https://feeds.example.org:0/rss"):
        problem = await target_problem(url, allow_private=False, resolve=resolve)
        assert problem == "the port must be a number from 1 to 65535", url
    server.routes["/moved"] = Route(status=302, headers={"Location": "http://127.0.0.1:80800/"})
    cfg = config(allow_private=True)
    async with build_http_client(cfg) as client:
        with pytest.raises(FetchError, match="refused: the port must be") as caught:
            await Fetcher(client, cfg).get(server.url("/moved"), source="s")
    assert caught.value.permanent


async def test_the_connection_goes_to_the_checked_address(server: FeedServer) -> None:
    """A name only our resolver knows: the fetch connects to the address it gave (the system
    resolver cannot answer for ``feeds.test``), with the name still in the Host header."""
    server.routes["/feed"] = Route(RSS)

    async def resolve(host: str) -> list[str]:
        return ["127.0.0.1"] if host == "feeds.test" else []

    cfg = config(allow_private=True)
    async with build_http_client(cfg) as client:
        fetcher = Fetcher(client, cfg, resolve=resolve)
        result = await fetcher.get(f"http://feeds.test:{server.port}/feed", source="s")
    assert result.body == RSS
    assert server.requests[-1].headers["host"] == f"feeds.test:{server.port}"


async def test_dns_rebinding_cannot_reach_a_loopback_server(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name answers a public address when checked and 127.0.0.1 right after (TTL 0), as
    a rebinding attacker's DNS would. The check passed; the connection must still go to the
    address that was checked, so the loopback server never hears from us."""
    server.routes["/feed"] = Route(RSS)
    answers: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name != "rebind.example.org":
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = PUBLIC if not answers else "127.0.0.1"
        answers.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    cfg = config(allow_private=False)
    async with build_http_client(cfg) as client:
        fetcher = Fetcher(client, cfg)  # the real resolver, over the rebinding DNS
        with pytest.raises(FetchError) as caught:
            await fetcher.get(f"http://rebind.example.org:{server.port}/feed", source="s")
    assert answers[0] == PUBLIC  # the check saw the public answer
    assert server.requests == []  # and nothing reached the loopback server
    assert PUBLIC in caught.value.message  # the connection went to the checked address
