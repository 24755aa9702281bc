"""The digest tick: schedule, build and enqueue each subscriber's due digest.

Due digests are found from the database (``subscribers.next_digest_at <= now``, claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so restarts and several workers are safe; the
outbox row's dedupe key ``digest:<scheduled UTC time>`` makes each period's digest unique even
if two workers build it. A subscriber whose ``next_digest_at`` is NULL (new, or settings just
changed by the bot) gets it computed here. An empty digest is sent only when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.logs import get_logger
from bot.render import render_digest
from models.db.repositories import DeliveryRepository
from models.db.tables import Item, ItemTheme, Source, Subscriber, Subscription, Theme
from models.digests import (
    DIGEST_MODES,
    DigestEntry,
    build_digest,
    digest_period,
    next_digest_at,
)

log = get_logger(__name__)

KIND_DIGEST = "digest"
UPCOMING_LOOKBACK = timedelta(days=120)
UPCOMING_ROWS = 5000


@dataclass(slots=True)
class DigestTickReport:
    scheduled: int = 0
    enqueued: int = 0
    empty_skipped: int = 0


async def run_digest_tick(
    sessions: async_sessionmaker[AsyncSession], now: datetime, *, batch: int = 100
) -> DigestTickReport:
    """Schedule unscheduled digests, then build and enqueue every due one."""
    report = DigestTickReport()
    async with sessions.begin() as session:
        report.scheduled = await schedule_digests(session, now)
    while True:
        async with sessions.begin() as session:
            due = (
                await session.scalars(
                    select(Subscriber)
                    .where(
                        Subscriber.active.is_(True),
                        Subscriber.digest_mode.in_(DIGEST_MODES),
                        Subscriber.next_digest_at.is_not(None),
                        Subscriber.next_digest_at <= now,
                    )
                    .order_by(Subscriber.next_digest_at, Subscriber.id)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for subscriber in due:
                if await _digest_one(session, subscriber, now):
                    report.enqueued += 1
                else:
                    report.empty_skipped += 1
        if len(due) < batch:
            return report


async def schedule_digests(session: AsyncSession, now: datetime) -> int:
    """Compute ``next_digest_at`` for active digest subscribers that have none."""
    rows = (
        await session.scalars(
            select(Subscriber).where(
                Subscriber.active.is_(True),
                Subscriber.digest_mode.in_(DIGEST_MODES),
                Subscriber.next_digest_at.is_(None),
            )
        )
    ).all()
    for row in rows:
        row.next_digest_at = next_digest_at(
            mode=row.digest_mode,
            digest_time=row.digest_time,
            weekday=row.digest_weekday,
            timezone=row.timezone,
            after=now,
        )
    await session.flush()
    return len(rows)


async def _digest_one(session: AsyncSession, subscriber: Subscriber, now: datetime) -> bool:
    """Build and enqueue one due digest and move the schedule on. True when enqueued."""
    due = subscriber.next_digest_at
    assert due is not None
    since = subscriber.last_digest_at or due - digest_period(subscriber.digest_mode)
    theme_rows = (
        await session.execute(
            select(Theme.id, Theme.title)
            .join(Subscription, Subscription.theme_id == Theme.id)
            .where(Subscription.subscriber_id == subscriber.id, Theme.enabled.is_(True))
        )
    ).all()
    titles = {row.id: row.title for row in theme_rows}
    entries = await _entries(session, list(titles), after=since, until=due)
    upcoming = await _entries(session, list(titles), after=due - UPCOMING_LOOKBACK, until=due)
    digest = build_digest(
        entries=entries,
        theme_titles=titles,
        since=since,
        until=due,
        upcoming_candidates=[
            e for e in upcoming if "effective_on" in e.fields or "comments_close_on" in e.fields
        ],
        timezone=subscriber.timezone,
    )
    enqueued = False
    if not digest.is_empty or subscriber.digest_send_empty:
        messages = render_digest(digest, subscriber.timezone, subscriber.digest_mode)
        added = await DeliveryRepository(session).enqueue(
            [
                {
                    "subscriber_id": subscriber.id,
                    "kind": KIND_DIGEST,
                    "dedupe_key": f"digest:{due.isoformat()}",
                    "payload": {"messages": messages},
                }
            ],
            now,
        )
        enqueued = bool(added)
    await session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber.id, Subscriber.next_digest_at == due)
        .values(
            last_digest_at=due,
            next_digest_at=next_digest_at(
                mode=subscriber.digest_mode,
                digest_time=subscriber.digest_time,
                weekday=subscriber.digest_weekday,
                timezone=subscriber.timezone,
                after=max(now, due),
            ),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return enqueued


async def _entries(
    session: AsyncSession, theme_ids: Sequence[int], *, after: datetime, until: datetime
) -> list[DigestEntry]:
    if not theme_ids:
        return []
    rows = (
        await session.execute(
            select(
                ItemTheme.item_id,
                ItemTheme.theme_id,
                ItemTheme.matched_at,
                Item.title,
                Item.url,
                Item.published_at,
                Item.fields,
                Source.name,
            )
            .join(Item, Item.id == ItemTheme.item_id)
            .join(Source, Source.id == Item.source_id)
            .where(
                ItemTheme.theme_id.in_(list(theme_ids)),
                ItemTheme.matched_at > after,
                ItemTheme.matched_at <= until,
                Item.from_first_poll.is_(False),
            )
            .order_by(ItemTheme.matched_at.desc())
            .limit(UPCOMING_ROWS)
        )
    ).all()
    return [
        DigestEntry(
            item_id=r.item_id,
            theme_id=r.theme_id,
            title=r.title,
            url=r.url,
            source_name=r.name,
            published_at=r.published_at,
            matched_at=r.matched_at,
            fields=dict(r.fields or {}),
        )
        for r in rows
    ]
