"""Helpers for bot tests: a PTB Application wired to a test database and the loopback fake
Bot API, and a way to feed it updates through ``Application.process_update``."""

from __future__ import annotations

import html
import itertools
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.application import build_application
from bot.context import BotConfig, BotContext
from policywatch.settings import Settings
from scrapers.http import FetchConfig, Fetcher, build_http_client
from tests.conftest import Database
from tests.fakes.telegram import BOT_USERNAME, TOKEN, FakeBotAPI, SentMessage, serve_fake_bot_api

NOW = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)
ADMIN = 900
EDITOR = 901
USER = 902


def make_settings(database_url: str, base_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "POLICYWATCH_DATABASE_URL": database_url,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": base_url,
        "POLICYWATCH_ADMIN_IDS": str(ADMIN),
        **extra,
    }
    return Settings.model_validate(values)


async def public_resolver(host: str) -> list[str]:
    """Names resolve to a public address, except ``intranet.example`` (a private one) and
    loopback literals (to themselves, for loopback feed servers when private is allowed)."""
    if host == "intranet.example":
        return ["10.1.2.3"]
    return [host] if host.startswith("127.") else ["93.184.216.34"]


def visible(html_text: str) -> str:
    """What a Telegram client shows for an HTML message: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


@dataclass
class BotHarness:
    app: Application[Any, Any, Any, Any, Any, Any]
    fake: FakeBotAPI
    ctx: BotContext
    _ids: itertools.count[int]

    async def send(
        self,
        text: str,
        *,
        chat_id: int = USER,
        user_id: int | None = None,
        chat_type: str | None = None,
        forum: bool = False,
        topic: int | None = None,
    ) -> list[str]:
        """Process one incoming message; return the texts the bot sent in answer. ``forum``:
        the chat is a forum (a supergroup with topics); ``topic``: sent in that topic."""
        before = len(self.fake.sent)
        user_id = chat_id if user_id is None else user_id
        chat_type = chat_type or ("private" if chat_id > 0 else "group")
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = "analyst"
        else:
            chat["title"] = f"group {chat_id}"
        if forum or topic is not None:
            chat["is_forum"] = True
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": chat,
            "text": text,
        }
        if topic is not None:
            message |= {"message_thread_id": topic, "is_topic_message": True}
        if chat_type != "channel":
            message["from"] = {"id": user_id, "is_bot": False, "first_name": "analyst"}
        if text.startswith("/"):
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
            ]
        key = "channel_post" if chat_type == "channel" else "message"
        await self.process({key: message})
        return [visible(m.text) for m in self.fake.sent[before:]]

    async def process(self, payload: dict[str, Any]) -> None:
        update = Update.de_json({"update_id": next(self._ids), **payload}, self.app.bot)
        await self.app.process_update(update)

    async def press(
        self,
        data: str,
        *,
        chat_id: int = USER,
        user_id: int | None = None,
        topic: int | None = None,
        markup: dict[str, Any] | None = None,
    ) -> None:
        """Press an inline button of a message of the bot's (in forum topic ``topic``) whose
        keyboard is ``markup`` (Telegram sends it with the press)."""
        chat_type = "private" if chat_id > 0 else "supergroup"
        message: dict[str, Any] = {
            "message_id": 5,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type},
            "text": "...",
        }
        if markup is not None:
            message["reply_markup"] = markup
        if topic is not None:
            message["chat"]["is_forum"] = True
            message |= {"message_thread_id": topic, "is_topic_message": True}
        await self.process(
            {
                "callback_query": {
                    "id": f"cb{next(self._ids)}",
                    "from": {
                        "id": chat_id if user_id is None else user_id,
                        "is_bot": False,
                        "first_name": "analyst",
                    },
                    "chat_instance": str(chat_id),
                    "data": data,
                    "message": message,
                }
            }
        )

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.fake.calls if c.method == method]

    def last(self, chat_id: int = USER) -> SentMessage:
        return self.fake.messages_to(chat_id)[-1]


@asynccontextmanager
async def bot_harness(
    db: Database, *, allow_private_sources: bool = False
) -> AsyncIterator[BotHarness]:
    """The bot as ``policywatch run`` builds it (the real rule parser and classifier), against
    ``db`` and a loopback fake Bot API; names resolve through ``public_resolver``."""
    fake = FakeBotAPI(per_chat_interval=0.0, group_per_minute=1000, overall_per_second=1000)
    fetch = FetchConfig(
        user_agent="PolicyWatch-test/1",
        allow_private=allow_private_sources,
        connect_timeout=2.0,
        read_timeout=2.0,
        total_timeout=5.0,
    )
    with serve_fake_bot_api(fake) as running:
        client = build_http_client(fetch)
        ctx = BotContext(
            config=BotConfig(
                token=TOKEN,
                base_url=running.base_url,
                admin_ids=frozenset({ADMIN}),
                allow_private_sources=allow_private_sources,
            ),
            db=db,
            clock=lambda: NOW,
            resolve=public_resolver,
            fetcher=Fetcher(client, fetch, resolve=public_resolver),
        )
        app = build_application(ctx)
        await app.initialize()
        assert app.bot.username == BOT_USERNAME
        try:
            yield BotHarness(app=app, fake=fake, ctx=ctx, _ids=itertools.count(10))
        finally:
            await app.shutdown()
            await client.aclose()
