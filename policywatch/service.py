"""``policywatch run``: the long-running service.

One event loop runs the scheduler ticks (due sources, the outbox, due digests) and, when a token
is set, the Telegram bot. The scheduler only ticks: the work queues live in the database, so a
restart loses nothing. SIGINT and SIGTERM stop it cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.application import Backoff, build_application, run_bot
from models.db.leadership import Leadership
from models.db.retention import RetentionPolicy
from pipeline.digests import run_digest_tick
from pipeline.encoder import load_cross_fit
from pipeline.grouping import group_backlog
from pipeline.reminders import run_reminder_tick
from pipeline.training import retrain
from policywatch.app import Services
from policywatch.health import HealthServer
from policywatch.logs import get_logger

log = get_logger(__name__)


SCHEDULER_BEAT = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class Tick:
    """A short periodic job: it finds due work in the database and does it."""

    name: str
    interval: timedelta
    run: Callable[[], Awaitable[object]]


def service_ticks(services: Services) -> list[Tick]:
    """The ticks the service runs; each stage of the pipeline adds its own."""
    settings = services.settings
    ticks: list[Tick] = [
        Tick("sources", settings.source_tick, services.poll_tick),
        Tick("events", EVENTS_INTERVAL, lambda: group_backlog(services.db, services.clock())),
        Tick("retention", RETENTION_INTERVAL, lambda: run_retention(services)),
    ]
    sending = False

    async def outbox() -> None:
        # Several workers may share PostgreSQL; only the holder of the lock sends, so the
        # pacing under Telegram's limits is one process's business.
        nonlocal sending
        leading = await services.leadership("sender").try_acquire()
        if leading != sending:
            sending = leading
            target = "Telegram" if settings.telegram_bot_token else "the console"
            log.info(
                f"this worker sends to {target}" if leading else "another worker sends now",
                worker=settings.worker_id,
            )
        if leading:
            await services.notifier.tick()

    ticks.append(Tick("outbox", settings.outbox_tick, outbox))

    async def digests() -> None:
        report = await run_digest_tick(services.db, services.clock())
        services.metrics.digest_runs.labels(outcome="enqueued").inc(report.enqueued)
        services.metrics.digest_runs.labels(outcome="empty_skipped").inc(report.empty_skipped)

    ticks.append(Tick("digests", settings.digest_tick, digests))
    ticks.append(
        Tick(
            "reminders", REMINDER_INTERVAL, lambda: run_reminder_tick(services.db, services.clock())
        )
    )
    if settings.train_interval is not None:

        async def training() -> None:
            report = await retrain(
                services.db,
                services.clock(),
                min_votes=settings.feedback_min_votes,
                admin_ids=settings.admin_ids,
                encoder=services.classifier.encoder,
                # the fold encoders load for this training and are let go after it
                cross_fit=load_cross_fit(settings.encoder, settings.encoder_threads)
                if services.classifier.encoder is not None
                else None,
            )
            if report.skipped:
                log.debug("training skipped", reason=report.skipped)

        ticks.append(Tick("training", settings.train_interval, training))
    ticks.append(Tick("metrics", METRICS_INTERVAL, lambda: update_gauges(services)))
    return ticks


RETENTION_INTERVAL = timedelta(hours=1)
EVENTS_INTERVAL = timedelta(seconds=20)  # history items grouped in the background
REMINDER_INTERVAL = timedelta(minutes=1)
METRICS_INTERVAL = timedelta(seconds=15)


async def update_gauges(services: Services) -> None:
    """Refresh the gauges that come from the database (outbox depth and age)."""
    async with services.db.reading() as uow:
        backlog = await uow.deliveries.backlog(services.clock())
    services.metrics.outbox_pending.set(backlog.pending)
    services.metrics.outbox_oldest_seconds.set(backlog.oldest_seconds)


async def run_retention(services: Services) -> None:
    """Purge what the retention settings say has expired; compact SQLite when worthwhile."""
    settings = services.settings
    policy = RetentionPolicy(
        unmatched_items=settings.retention_unmatched,
        deliveries=settings.retention_deliveries,
        audit_log=settings.retention_audit,
    )
    async with services.db.transaction() as uow:
        report = await uow.purge(policy, services.clock())
    services.metrics.purged_items.inc(report.items)
    vacuumed = await services.db.compact()
    if report.items or report.deliveries or report.audit_log or report.events or vacuumed:
        log.info(
            "retention",
            items=report.items,
            deliveries=report.deliveries,
            audit_log=report.audit_log,
            events=report.events,
            vacuumed=vacuumed,
        )


async def _guarded(
    services: Services, tick: Tick, running: set[asyncio.Task[Any]], stop: asyncio.Event
) -> None:
    task = asyncio.current_task()
    if task is not None:
        running.add(task)
    try:
        await tick.run()
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
        # Stopping cancels the ticks in progress (their clean-up has run by now). That is not
        # a failure: ending normally keeps the scheduler from logging it with a traceback.
        log.info("tick stopped", tick=tick.name)
    except Exception:
        services.metrics.ticks.labels(tick=tick.name, outcome="error").inc()
        log.exception("tick failed", tick=tick.name)
    else:
        services.metrics.ticks.labels(tick=tick.name, outcome="ok").inc()
    finally:
        services.heartbeats.beat(tick.name, services.clock())
        running.discard(task)


def _scheduler_beat(services: Services) -> Tick:
    """A no-op tick whose heartbeat proves the scheduler itself is firing."""

    async def beat() -> None:
        return None

    return Tick("scheduler", SCHEDULER_BEAT, beat)


LEADER_RETRY = 2.0
STOP_GRACE = 10.0  # seconds a cancelled tick may take to clean up on stop


async def stop_ticks(scheduler: AsyncIOScheduler, running: set[asyncio.Task[Any]]) -> None:
    """Shut the scheduler down, cancelling the ticks in progress, and let them clean up (a poll
    gives its sources back) for up to ``STOP_GRACE``.

    A run the scheduler has just started is a task the loop has not stepped yet: cancelled
    then, it dies before ``_guarded`` can tell a stop from a failure, and the scheduler logs
    it as an error with a traceback. So no new run may start (pause), and the started ones get
    one turn of the loop to enter ``_guarded`` before the shutdown cancels them."""
    scheduler.pause()
    await asyncio.sleep(0)
    scheduler.shutdown(wait=False)
    if running:
        await asyncio.wait(list(running), timeout=STOP_GRACE)


async def _run_bot_when_leader(
    services: Services, stop: asyncio.Event, backoff: Backoff | None
) -> None:
    """Only one process may long-poll Telegram (a second gets 409 Conflict).

    Wait for the "poller" lock (it passes to another worker within seconds when its holder
    dies), long-poll while holding it, and check every ``LEADER_RETRY`` seconds that it is still
    ours: a worker whose database connection dropped and whose lock another worker took stops
    polling and waits its turn again.
    """
    ctx = services.bot_context()
    assert ctx is not None, "the bot runs only with a token"
    lead = services.leadership("poller")
    while await _take(lead, stop):
        log.info("this worker long-polls Telegram", worker=services.settings.worker_id)
        bot_stop = asyncio.Event()
        watcher = asyncio.create_task(_watch_lead(lead, stop, bot_stop))
        try:
            await run_bot(build_application(ctx), bot_stop, backoff=backoff)
        finally:
            bot_stop.set()
            await watcher


async def _take(lead: Leadership, stop: asyncio.Event) -> bool:
    """Wait until ``lead`` is ours (True) or ``stop`` is set (False)."""
    while not stop.is_set():
        try:
            if await lead.try_acquire():
                return True
        except Exception:  # the database is away: try again later
            log.warning("cannot reach the database to take the poller lock", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), LEADER_RETRY)
    return False


async def _watch_lead(lead: Leadership, stop: asyncio.Event, bot_stop: asyncio.Event) -> None:
    """Set ``bot_stop`` when the service stops or the lock is no longer ours."""
    while not bot_stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), LEADER_RETRY)
        if stop.is_set():
            break
        try:
            held = await lead.try_acquire()
        except Exception:
            held = False
        if not held:
            log.warning("lost the poller lock; another worker long-polls Telegram now")
            break
    bot_stop.set()


async def run_service(
    services: Services,
    *,
    ticks: Sequence[Tick] | None = None,
    stop: asyncio.Event | None = None,
    bot_backoff: Backoff | None = None,
) -> None:
    """Run until ``stop`` is set or SIGINT/SIGTERM arrives.

    With a bot token, the Telegram bot runs on the same loop (``bot.application.run_bot``);
    while Telegram is unreachable it retries with ``bot_backoff`` and the ticks go on.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or not POSIX
            pass
    scheduler = AsyncIOScheduler(timezone="UTC")
    running: set[asyncio.Task[Any]] = set()  # ticks in progress, awaited on stop
    all_ticks = [
        *(ticks if ticks is not None else service_ticks(services)),
        _scheduler_beat(services),
    ]
    for tick in all_ticks:
        if tick.interval <= timedelta(minutes=5):  # hourly housekeeping is not a liveness signal
            services.heartbeats.expect(tick.name, tick.interval)
        scheduler.add_job(
            _guarded,
            IntervalTrigger(seconds=tick.interval.total_seconds()),
            args=[services, tick, running, stop],
            id=tick.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(30, int(tick.interval.total_seconds())),
            next_run_time=services.clock(),
        )
    health: HealthServer | None = None
    if services.settings.health_host_port is not None:
        host, port = services.settings.health_host_port
        health = HealthServer(
            db=services.db,
            heartbeats=services.heartbeats,
            metrics=services.metrics,
            clock=services.clock,
            host=host,
            port=port,
        )
        await health.start()
        log.info("health endpoint listening", address=f"{host}:{health.port}")
    await services.warm_up()  # so that neither the bot nor a poll waits on a first load
    scheduler.start()
    token = services.settings.telegram_bot_token
    log.info(
        "policywatch running",
        worker=services.settings.worker_id,
        telegram="bot" if token else "console (no TELEGRAM_BOT_TOKEN set)",
    )
    if services.settings.console_demo:
        log.info(
            "no bot token: alerts for every theme print here, from your sources and a built-in "
            "demo source that replays real headlines (POLICYWATCH_DEMO=false turns it off)"
        )
    bot_task: asyncio.Task[None] | None = None
    if token:
        bot_task = asyncio.create_task(_run_bot_when_leader(services, stop, bot_backoff))
    try:
        await stop.wait()
    finally:
        log.info("policywatch stopping")
        stop.set()
        if bot_task is not None:
            try:
                await bot_task
            except Exception:
                log.exception("the bot stopped with an error")
        await stop_ticks(scheduler, running)
        try:  # the polls the sources tick started in the background
            await asyncio.wait_for(services.poller.aclose(), timeout=STOP_GRACE)
        except TimeoutError:
            log.warning("background polls did not stop in time")
        if health is not None:
            await health.stop()
        for lead in services.leaders.values():  # let another worker take over at once
            await lead.release()
        for sig in installed:
            loop.remove_signal_handler(sig)
    log.info("policywatch stopped")
