"""Busy, not stuck: a slow source does not hold back the others, and a command flood from one
chat does not stall the bot for everyone. Causality, not timings: each test asserts that one
thing happened while the other was still in progress."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.application import build_application, run_bot
from bot.context import BotConfig, BotContext
from models.db.tables import Item, Source
from models.sources import SourceSpec
from policywatch.app import build_services
from policywatch.service import run_service, service_ticks
from policywatch.settings import Settings
from tests.botkit import public_resolver
from tests.conftest import Database
from tests.fakes.feeds import FeedServer, Route
from tests.fakes.telegram import TOKEN, FakeBotAPI, serve_fake_bot_api


def feed(*titles: str) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><guid>https://example.org/{t}</guid>"
        "<pubDate>Mon, 27 Jul 2026 12:00:00 GMT</pubDate></item>"
        for t in titles
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


async def stored_titles(db: Database, source: str) -> set[str]:
    async with db.sessions() as session:
        rows = await session.scalars(select(Item.title).join(Source).where(Source.name == source))
        return set(rows.all())


async def test_a_slow_source_does_not_hold_back_the_others(db: Database, feeds: FeedServer) -> None:
    """One source trickles its answer a byte at a time; the good source, due every second,
    has its next item stored while the slow answer is still coming in."""
    feeds.routes["/slow"] = Route(feed("slow one") * 4, trickle=0.05)  # ~20 s of trickling
    feeds.routes["/good"] = Route(feed("first"))
    settings = Settings.model_validate(
        {
            "POLICYWATCH_DATABASE_URL": db.url,
            "POLICYWATCH_ALLOW_PRIVATE_SOURCES": True,
            "POLICYWATCH_SOURCE_TICK": "0.2s",
            "POLICYWATCH_PARSE_WORKERS": 0,
        }
    )
    async with db.transaction() as uow:
        await uow.sources.sync_from_config(
            [
                SourceSpec(name="slow", kind="rss", url=feeds.url("/slow"), interval_seconds=1),
                SourceSpec(name="good", kind="rss", url=feeds.url("/good"), interval_seconds=1),
            ],
            datetime_now(),
        )
    stop = asyncio.Event()
    async with build_services(settings) as services:
        ticks = [t for t in service_ticks(services) if t.name == "sources"]
        task = asyncio.create_task(run_service(services, ticks=ticks, stop=stop))
        try:
            await until(lambda: stored_titles(db, "good"), lambda titles: "first" in titles)
            assert any(r.path == "/slow" for r in feeds.requests)
            feeds.routes["/good"] = Route(feed("first", "second"))
            await until(
                lambda: stored_titles(db, "good"),
                lambda titles: "second" in titles or "/slow" in feeds.finished,
            )
            assert "/slow" not in feeds.finished, "the good source waited for the slow one"
            assert "second" in await stored_titles(db, "good")
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)


def datetime_now() -> Any:
    from models.timeutil import utcnow

    return utcnow() - timedelta(seconds=1)


async def until(read: Any, done: Any, within: float = 60.0) -> None:
    for _ in range(int(within / 0.1)):
        if done(await read()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


FLOODER = 7001
BYSTANDER = 7002


async def test_a_command_flood_from_one_chat_does_not_stall_the_others(db: Database) -> None:
    """300 /search from one chat, then /help from another. Telegram lets a bot send one
    message a second to a private chat (the fake enforces it), so answering the flood takes
    minutes; the other chat's /help is answered while the flooder's answers are still going
    out, and the flooder is told once that commands were dropped, rather than queued."""
    fake = FakeBotAPI()  # Telegram's limits: 1 message/s per private chat, 30/s overall
    with serve_fake_bot_api(fake) as running:
        ctx = BotContext(
            config=BotConfig(token=TOKEN, base_url=running.base_url), db=db, resolve=public_resolver
        )
        stop = asyncio.Event()
        task = asyncio.create_task(run_bot(build_application(ctx), stop))
        try:
            for n in range(300):
                fake.push_text(f"/search chips {n}", chat_id=FLOODER)
            fake.push_text("/help", chat_id=BYSTANDER)
            answered = await asyncio.to_thread(
                fake.wait_for, lambda f: bool(f.messages_to(BYSTANDER)), 60.0
            )
            assert answered, "the other chat's /help was not answered while the flood ran"
            flooded_before_help = len(fake.messages_to(FLOODER))
            # the flood is still going out: more answers to the flooder come after the /help
            more = await asyncio.to_thread(
                fake.wait_for, lambda f: len(f.messages_to(FLOODER)) > flooded_before_help, 30.0
            )
            assert more
            assert "PolicyWatch commands" in fake.messages_to(BYSTANDER)[0].text
            # wait until the flood settles, then: dropped politely, once
            await asyncio.to_thread(fake.wait_for, lambda f: _quiet(f, FLOODER), 60.0)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)
    texts = [m.text for m in fake.messages_to(FLOODER)]
    notices = [t for t in texts if "too fast" in t]
    assert len(notices) == 1
    assert len(texts) < 300
    assert all("Sorry, something went wrong" not in t for t in texts)


def _quiet(fake: FakeBotAPI, chat_id: int) -> bool:
    sent = fake.messages_to(chat_id)
    return bool(sent) and time.monotonic() - sent[-1].at > 3.0
