"""Helpers for bot tests: a PTB Application wired to a test database and the loopback fake
Bot API, and a way to feed it updates through ``Application.process_update``."""

from __future__ import annotations

import html
import itertools
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.ext import Application

from bot.app import Services
from bot.classification import DryRunExample, DryRunResult
from bot.settings import Settings
from bot.telegram_bot import build_application
from models.db.engine import make_session_factory
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


def fake_check_rule(text: str) -> str | None:
    """A stand-in for the rule language: unbalanced quotes and a dangling operator fail."""
    if text.count('"') % 2:
        return "unbalanced quote"
    if text.split()[-1] in {"AND", "OR", "NOT"}:
        return f"{text.split()[-1]} needs a term after it"
    return None


async def fake_dry_run(
    session: AsyncSession,
    slug: str,
    rule: str,
    now: datetime,
    days: int = 30,
    examples: int = 5,
) -> DryRunResult:
    """A stand-in dry run: substring match over titles (enough to test the command)."""
    from sqlalchemy import select

    from models.db.tables import Item

    rows = (await session.execute(select(Item.id, Item.title, Item.published_at))).all()
    term = rule.strip('"')
    hits = [r for r in rows if term.lower() in r.title.lower()]
    return DryRunResult(
        slug=slug,
        rule=rule,
        days=days,
        items=len(rows),
        matched=len(hits),
        new_to_theme=len(hits),
        examples=tuple(
            DryRunExample(r.id, r.title, r.published_at, (term,)) for r in hits[:examples]
        ),
    )


async def public_resolver(host: str) -> list[str]:
    """Names resolve to a public address, except ``intranet.example`` (a private one)."""
    return ["10.1.2.3"] if host == "intranet.example" else ["93.184.216.34"]


def visible(html_text: str) -> str:
    """What a Telegram client shows for an HTML message: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


@dataclass
class BotHarness:
    app: Application[Any, Any, Any, Any, Any, Any]
    fake: FakeBotAPI
    services: Services
    _ids: itertools.count[int]

    async def send(
        self,
        text: str,
        *,
        chat_id: int = USER,
        user_id: int | None = None,
        chat_type: str | None = None,
    ) -> list[str]:
        """Process one incoming message; return the texts the bot sent in answer."""
        before = len(self.fake.sent)
        user_id = chat_id if user_id is None else user_id
        chat_type = chat_type or ("private" if chat_id > 0 else "group")
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = "analyst"
        else:
            chat["title"] = f"group {chat_id}"
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": chat,
            "text": text,
        }
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

    async def press(self, data: str, *, chat_id: int = USER) -> None:
        await self.process(
            {
                "callback_query": {
                    "id": f"cb{next(self._ids)}",
                    "from": {"id": chat_id, "is_bot": False, "first_name": "analyst"},
                    "chat_instance": str(chat_id),
                    "data": data,
                    "message": {
                        "message_id": 5,
                        "date": int(time.time()),
                        "chat": {"id": chat_id, "type": "private"},
                        "text": "...",
                    },
                }
            }
        )

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.fake.calls if c.method == method]

    def last(self, chat_id: int = USER) -> SentMessage:
        return self.fake.messages_to(chat_id)[-1]


@asynccontextmanager
async def bot_harness(
    db: Database, *, ports: bool = True, settings_extra: Sequence[tuple[str, Any]] = ()
) -> AsyncIterator[BotHarness]:
    fake = FakeBotAPI(per_chat_interval=0.0, group_per_minute=1000, overall_per_second=1000)
    with serve_fake_bot_api(fake) as running:
        settings = make_settings(db.url, running.base_url, **dict(settings_extra))
        services = Services(
            settings=settings,
            engine=db.engine,
            sessions=make_session_factory(db.engine),
            clock=lambda: NOW,
            check_rule=fake_check_rule if ports else None,
            dry_run=fake_dry_run if ports else None,
        )
        app = build_application(services, resolver=public_resolver)
        await app.initialize()
        assert app.bot.username == BOT_USERNAME
        try:
            yield BotHarness(app=app, fake=fake, services=services, _ids=itertools.count(10))
        finally:
            await app.shutdown()
