"""The composition root: everything the program uses is built here, from explicit settings, and
nowhere else (nothing is built at import time)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.context import BotConfig, BotContext
from delivery.notifier import Notifier, NotifierConfig
from delivery.senders import ConsoleSender, Outcome, Sender, TelegramSender
from models.alerts import BurstPolicy
from models.db import Database
from models.db.leadership import Leadership
from models.db.outbox import Outbox
from models.feedback import WaryPolicy
from models.glossary import glosses
from models.timeutil import utcnow
from pipeline.classification import Classifier
from pipeline.encoder import load_encoder
from pipeline.ingest import AlertPolicy, build_poller
from pipeline.polling import (
    STATUS_FAILED,
    STATUS_NOT_MODIFIED,
    STATUS_OK,
    PollConfig,
    Poller,
    SourcePollSummary,
)
from policywatch.health import Heartbeats
from policywatch.logs import get_logger
from policywatch.metrics import Metrics
from policywatch.settings import Settings
from scrapers.cpu import ParserPool
from scrapers.http import FetchConfig, Fetcher, build_http_client

log = get_logger(__name__)


def fetch_config(settings: Settings) -> FetchConfig:
    """The fetch policy for sources."""
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


def poll_config(settings: Settings) -> PollConfig:
    return PollConfig(
        worker_id=settings.worker_id,
        concurrency=settings.poll_concurrency,
        source_timeout=settings.source_timeout,
        max_backoff=settings.source_max_backoff,
        failing_after=settings.source_failing_after,
    )


def alert_policy(settings: Settings) -> AlertPolicy:
    return AlertPolicy(
        burst=BurstPolicy(max_alerts=settings.burst_max_alerts, window=settings.burst_window),
        max_age=settings.alert_max_age,
        admin_ids=settings.admin_ids,
        wary=wary_policy(settings),
    )


def wary_policy(settings: Settings) -> WaryPolicy:
    """When a source's unsure matches of a theme wait for digests (the planner's rule 3; shown
    to editors by /watch stats)."""
    return WaryPolicy(
        min_alerts=settings.wary_min_alerts,
        floor=settings.wary_floor,
        window=timedelta(days=settings.wary_window_days),
        explore_every=settings.wary_explore_every,
    )


def notifier_config(settings: Settings) -> NotifierConfig:
    return NotifierConfig(
        rate=settings.send_rate,
        max_in_flight=settings.send_max_in_flight,
        batch=settings.outbox_batch,
        max_attempts=settings.send_max_attempts,
        retry_base=settings.send_retry_base,
    )


def bot_config(settings: Settings) -> BotConfig | None:
    """The bot's settings, or None without a token (alerts then go to the console)."""
    if settings.telegram_bot_token is None:
        return None
    return BotConfig(
        token=settings.telegram_bot_token.get_secret_value(),
        base_url=settings.telegram_api_base_url,
        admin_ids=settings.admin_ids,
        allow_private_sources=settings.allow_private_sources,
        max_concurrent_updates=settings.bot_concurrency,
        chat_burst=settings.chat_burst,
        chat_per_minute=settings.chat_per_minute,
        wary=wary_policy(settings),
    )


def build_sender(settings: Settings) -> Sender:
    """The Telegram sender when a bot token is set, else the console sender."""
    config = bot_config(settings)
    if config is None:
        return ConsoleSender()
    return TelegramSender(
        config.token, config.base_url, pool_size=max(8, settings.send_max_in_flight * 2)
    )


@dataclass(slots=True)
class Services:
    """What the ticks, the bot and the commands share. Built once per process."""

    settings: Settings
    db: Database
    fetcher: Fetcher
    sender: Sender
    notifier: Notifier
    poller: Poller
    classifier: Classifier
    metrics: Metrics
    clock: Callable[[], datetime] = utcnow
    heartbeats: Heartbeats = field(default_factory=Heartbeats)
    leaders: dict[str, Leadership] = field(default_factory=dict)

    def leadership(self, job: str) -> Leadership:
        """The lock that makes this process the only one doing ``job`` (e.g. "sender")."""
        if job not in self.leaders:
            self.leaders[job] = self.db.leadership(job)
        return self.leaders[job]

    def bot_context(self) -> BotContext | None:
        config = bot_config(self.settings)
        if config is None:
            return None
        return BotContext(
            config=config,
            db=self.db,
            classifier=self.classifier,
            clock=self.clock,
            fetcher=self.fetcher,
        )

    async def warm_up(self) -> None:
        """Load what the pipeline would otherwise load on first use, off the event loop and
        before any tick needs it: event grouping's 120,000-entry dictionary (about 2 s and
        30 MB), read the first time a Chinese item is grouped."""
        await asyncio.to_thread(glosses)

    async def poll(self, *, due_only: bool = True) -> list[SourcePollSummary]:
        """Poll due (or all enabled) sources through the whole pipeline and wait for every one
        of them (``policywatch poll --once``), and count it."""
        summaries = await self.poller.poll_due(due_only=due_only)
        self.round_done(summaries)
        return summaries

    async def poll_tick(self) -> int:
        """The sources tick: start the due sources and return without waiting for them (a
        slow source never holds back the next tick); each round is counted and logged when
        its last poll ends."""
        return await self.poller.start_due(on_round=self.round_done)

    def round_done(self, summaries: Sequence[SourcePollSummary]) -> None:
        """Count a finished round of polls and log one line about it."""
        record_poll_metrics(self.metrics, summaries)
        if summaries:
            log.info("poll round", **round_summary(summaries))


def round_summary(summaries: Sequence[SourcePollSummary]) -> dict[str, object]:
    """What one line about a round of polls says."""
    statuses = [s.status for s in summaries]
    failed = [s for s in summaries if s.status == STATUS_FAILED]
    line: dict[str, object] = {
        "sources": len(summaries),
        "ok": statuses.count(STATUS_OK),
        "not_modified": statuses.count(STATUS_NOT_MODIFIED),
        "failed": len(failed),
        "items_new": sum(s.new for s in summaries),
        "items_updated": sum(s.updated for s in summaries),
        "skipped": sum(s.skipped for s in summaries),
    }
    if failed:
        line["errors"] = "; ".join(f"{s.name}: {s.error}" for s in failed[:3])
    return line


def record_poll_metrics(metrics: Metrics, summaries: Sequence[SourcePollSummary]) -> None:
    for s in summaries:
        metrics.fetches.labels(source=s.name, outcome=s.status).inc()
        metrics.fetch_seconds.labels(source=s.name).observe(s.duration)
        metrics.items_fetched.labels(source=s.name).inc(s.fetched)
        metrics.items_stored.labels(source=s.name).inc(s.new)
        metrics.items_updated.labels(source=s.name).inc(s.updated)
        metrics.source_failures.labels(source=s.name).set(s.consecutive_failures)
        if s.status != STATUS_FAILED:  # a failed poll says nothing of quiet
            metrics.source_quiet.labels(source=s.name).set(1 if s.quiet else 0)


@asynccontextmanager
async def build_services(
    settings: Settings, *, clock: Callable[[], datetime] = utcnow
) -> AsyncIterator[Services]:
    """Build the services for ``settings`` and dispose of them on exit."""
    db = Database.connect(settings.database_url, pool=settings.db_pool)
    metrics = Metrics()
    sender = build_sender(settings)

    def count_outcome(outcome: Outcome) -> None:
        metrics.deliveries.labels(outcome=outcome.value).inc()
        if outcome is Outcome.FLOOD:
            metrics.telegram_retry_after.inc()

    def count_matches(by_theme: Mapping[str, int]) -> None:
        for slug, count in by_theme.items():
            metrics.items_matched.labels(theme=slug).inc(count)

    outbox = Outbox(db.sessions, worker_id=settings.worker_id, lease=settings.outbox_lease)
    notifier = Notifier(
        outbox, sender, notifier_config(settings), clock=clock, on_outcome=count_outcome
    )
    config = fetch_config(settings)
    http = build_http_client(config)
    parsers = ParserPool(settings.parse_workers)
    fetcher = Fetcher(http, config, cpu=parsers)
    classifier = Classifier(load_encoder(settings.encoder, settings.encoder_threads))
    poller = build_poller(
        db,
        fetcher,
        poll_config(settings),
        classifier=classifier,
        policy=alert_policy(settings),
        clock=clock,
        on_matches=count_matches,
    )
    services = Services(
        settings=settings,
        db=db,
        fetcher=fetcher,
        sender=sender,
        notifier=notifier,
        poller=poller,
        classifier=classifier,
        metrics=metrics,
        clock=clock,
    )
    try:
        yield services
    finally:
        await poller.aclose()
        await notifier.aclose()
        for lead in services.leaders.values():
            await lead.release()
        await sender.stop()
        await http.aclose()
        parsers.close()
        await db.dispose()
