"""End to end: the real ``policywatch run`` process against loopback servers only — a fake Bot
API speaking Telegram's HTTP protocol and a feed server — with nothing mocked in between.

A user starts the bot and subscribes; /latest shows an item that was already in the feed (a
first poll is stored, not alerted); a new matching item appears in the feed and its alert
reaches the user's chat exactly once; a non-admin's /watch add is refused and not applied, an
admin's is applied and visible in /watch list.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.botkit import visible
from tests.fakes.feeds import FeedServer, Route
from tests.fakes.telegram import TOKEN, FakeBotAPI, RunningFake
from tests.procs import running_service
from tests.test_cli import cli_env, policywatch

USER, ADMIN = 4242, 9001
OLD_ITEM = "Commerce adds 140 Chinese chipmaking firms to the Entity List"
NEW_ITEM = "US tightens export controls on AI chips to China, adding HBM curbs"


def rss(*items: tuple[str, str, str]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>https://news.example.org/{guid}</link>"
        f"<guid>{guid}</guid><pubDate>{date}</pubDate>"
        f"<description>{title}.</description></item>"
        for title, guid, date in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Trade desk</title><link>https://news.example.org/</link>{body}</channel></rss>"
    ).encode()


def now_rfc822(offset: float = 0) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(time.time() + offset))


def wait_for(
    condition: Callable[[], bool],
    what: str,
    within: float = 30.0,
    describe: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition`` until it holds; on timeout fail, with ``describe()``'s account of the
    state that explains why."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    detail = f"\n{describe()}" if describe is not None else ""
    pytest.fail(f"timed out waiting for {what}{detail}")


def service_env(
    tmp_path: Path, telegram: RunningFake, sources: Path, **extra: str
) -> dict[str, str]:
    """The environment of a ``policywatch run`` on SQLite in ``tmp_path`` that talks to the fake
    Bot API and polls ``sources`` (loopback servers allowed) and its outbox every second."""
    return cli_env(
        f"sqlite:///{tmp_path}/pw.db",
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=telegram.base_url,
        POLICYWATCH_SOURCES_FILE=str(sources),
        POLICYWATCH_ALLOW_PRIVATE_SOURCES="true",
        POLICYWATCH_SOURCE_TICK="1s",
        POLICYWATCH_OUTBOX_TICK="1s",
        PTB_TIMEDELTA="true",
        **extra,
    )


def metrics_text(port: int) -> str:
    """The service's /metrics page, or "" while its health server is not listening yet."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.TransportError:
        return ""


class Chat:
    """A Telegram user typing into the bot's chat, reading what the bot answers."""

    def __init__(self, fake: FakeBotAPI, chat_id: int) -> None:
        self.fake, self.chat_id = fake, chat_id

    def texts(self) -> list[str]:
        return [visible(m.text) for m in self.fake.messages_to(self.chat_id)]

    def say(self, text: str, *, expect: str | None = None) -> str:
        """Send ``text``; return the bot's next reply (waiting for one containing ``expect``)."""
        before = len(self.texts())
        self.fake.push_text(text, chat_id=self.chat_id, user_id=self.chat_id)
        wait_for(
            lambda: any(expect is None or expect in t for t in self.texts()[before:]),
            f"a reply to {text!r}",
        )
        replies = self.texts()[before:]
        return next(t for t in replies if expect is None or expect in t)


def test_a_subscriber_and_an_admin_use_the_running_service(
    tmp_path: Path, feeds: FeedServer, telegram: RunningFake
) -> None:
    feeds.routes["/trade.xml"] = Route(
        body=rss((OLD_ITEM, "old-1", now_rfc822(-3600))), etag='"v1"'
    )
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        "  - name: trade-desk\n"
        "    kind: rss\n"
        f"    url: {feeds.url('/trade.xml')}\n"
        "    interval: 1s\n",
        encoding="utf-8",
    )
    env = service_env(
        tmp_path,
        telegram,
        sources,
        POLICYWATCH_HEALTH_ADDR="127.0.0.1:0",  # its port is read from the log
        POLICYWATCH_ADMIN_IDS=str(ADMIN),
    )
    assert policywatch("migrate", env=env).returncode == 0
    assert policywatch("seed", env=env).returncode == 0
    fake = telegram.fake
    with running_service([sys.executable, "-m", "policywatch", "run"], env) as service:
        health_port = service.health_port
        wait_for(lambda: bool(fake.commands), "the bot to register its commands")
        # the first poll's item is stored (encoded and classified) before anyone asks for it:
        # the feed's request alone says nothing about when that is done
        stored = 'policywatch_items_stored_total{source="trade-desk"} 1.0'
        wait_for(lambda: stored in metrics_text(health_port), "the first poll's item to be stored")

        user, admin = Chat(fake, USER), Chat(fake, ADMIN)
        assert "Welcome to PolicyWatch" in user.say("/start", expect="Welcome")
        assert "You now follow" in user.say("/subscribe export-controls", expect="follow")
        latest = user.say("/latest", expect="Entity List")
        assert OLD_ITEM in latest  # already in the feed: stored and shown, never alerted

        # A new matching item appears in the feed: its alert reaches the user once.
        feeds.routes["/trade.xml"] = Route(
            body=rss((NEW_ITEM, "new-1", now_rfc822()), (OLD_ITEM, "old-1", now_rfc822(-3600))),
            etag='"v2"',
        )
        wait_for(lambda: any(NEW_ITEM in t for t in user.texts()), "the alert", within=40)
        time.sleep(3)  # several more polls and outbox ticks: nothing may repeat
        alerts = [t for t in user.texts() if NEW_ITEM in t]
        assert len(alerts) == 1, alerts
        assert "export" in alerts[0].lower()  # the theme and why it matched are shown
        # The item of the first poll was never alerted: it is only in the /latest answer.
        assert [t for t in user.texts() if OLD_ITEM in t] == [latest]

        # A non-admin cannot edit a watchlist; an admin can, and the edit is visible.
        refused = user.say('/watch add export-controls "Moore Threads"', expect="only for")
        assert "only for" in refused
        admin.say("/start", expect="Welcome")
        added = admin.say('/watch add export-controls "Moore Threads"', expect="Moore Threads")
        assert "Moore Threads" in added
        before = len(admin.texts())
        admin.say("/watch list export-controls", expect="Moore Threads")
        listing = "\n".join(admin.texts()[before:])  # a long watchlist spans several messages
        assert listing.startswith("export-controls (")
        assert listing.count("Moore Threads") == 1

        # Operations see the same story in /metrics.
        metrics = metrics_text(health_port)
        assert 'policywatch_deliveries_total{outcome="sent"}' in metrics
        assert 'policywatch_items_stored_total{source="trade-desk"} 2.0' in metrics
        assert 'policywatch_items_matched_total{theme="export-controls"}' in metrics
        assert httpx.get(f"http://127.0.0.1:{health_port}/healthz", timeout=5).status_code == 200
        assert service.stop() == 0, service.err
    assert "Traceback" not in service.err, service.err
