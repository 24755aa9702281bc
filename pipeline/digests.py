"""The digest tick: schedule, build and enqueue each subscriber's due digest.

Due digests are found from the database (``subscribers.next_digest_at <= now``, claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so restarts and several workers are safe; the
outbox row's dedupe key ``digest:<scheduled UTC time>`` makes each period's digest unique even
if two workers build it. A subscriber whose ``next_digest_at`` is NULL (new, or settings just
changed by the bot) gets it computed here. An empty digest is sent only when asked for.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from delivery.render import render_digest
from models.db import Database, UnitOfWork
from models.db.deliveries import NewDelivery
from models.db.matches import MATCHES_LOCK
from models.db.subscribers import DigestDue
from models.digests import UPCOMING_FIELDS, build_digest, digest_period, next_digest_at
from models.outbox import DeliveryKind, with_topic

UPCOMING_LOOKBACK = timedelta(days=120)


@dataclass(slots=True)
class DigestTickReport:
    scheduled: int = 0
    enqueued: int = 0
    empty_skipped: int = 0


def _next(due: DigestDue, after: datetime) -> datetime | None:
    return next_digest_at(
        mode=due.mode,
        digest_time=due.digest_time,
        weekday=due.weekday,
        timezone=due.timezone,
        after=after,
    )


async def run_digest_tick(db: Database, now: datetime, *, batch: int = 100) -> DigestTickReport:
    """Schedule unscheduled digests, then build and enqueue every due one."""
    report = DigestTickReport()
    async with db.transaction() as uow:
        unscheduled = await uow.subscribers.unscheduled_digests()
        for due in unscheduled:
            await uow.subscribers.schedule_digest(
                due.subscriber_id, next_at=_next(due, now), now=now
            )
        report.scheduled = len(unscheduled)
    while True:
        async with db.transaction(serialized=True) as uow:
            # Alone, and before any subscriber row is locked (a poll holding the lock shared
            # may be enqueueing for one of them): a poll storing matches now commits first, and
            # one that stores after stamps them after ``now`` (``MATCHES_LOCK``).
            await uow.serialize(MATCHES_LOCK)
            claimed = await uow.subscribers.claim_due_digests(now, batch)
            # the themes a learned model judges: a digest marks what only one layer matched
            judged = {t for t, _ in await uow.learned.active_key()} if claimed else set()
            for due in claimed:
                if await _digest_one(uow, due, now, judged):
                    report.enqueued += 1
                else:
                    report.empty_skipped += 1
        if len(claimed) < batch:
            return report


async def _digest_one(
    uow: UnitOfWork, due: DigestDue, now: datetime, judged: Collection[int]
) -> bool:
    """Build and enqueue one due digest and move the schedule on. True when enqueued."""
    since = due.last_digest_at or due.due - digest_period(due.mode)
    titles = await uow.subscribers.digest_themes(due.subscriber_id)
    entries = await uow.queries.digest_entries(list(titles), after=since, until=due.due)
    upcoming = await uow.queries.digest_entries(
        list(titles), after=due.due - UPCOMING_LOOKBACK, until=due.due, regulatory_only=True
    )
    digest = build_digest(
        entries=entries,
        theme_titles=titles,
        since=since,
        until=due.due,
        upcoming_candidates=[
            e for e in upcoming if any(e.item.fields.get(key) for key, _ in UPCOMING_FIELDS)
        ],
        timezone=due.timezone,
        judged=judged,
    )
    enqueued = False
    if not digest.is_empty or due.send_empty:
        messages = render_digest(digest, due.timezone, due.mode)
        added = await uow.deliveries.enqueue(
            [
                NewDelivery(
                    subscriber_id=due.subscriber_id,
                    kind=DeliveryKind.DIGEST,
                    dedupe_key=f"digest:{due.due.isoformat()}",
                    payload=with_topic({"messages": messages}, due.topic),
                )
            ],
            now,
        )
        enqueued = bool(added)
    await uow.subscribers.schedule_digest(
        due.subscriber_id,
        next_at=_next(due, max(now, due.due)),
        now=now,
        done=due.due,
        expected=due.due,
    )
    return enqueued
