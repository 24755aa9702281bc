"""The composition root: everything the program uses is built here, from explicit settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.health import Heartbeats
from bot.metrics import Metrics
from bot.ports import DryRunner, RuleChecker
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
    metrics: Metrics = field(default_factory=Metrics)
    heartbeats: Heartbeats = field(default_factory=Heartbeats)
    # Ports of the themes engine (bot/ports.py); None until wired: the bot says "not available".
    check_rule: RuleChecker | None = None
    dry_run: DryRunner | None = None


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
