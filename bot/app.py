"""The composition root: everything the program uses is built here, from explicit settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.classification import Classifier
from bot.settings import Settings
from models.db.engine import make_engine, make_session_factory
from models.timeutil import utcnow


@dataclass(slots=True)
class Services:
    """What handlers, ticks and commands share. Built once per process by ``build_services``."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime] = field(default=utcnow)
    classifier: Classifier = field(default_factory=Classifier)


@asynccontextmanager
async def build_services(
    settings: Settings, *, clock: Callable[[], datetime] = utcnow
) -> AsyncIterator[Services]:
    """Build the services for ``settings`` and dispose of them on exit."""
    engine = make_engine(settings.database_url)
    try:
        yield Services(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            clock=clock,
        )
    finally:
        await engine.dispose()
