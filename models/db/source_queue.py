"""Sources as a work queue: claim the due ones, then record what the poll did.

Claims are short transactions: ``next_check_at <= now`` and no live lease, oldest first,
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (so several workers never poll one source twice; SQLite
does not render it and is single-process). The lease expires, so a crashed worker's claim is
picked up again later. Fetching happens outside any transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.tables import Item, Source


@dataclass(frozen=True, slots=True)
class ClaimedSource:
    """A claimed source row as plain data."""

    id: int
    name: str
    kind: str
    url: str
    options: Mapping[str, Any]
    interval_seconds: int
    etag: str | None
    last_modified: str | None
    cursor: Mapping[str, Any] | None
    consecutive_failures: int
    first_poll: bool


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What a poll did, for the health fields. ``error`` is None on success."""

    error: str | None = None
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    cursor: Mapping[str, Any] | None = None
    keep_cursor: bool = True
    items: int = 0
    new: int = 0


async def claim_due_sources(
    session: AsyncSession,
    *,
    now: datetime,
    worker_id: str,
    lease: timedelta,
    limit: int,
    due_only: bool = True,
    exclude: Sequence[int] = (),
) -> list[ClaimedSource]:
    """Lease up to ``limit`` enabled sources that are due (or all, with ``due_only=False``)."""
    conditions = [
        Source.enabled.is_(True),
        or_(Source.lease_until.is_(None), Source.lease_until < now),
    ]
    if due_only:
        conditions.append(or_(Source.next_check_at.is_(None), Source.next_check_at <= now))
    if exclude:
        conditions.append(Source.id.not_in(list(exclude)))
    due = (
        select(Source.id)
        .where(*conditions)
        .order_by(Source.next_check_at, Source.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.scalars(due)).all())
    if not ids:
        return []
    # The lease condition is checked again in the UPDATE: on SQLite (no FOR UPDATE) another
    # claim may have leased some of these rows between our SELECT and our write, and RETURNING
    # says which rows this claim really got.
    won = set(
        (
            await session.execute(
                update(Source)
                .where(
                    Source.id.in_(ids),
                    or_(Source.lease_until.is_(None), Source.lease_until < now),
                )
                .values(lease_owner=worker_id, lease_until=now + lease, last_attempt_at=now)
                .returning(Source.id)
            )
        )
        .scalars()
        .all()
    )
    if not won:
        return []
    rows = (await session.scalars(select(Source).where(Source.id.in_(won)))).all()
    by_id = {row.id: row for row in rows}
    return [_claimed(by_id[i]) for i in ids if i in by_id]


def _claimed(row: Source) -> ClaimedSource:
    return ClaimedSource(
        id=row.id,
        name=row.name,
        kind=row.kind,
        url=row.url,
        options=dict(row.options or {}),
        interval_seconds=row.interval_seconds,
        etag=row.etag,
        last_modified=row.last_modified,
        cursor=dict(row.cursor) if row.cursor is not None else None,
        consecutive_failures=row.consecutive_failures or 0,
        first_poll=row.last_success_at is None,
    )


async def release_sources(session: AsyncSession, source_ids: Sequence[int], worker_id: str) -> int:
    """Give back claims this worker will not finish (a graceful stop): the sources stay due, so
    another worker polls them on its next tick instead of after the lease. Returns how many."""
    if not source_ids:
        return 0
    result = await session.execute(
        update(Source)
        .where(Source.id.in_(list(source_ids)), Source.lease_owner == worker_id)
        .values(lease_owner=None, lease_until=None)
        .returning(Source.id)
    )
    return len(result.scalars().all())


async def record_poll(
    session: AsyncSession,
    source_id: int,
    record: PollRecord,
    *,
    now: datetime,
    next_check_at: datetime,
) -> tuple[int, int]:
    """Write the outcome, the next check and the validators; clear the lease.

    Returns consecutive failures ``(before, after)``.
    """
    row = await session.get(Source, source_id, with_for_update=True)
    if row is None:
        return 0, 0
    before = row.consecutive_failures or 0
    row.next_check_at = next_check_at
    row.lease_owner = None
    row.lease_until = None
    row.last_attempt_at = now
    if record.error is None:
        row.consecutive_failures = 0
        row.last_error = None
        row.last_success_at = now
        row.items_last_poll = record.items
        if record.new:
            row.last_new_item_at = now
        if record.etag is not None or not record.not_modified:
            row.etag = record.etag
        if record.last_modified is not None or not record.not_modified:
            row.last_modified = record.last_modified
        if record.cursor is not None or not record.keep_cursor:
            row.cursor = dict(record.cursor) if record.cursor is not None else None
    else:
        row.consecutive_failures = before + 1
        row.last_error = record.error[:2000]
        row.items_last_poll = 0
    await session.flush()
    return before, row.consecutive_failures


async def known_external_ids(
    session: AsyncSession, source_id: int, external_ids: Sequence[str]
) -> set[str]:
    """The subset of ``external_ids`` already stored for the source."""
    if not external_ids:
        return set()
    result = await session.scalars(
        select(Item.external_id).where(
            Item.source_id == source_id, Item.external_id.in_(list(external_ids))
        )
    )
    return set(result.all())
