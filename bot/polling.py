"""The polling pipeline: claim → fetch → parse → normalize → store → after-store hooks →
record health, for one source and for every due source.

- One bad source never stops or slows the others: each source runs in its own task under a
  concurrency cap, inside its own ``try`` and its own timeout; the next sources are claimed as
  soon as slots free up.
- Items of a source's very first successful poll are stored ``from_first_poll=True`` (history,
  not news: the delivery stage does not alert them).
- After-store hooks ``(session, store_result, now)`` run in order inside the transaction that
  stored the items, so classification and the outbox commit atomically with them; if a hook
  fails, nothing of that poll is kept and the source is retried with backoff.
- Health: each summary says whether the source just crossed into "failing" (after
  ``source_failing_after`` consecutive failures) or recovered; ``on_health`` is called then.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Services
from bot.logs import get_logger
from models.db.repositories import ItemRepository, StoreResult
from models.db.source_queue import (
    ClaimedSource,
    PollRecord,
    claim_due_sources,
    known_external_ids,
    record_poll,
    release_sources,
)
from models.db.tables import Source
from models.errors import FetchError, SourceError
from models.schedule import HealthChange, health_change, next_check_at
from scrapers.base import PollResult, SourceState
from scrapers.http import Fetcher
from scrapers.registry import source_kind

log = get_logger(__name__)

AfterStoreHook = Callable[[AsyncSession, StoreResult, datetime], Awaitable[None]]
HealthHook = Callable[["SourcePollSummary"], Awaitable[None]]

STATUS_OK = "ok"
STATUS_NOT_MODIFIED = "not_modified"
STATUS_FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SourcePollSummary:
    """What one poll of one source did (printed by ``poll --once``, counted by metrics)."""

    name: str
    kind: str
    status: str
    fetched: int
    new: int
    updated: int
    error: str | None
    duration: float
    requests: int = 0
    skipped: int = 0
    first_poll: bool = False
    consecutive_failures: int = 0
    next_check_at: datetime | None = None
    health: HealthChange | None = None

    def line(self) -> str:
        text = (
            f"{self.name:<28} {self.status:<12} fetched={self.fetched} new={self.new} "
            f"updated={self.updated} {self.duration:.2f}s"
        )
        if self.first_poll and self.status == STATUS_OK:
            text += " (first poll: not alerted)"
        if self.error:
            text += f" error: {self.error}"
        if self.health is not None:
            text += f" [{self.health.value}]"
        return text


@dataclass(slots=True)
class Poller:
    """Polls sources with the services' database and fetcher."""

    services: Services
    fetcher: Fetcher
    hooks: Sequence[AfterStoreHook] = ()
    on_health: HealthHook | None = None
    rng: Callable[[], float] = random.random
    _write_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        # SQLite has one writer; serializing our own writes avoids SQLITE_BUSY on upgrades of
        # read snapshots. PostgreSQL needs no such lock.
        if self.services.engine.dialect.name == "sqlite":
            async with self._write_lock, self.services.sessions.begin() as session:
                yield session
        else:
            async with self.services.sessions.begin() as session:
                yield session

    async def poll_due(self, *, due_only: bool = True) -> list[SourcePollSummary]:
        """Poll every due source (every enabled one with ``due_only=False``) once."""
        settings = self.services.settings
        concurrency = settings.poll_concurrency
        seen: set[int] = set()
        pending: dict[asyncio.Task[SourcePollSummary], int] = {}  # poll -> source id
        summaries: list[SourcePollSummary] = []
        exhausted = False
        try:
            while True:
                free = concurrency - len(pending)
                if not exhausted and (free >= max(1, concurrency // 2) or not pending):
                    now = self.services.clock()
                    async with self._writing() as session:
                        claimed = await claim_due_sources(
                            session,
                            now=now,
                            worker_id=settings.worker_id,
                            lease=settings.source_timeout * 2 + timedelta(seconds=30),
                            limit=free,
                            due_only=due_only,
                            exclude=sorted(seen),
                        )
                    exhausted = not claimed
                    for source in claimed:
                        seen.add(source.id)
                        pending[asyncio.create_task(self.poll_one(source))] = source.id
                if not pending:
                    break
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del pending[task]
                    summaries.append(task.result())
        except asyncio.CancelledError:
            await self._give_back(pending)
            raise
        return summaries

    async def _give_back(self, pending: dict[asyncio.Task[SourcePollSummary], int]) -> None:
        """On a stop: cancel the polls still running and release their sources' leases, so
        another worker polls them at once rather than after the lease (minutes) runs out. A
        cancelled poll has stored nothing: its store and its record are one transaction."""
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        try:
            async with self._writing() as session:
                released = await release_sources(
                    session, list(pending.values()), self.services.settings.worker_id
                )
        except Exception:  # the database is away: the leases lapse on their own
            log.warning("could not release source claims on stop", exc_info=True)
        else:
            log.info("released source claims on stop", sources=released)

    async def poll_one(self, claimed: ClaimedSource) -> SourcePollSummary:
        """Poll one claimed source; never raises (the outcome is recorded as health)."""
        settings = self.services.settings
        started = time.perf_counter()
        now = self.services.clock()
        requests_before = self.fetcher.requests
        state = SourceState(
            name=claimed.name,
            kind=claimed.kind,
            url=claimed.url,
            options=claimed.options,
            etag=claimed.etag,
            last_modified=claimed.last_modified,
            cursor=claimed.cursor,
            first_poll=claimed.first_poll,
        )

        async def known(ids: Sequence[str]) -> set[str]:
            async with self.services.sessions() as session:
                return await known_external_ids(session, claimed.id, ids)

        interval = timedelta(seconds=claimed.interval_seconds)
        try:
            kind = source_kind(claimed.kind)
            async with asyncio.timeout(settings.source_timeout.total_seconds()):
                result = await kind.poll(self.fetcher, state, now=now, known=known)
            stored, health = await self._store(claimed, result, now, interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return await self._failed(claimed, exc, now, interval, started, requests_before)
        summary = SourcePollSummary(
            name=claimed.name,
            kind=claimed.kind,
            status=STATUS_NOT_MODIFIED if result.not_modified else STATUS_OK,
            fetched=len(result.items),
            new=len(stored.new),
            updated=len(stored.updated),
            error=None,
            duration=time.perf_counter() - started,
            requests=self.fetcher.requests - requests_before,
            skipped=result.skipped,
            first_poll=claimed.first_poll,
            consecutive_failures=0,
            next_check_at=health[2],
            health=health[0],
        )
        for warning in result.warnings:
            log.warning("source warning", source=claimed.name, warning=warning)
        await self._notify(summary)
        return summary

    async def _store(
        self, claimed: ClaimedSource, result: PollResult, now: datetime, interval: timedelta
    ) -> tuple[StoreResult, tuple[HealthChange | None, int, datetime]]:
        settings = self.services.settings
        async with self._writing() as session:
            row = await session.get(Source, claimed.id)
            if row is None:
                msg = "the source was deleted during the poll"
                raise SourceError(claimed.name, msg)
            stored = await ItemRepository(session).store(
                row, result.items, now, from_first_poll=claimed.first_poll
            )
            for hook in self.hooks:
                await hook(session, stored, now)
            when = next_check_at(
                now,
                interval=interval,
                failures=0,
                jitter=self.rng(),
                max_backoff=settings.source_max_backoff,
            )
            before, after = await record_poll(
                session,
                claimed.id,
                PollRecord(
                    not_modified=result.not_modified,
                    etag=result.etag,
                    last_modified=result.last_modified,
                    cursor=result.cursor,
                    items=len(result.items),
                    new=len(stored.new),
                ),
                now=now,
                next_check_at=when,
            )
        change = health_change(before, after, failing_after=settings.source_failing_after)
        return stored, (change, after, when)

    async def _failed(
        self,
        claimed: ClaimedSource,
        exc: Exception,
        now: datetime,
        interval: timedelta,
        started: float,
        requests_before: int,
    ) -> SourcePollSummary:
        settings = self.services.settings
        if isinstance(exc, SourceError):
            message = exc.message
        elif isinstance(exc, TimeoutError):
            message = f"timed out after {settings.source_timeout.total_seconds():g} s"
        else:
            message = f"{type(exc).__name__}: {exc}"
            log.exception("source poll crashed", source=claimed.name)
        retry_after = (
            timedelta(seconds=exc.retry_after)
            if isinstance(exc, FetchError) and exc.retry_after is not None
            else None
        )
        failures = claimed.consecutive_failures + 1
        when = next_check_at(
            now,
            interval=interval,
            failures=failures,
            jitter=self.rng(),
            retry_after=retry_after,
            max_backoff=settings.source_max_backoff,
        )
        change: HealthChange | None = None
        try:
            async with self._writing() as session:
                before, failures = await record_poll(
                    session, claimed.id, PollRecord(error=message), now=now, next_check_at=when
                )
            change = health_change(before, failures, failing_after=settings.source_failing_after)
        except Exception:
            log.exception("could not record a source failure", source=claimed.name)
        log.warning("source failed", source=claimed.name, error=message, failures=failures)
        summary = SourcePollSummary(
            name=claimed.name,
            kind=claimed.kind,
            status=STATUS_FAILED,
            fetched=0,
            new=0,
            updated=0,
            error=message,
            duration=time.perf_counter() - started,
            requests=self.fetcher.requests - requests_before,
            first_poll=claimed.first_poll,
            consecutive_failures=failures,
            next_check_at=when,
            health=change,
        )
        await self._notify(summary)
        return summary

    async def _notify(self, summary: SourcePollSummary) -> None:
        if summary.health is None or self.on_health is None:
            return
        try:
            await self.on_health(summary)
        except Exception:
            log.exception("health callback failed", source=summary.name)


async def poll_due_sources(
    services: Services,
    *,
    hooks: Sequence[AfterStoreHook] = (),
    on_health: HealthHook | None = None,
    due_only: bool = True,
) -> list[SourcePollSummary]:
    """Poll the due sources (or every enabled one) with the services' shared fetcher."""
    if services.fetcher is None:
        msg = "the services have no fetcher (build them with build_services)"
        raise RuntimeError(msg)
    poller = Poller(services, services.fetcher, hooks=hooks, on_health=on_health)
    return await poller.poll_due(due_only=due_only)
