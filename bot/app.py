"""The composition root: everything the program uses is built here, from explicit settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.classification import Classifier
from bot.health import Heartbeats
from bot.metrics import Metrics
from bot.notifier import Notifier, NotifierConfig
from bot.ports import DryRunner, RuleChecker
from bot.senders import Outcome, Sender, build_sender
from bot.settings import Settings
from models.db.engine import make_engine, make_session_factory
from models.db.leadership import Leadership
from models.db.outbox import Outbox
from models.matching import check_rule
from models.timeutil import utcnow
from scrapers.cpu import ParserPool
from scrapers.http import FetchConfig, Fetcher, build_http_client


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
    fetcher: Fetcher | None = None  # the one shared HTTP client for sources (scrapers.http)
    sender: Sender | None = None  # the one way out to Telegram (or the console)
    notifier: Notifier | None = None  # the one place that sends
    leaders: dict[str, Leadership] = field(default_factory=dict)

    def leadership(self, job: str) -> Leadership:
        """The lock that makes this process the only one doing ``job`` (e.g. "sender")."""
        if job not in self.leaders:
            self.leaders[job] = Leadership(self.engine, job)
        return self.leaders[job]

    classifier: Classifier = field(default_factory=Classifier)


def fetch_config(settings: Settings) -> FetchConfig:
    """The fetch policy for sources, from settings."""
    return FetchConfig(
        user_agent=settings.http_user_agent,
        connect_timeout=settings.http_connect_timeout,
        read_timeout=settings.http_read_timeout,
        total_timeout=settings.http_total_timeout,
        max_bytes=settings.http_max_bytes,
        max_connections=settings.http_max_connections,
        per_host=settings.http_per_host,
        allow_private=settings.allow_private_sources,
    )


@asynccontextmanager
async def build_services(
    settings: Settings, *, clock: Callable[[], datetime] = utcnow
) -> AsyncIterator[Services]:
    """Build the services for ``settings`` and dispose of them on exit."""
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    sender = build_sender(settings)
    outbox = Outbox(sessions, worker_id=settings.worker_id, lease=settings.outbox_lease)
    metrics = Metrics()

    def count_outcome(outcome: Outcome) -> None:
        metrics.deliveries.labels(outcome=outcome.value).inc()
        if outcome is Outcome.FLOOD:
            metrics.telegram_retry_after.inc()

    notifier = Notifier(
        outbox,
        sender,
        NotifierConfig.from_settings(settings),
        clock=clock,
        on_outcome=count_outcome,
    )
    config = fetch_config(settings)
    http = build_http_client(config)
    parsers = ParserPool(settings.parse_workers)
    classifier = Classifier()
    services: Services | None = None
    try:
        services = Services(
            settings=settings,
            engine=engine,
            sessions=sessions,
            clock=clock,
            metrics=metrics,
            fetcher=Fetcher(http, config, cpu=parsers),
            classifier=classifier,
            check_rule=check_rule,
            dry_run=classifier.dry_run,
            sender=sender,
            notifier=notifier,
        )
        yield services
    finally:
        await notifier.aclose()
        for lead in services.leaders.values() if services is not None else ():
            await lead.release()
        await sender.stop()
        await http.aclose()
        parsers.close()
        await engine.dispose()
