"""``policywatch run``: the long-running service.

One event loop runs the scheduler ticks (due sources, the outbox, due digests) and, when a token
is set, the Telegram bot. The scheduler only ticks: the work queues live in the database, so a
restart loses nothing. SIGINT and SIGTERM stop it cleanly.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.app import Services
from bot.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Tick:
    """A short periodic job: it finds due work in the database and does it."""

    name: str
    interval: timedelta
    run: Callable[[], Awaitable[object]]


def service_ticks(services: Services) -> list[Tick]:
    """The ticks the service runs; each stage of the pipeline adds its own."""
    from bot.digests import run_digest_tick

    settings = services.settings
    ticks: list[Tick] = []
    if services.notifier is not None:
        ticks.append(Tick("outbox", settings.outbox_tick, services.notifier.tick))

    async def digests() -> object:
        return await run_digest_tick(services.sessions, services.clock())

    ticks.append(Tick("digests", settings.digest_tick, digests))
    return ticks


async def _guarded(tick: Tick) -> None:
    try:
        await tick.run()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("tick failed", tick=tick.name)


async def run_service(
    services: Services,
    *,
    ticks: Sequence[Tick] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until ``stop`` is set or SIGINT/SIGTERM arrives."""
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
    for tick in ticks if ticks is not None else service_ticks(services):
        scheduler.add_job(
            _guarded,
            IntervalTrigger(seconds=tick.interval.total_seconds()),
            args=[tick],
            id=tick.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(30, int(tick.interval.total_seconds())),
            next_run_time=services.clock(),
        )
    token = services.settings.telegram_bot_token
    log.info(
        "policywatch running",
        worker=services.settings.worker_id,
        telegram="bot" if token else "console (no TELEGRAM_BOT_TOKEN set)",
    )
    scheduler.start()
    try:
        await stop.wait()
    finally:
        log.info("policywatch stopping")
        scheduler.shutdown(wait=False)
        for sig in installed:
            loop.remove_signal_handler(sig)
    log.info("policywatch stopped")
