"""The composition root: everything the program uses is built here, from explicit settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.notifier import Notifier, NotifierConfig
from bot.senders import Sender, build_sender
from bot.settings import Settings
from models.db.engine import make_engine, make_session_factory
from models.db.outbox import Outbox
from models.timeutil import utcnow


@dataclass(slots=True)
class Services:
    """What handlers, ticks and commands share. Built once per process by ``build_services``."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime] = field(default=utcnow)
    sender: Sender | None = None  # the one way out to Telegram (or the console)
    notifier: Notifier | None = None  # the one place that sends


@asynccontextmanager
async def build_services(
    settings: Settings, *, clock: Callable[[], datetime] = utcnow
) -> AsyncIterator[Services]:
    """Build the services for ``settings`` and dispose of them on exit."""
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    sender = build_sender(settings)
    outbox = Outbox(sessions, worker_id=settings.worker_id, lease=settings.outbox_lease)
    notifier = Notifier(outbox, sender, NotifierConfig.from_settings(settings), clock=clock)
    try:
        yield Services(
            settings=settings,
            engine=engine,
            sessions=sessions,
            clock=clock,
            sender=sender,
            notifier=notifier,
        )
    finally:
        await notifier.aclose()
        await sender.stop()
        await engine.dispose()
