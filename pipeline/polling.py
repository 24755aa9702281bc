"""The polling pipeline: claim → fetch → parse → normalize → store → after-store hooks →
record health, for one source and for every due source.

- One bad source never stops or slows the others: each source runs in its own task under a
  concurrency cap, inside its own ``try`` and its own timeout; the next sources are claimed as
  soon as slots free up.
- The service's tick does not wait for a round to finish (``start_due``): it claims what is due
  into the free slots, starts those polls in the background and returns, so the next tick can
  start sources that become due while a slow one (a server trickling its answer) still runs.
  Each round's summaries go to ``on_round`` when its last poll ends. ``aclose`` cancels the
  polls still running and gives their sources back.
- Items of a source's very first successful poll are stored ``from_first_poll=True`` (history,
  not news: the delivery stage does not alert them).
- Before-store hooks get the items a poll is about to insert or change, outside any
  transaction: slow preparation (encoding their text) happens there, so the transaction that
  stores them (on SQLite, the one writer) stays short. What they prepare is a cache the
  after-store hooks may use; they still work without it.
- After-store hooks ``(session, store_result, now)`` run in order inside the transaction that
  stored the items, so classification and the outbox commit atomically with them; if a hook
  fails, nothing of that poll is kept and the source is retried with backoff.
- Health: each summary says whether the source just crossed into "failing" (after
  ``source_failing_after`` consecutive failures) or recovered; ``on_health`` is called then.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from models.db import Database, UnitOfWork
from models.db.items import StoreResult
from models.db.matches import MATCHES_LOCK
from models.errors import FetchError, SourceError
from models.items import ItemData, clean_item
from models.schedule import HealthChange, health_change, next_check_at
from models.sources import ClaimedSource, PollRecord, RecordedPoll
from pipeline.lists import record_snapshot
from scrapers.base import PollResult, SourceState
from scrapers.http import Fetcher
from scrapers.registry import source_kind

log = structlog.get_logger(__name__)

AfterStoreHook = Callable[[UnitOfWork, StoreResult, datetime], Awaitable[None]]
BeforeStoreHook = Callable[[Sequence[ItemData]], Awaitable[None]]
HealthHook = Callable[["SourcePollSummary"], Awaitable[None]]
RoundHook = Callable[[Sequence["SourcePollSummary"]], None]

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
    silent_for: timedelta | None = None  # after a success without new items: since the last
    expected_within: timedelta | None = None  # how long it may go without (None: unwatched)
    quiet: bool = False  # after a success: nothing new for longer than expected (told or not)

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


@dataclass(frozen=True, slots=True)
class Trial:
    """What one try of a source found (``try_source``): its items and the newest one, or why
    it could not be read."""

    items: int = 0
    newest_title: str | None = None
    newest_at: datetime | None = None
    error: str | None = None


async def try_source(
    fetcher: Fetcher, kind: str, url: str, now: datetime, *, within: float = 20.0
) -> Trial:
    """Fetch and parse a would-be source once, storing nothing (``/source add`` reports it)."""
    state = SourceState(name="trial", kind=kind, url=url, first_poll=True)

    async def nothing_known(ids: Sequence[str]) -> set[str]:
        return set()

    try:
        async with asyncio.timeout(within):
            result = await source_kind(kind).poll(fetcher, state, now=now, known=nothing_known)
    except SourceError as exc:
        return Trial(error=exc.message)
    except TimeoutError:
        return Trial(error=f"no answer within {within:g} s")
    except (KeyError, ValueError) as exc:
        return Trial(error=str(exc))
    dated = [i for i in result.items if i.published_at is not None]
    newest = max(dated, key=lambda i: i.published_at or now) if dated else None
    newest = newest or (result.items[0] if result.items else None)
    return Trial(
        items=len(result.items),
        newest_title=newest.title if newest else None,
        newest_at=newest.published_at if newest else None,
    )


@dataclass(frozen=True, slots=True)
class PollConfig:
    """How polls run; the composition root builds it from settings."""

    worker_id: str
    concurrency: int = 16
    source_timeout: timedelta = timedelta(seconds=120)
    max_backoff: timedelta = timedelta(hours=6)
    failing_after: int = 3

    @property
    def lease(self) -> timedelta:
        """How long a claim lasts: a worker killed mid-poll holds its sources this long."""
        return self.source_timeout * 2 + timedelta(seconds=30)


@dataclass(slots=True)
class Poller:
    """Polls sources: claims from the database, fetches with ``fetcher``, stores and runs the
    after-store hooks in one transaction, records health."""

    db: Database
    fetcher: Fetcher
    config: PollConfig
    clock: Callable[[], datetime]
    hooks: Sequence[AfterStoreHook] = ()
    on_health: HealthHook | None = None
    before_store: Sequence[BeforeStoreHook] = ()
    rng: Callable[[], float] = random.random
    _running: dict[asyncio.Task[SourcePollSummary], int] = field(default_factory=dict)
    _rounds: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def running(self) -> int:
        """Polls in progress in the background (started by ``start_due``)."""
        return len(self._running)

    async def start_due(self, on_round: RoundHook | None = None) -> int:
        """Claim due sources into the free slots and start polling them in the background;
        return how many were started, without waiting for them (see the module docstring)."""
        free = self.config.concurrency - len(self._running)
        if free <= 0:
            return 0
        async with self.db.transaction(serialized=True) as uow:
            claimed = await uow.sources.claim_due(
                now=self.clock(),
                worker_id=self.config.worker_id,
                lease=self.config.lease,
                limit=free,
                due_only=True,
                exclude=sorted(self._running.values()),
            )
        tasks = []
        for source in claimed:
            task = asyncio.create_task(self.poll_one(source), name=f"poll:{source.name}")
            self._running[task] = source.id
            task.add_done_callback(self._forget)
            tasks.append(task)
        if tasks:
            round_task = asyncio.create_task(self._round(tasks, on_round))
            self._rounds.add(round_task)
            round_task.add_done_callback(self._rounds.discard)
        return len(tasks)

    def _forget(self, task: asyncio.Task[SourcePollSummary]) -> None:
        self._running.pop(task, None)

    async def _round(
        self, tasks: Sequence[asyncio.Task[SourcePollSummary]], on_round: RoundHook | None
    ) -> None:
        summaries = await asyncio.gather(*tasks, return_exceptions=True)
        done = [s for s in summaries if isinstance(s, SourcePollSummary)]
        if on_round is not None and done:
            try:
                on_round(done)
            except Exception:
                log.exception("poll round callback failed")

    async def aclose(self) -> None:
        """Cancel the background polls and give their sources back (on stop)."""
        running = dict(self._running)
        for round_task in list(self._rounds):
            round_task.cancel()
        await self._give_back(running)
        self._running.clear()

    async def poll_due(self, *, due_only: bool = True) -> list[SourcePollSummary]:
        """Poll every due source (every enabled one with ``due_only=False``) once."""
        config = self.config
        concurrency = config.concurrency
        seen: set[int] = set()
        pending: dict[asyncio.Task[SourcePollSummary], int] = {}  # poll -> source id
        summaries: list[SourcePollSummary] = []
        exhausted = False
        try:
            while True:
                free = concurrency - len(pending)
                if not exhausted and (free >= max(1, concurrency // 2) or not pending):
                    now = self.clock()
                    async with self.db.transaction(serialized=True) as uow:
                        claimed = await uow.sources.claim_due(
                            now=now,
                            worker_id=config.worker_id,
                            lease=config.lease,
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
            async with self.db.transaction(serialized=True) as uow:
                released = await uow.sources.release(list(pending.values()), self.config.worker_id)
        except Exception:  # the database is away: the leases lapse on their own
            log.warning("could not release source claims on stop", exc_info=True)
        else:
            log.info("released source claims on stop", sources=released)

    async def poll_one(self, claimed: ClaimedSource) -> SourcePollSummary:
        """Poll one claimed source; never raises (the outcome is recorded as health)."""
        config = self.config
        started = time.perf_counter()
        now = self.clock()
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
            async with self.db.reading() as uow:
                return await uow.items.known_external_ids(claimed.id, ids)

        interval = timedelta(seconds=claimed.interval_seconds)
        try:
            kind = source_kind(claimed.kind)
            async with asyncio.timeout(config.source_timeout.total_seconds()):
                result = await kind.poll(self.fetcher, state, now=now, known=known)
            if self.before_store and result.items:
                changes = await self._changes(claimed.id, result.items)
                for prepare in self.before_store:
                    await prepare(changes)
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
            skipped=result.skipped + stored.skipped,
            first_poll=claimed.first_poll,
            consecutive_failures=0,
            next_check_at=health[2],
            health=health[0],
            silent_for=health[1].silent_for,
            expected_within=health[1].expected,
            quiet=health[1].quiet_now,
        )
        for warning in result.warnings:
            log.warning("source warning", source=claimed.name, warning=warning)
        await self._notify(summary)
        return summary

    async def _changes(self, source_id: int, items: Sequence[ItemData]) -> list[ItemData]:
        """The items (cleaned as they will be stored) that are not stored yet, or stored with
        other text."""
        cleaned: dict[str, ItemData] = {}
        for item in items:
            clean = clean_item(item)
            if clean is not None:
                cleaned.setdefault(clean.external_id, clean)
        async with self.db.reading() as uow:
            stored = await uow.items.stored_hashes(source_id, list(cleaned))
        return [i for i in cleaned.values() if stored.get(i.external_id) != i.content_hash]

    async def _store(
        self, claimed: ClaimedSource, result: PollResult, now: datetime, interval: timedelta
    ) -> tuple[StoreResult, tuple[HealthChange | None, RecordedPoll, datetime]]:
        config = self.config
        async with self.db.transaction(serialized=True) as uow:
            # Matches are stamped with the moment their transaction holds MATCHES_LOCK, not the
            # poll's start: a digest takes the lock alone, so what it cannot see yet is stamped
            # after its period and goes in the next digest (never in neither).
            await uow.serialize(MATCHES_LOCK, shared=True)
            now = max(now, self.clock())
            if not await uow.sources.exists(claimed.id):
                msg = "the source was deleted during the poll"
                raise SourceError(claimed.name, msg)
            stored = await uow.items.store(
                claimed.id, result.items, now, from_first_poll=claimed.first_poll
            )
            if result.snapshot is not None:
                listed = await record_snapshot(
                    uow,
                    source_id=claimed.id,
                    source_name=claimed.name,
                    options=claimed.options,
                    snapshot=result.snapshot,
                    now=now,
                )
                stored = StoreResult((*stored.new, *listed.new), (*stored.updated, *listed.updated))
            for hook in self.hooks:
                await hook(uow, stored, now)
            when = next_check_at(
                now,
                interval=interval,
                failures=0,
                jitter=self.rng(),
                max_backoff=config.max_backoff,
            )
            recorded = await uow.sources.record_poll(
                claimed.id,
                PollRecord(
                    not_modified=result.not_modified,
                    etag=result.etag,
                    last_modified=result.last_modified,
                    cursor=result.cursor,
                    items=len(result.items)
                    or len(result.snapshot.entries if result.snapshot else ()),
                    new=len(stored.new),
                ),
                now=now,
                next_check_at=when,
                failing_after=config.failing_after,
            )
        change = health_change(recorded.before, recorded.after, failing_after=config.failing_after)
        return stored, (change or recorded.quiet, recorded, when)

    async def _failed(
        self,
        claimed: ClaimedSource,
        exc: Exception,
        now: datetime,
        interval: timedelta,
        started: float,
        requests_before: int,
    ) -> SourcePollSummary:
        config = self.config
        if isinstance(exc, SourceError):
            message = exc.message
        elif isinstance(exc, TimeoutError):
            message = f"timed out after {config.source_timeout.total_seconds():g} s"
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
            max_backoff=config.max_backoff,
        )
        change: HealthChange | None = None
        try:
            async with self.db.transaction(serialized=True) as uow:
                recorded = await uow.sources.record_poll(
                    claimed.id, PollRecord(error=message), now=now, next_check_at=when
                )
            failures = recorded.after
            change = health_change(
                recorded.before, recorded.after, failing_after=config.failing_after
            )
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
