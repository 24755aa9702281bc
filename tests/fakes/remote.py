"""The loopback fakes (a feed server and a fake Bot API) in a child process.

A test that measures the service's memory must not count its fakes: in the same process, their
per-request threads, request logs and feed bodies grow the resident set as much as a leak would.
``remote_fakes()`` starts both servers in a spawned child and talks to it over a pipe: the test
publishes feed bodies with ``set_route`` and reads what the fake Bot API received with ``sent``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection

from tests.fakes.feeds import Route, feed_server
from tests.fakes.telegram import FakeBotAPI, serve_fake_bot_api

START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Delivered:
    """What the fake Bot API received: each message's (chat, text), and its 429 answers."""

    messages: list[tuple[int, str]]
    flood_errors: int


def _serve(conn: Connection) -> None:
    """The child: run both servers until told to stop (or the parent goes away)."""
    with feed_server() as feeds, serve_fake_bot_api(FakeBotAPI()) as telegram:
        conn.send((feeds.url(""), telegram.base_url))
        while True:
            try:
                command, *args = conn.recv()
            except EOFError:
                return
            if command == "route":
                path, body, etag = args
                feeds.routes[path] = Route(body=body, etag=etag)
                conn.send(None)
            elif command == "sent":
                fake = telegram.fake
                conn.send(Delivered([(m.chat_id, m.text) for m in fake.sent], fake.flood_errors))
            else:
                return


class RemoteFakes:
    """The parent's handle on the child's servers."""

    def __init__(self, conn: Connection, feeds_root: str, base_url: str) -> None:
        self._conn = conn
        self._feeds_root = feeds_root
        self.base_url = base_url  # for TELEGRAM_API_BASE_URL

    def url(self, path: str) -> str:
        return f"{self._feeds_root}{path}"

    def set_route(self, path: str, body: bytes, etag: str | None = None) -> None:
        self._conn.send(("route", path, body, etag))
        self._conn.recv()

    def sent(self) -> Delivered:
        self._conn.send(("sent",))
        delivered: Delivered = self._conn.recv()
        return delivered


@contextmanager
def remote_fakes() -> Iterator[RemoteFakes]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child,), name="loopback-fakes", daemon=True)
    process.start()
    child.close()
    try:
        if not parent.poll(START_TIMEOUT_S):
            msg = "the loopback fakes did not start"
            raise RuntimeError(msg)
        feeds_root, base_url = parent.recv()
        yield RemoteFakes(parent, feeds_root, base_url)
    finally:
        with suppress(OSError):
            parent.send(("stop",))
        parent.close()
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
