"""Retention: unmatched items go after a while; matched items, deliveries and the audit log stay
(each configurable). On SQLite the file is compacted when much of it is free, so it does not grow
without bound.

An unmatched item purged here may come back if its source still serves it; it is then stored
again as new, matches nothing again (or is too old to alert), and is purged again later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from models.db.tables import AuditLog, Delivery, Item, ItemTheme
from models.outbox import DeliveryStatus

BATCH = 2000


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long to keep things; ``None`` keeps them forever."""

    unmatched_items: timedelta | None = timedelta(days=30)
    deliveries: timedelta | None = None
    audit_log: timedelta | None = None


@dataclass(frozen=True, slots=True)
class PurgeReport:
    items: int = 0
    deliveries: int = 0
    audit_log: int = 0
    events: int = 0


async def purge(session: AsyncSession, policy: RetentionPolicy, now: datetime) -> PurgeReport:
    """Delete what the policy says has expired, in batches; the caller commits."""
    items = deliveries = audit = 0
    if policy.deliveries is not None:
        horizon = now - policy.deliveries
        result = await session.execute(
            delete(Delivery).where(
                Delivery.created_at < horizon,
                Delivery.status.in_(
                    (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)
                ),
            )
        )
        deliveries = int(getattr(result, "rowcount", 0) or 0)
    if policy.unmatched_items is not None:
        horizon = now - policy.unmatched_items
        while True:
            batch = (
                select(Item.id)
                .where(
                    Item.first_seen_at < horizon,
                    ~exists().where(ItemTheme.item_id == Item.id),
                    ~exists().where(Delivery.item_id == Item.id),
                )
                .limit(BATCH)
            )
            ids = list((await session.scalars(batch)).all())
            if not ids:
                break
            await session.execute(delete(Item).where(Item.id.in_(ids)))
            items += len(ids)
    if policy.audit_log is not None:
        result = await session.execute(delete(AuditLog).where(AuditLog.at < now - policy.audit_log))
        audit = int(getattr(result, "rowcount", 0) or 0)
    return PurgeReport(items=items, deliveries=deliveries, audit_log=audit)


async def compact_sqlite(
    engine: AsyncEngine, *, free_share: float = 0.25, min_pages: int = 256
) -> bool:
    """Checkpoint the WAL, and VACUUM when more than ``free_share`` of the file is free pages.

    Returns whether it vacuumed. A no-op on other databases.
    """
    if engine.dialect.name != "sqlite":
        return False
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        pages = int(await conn.scalar(text("PRAGMA page_count")) or 0)
        free = int(await conn.scalar(text("PRAGMA freelist_count")) or 0)
        vacuum = free >= min_pages and pages > 0 and free / pages >= free_share
        if vacuum:
            await conn.execute(text("VACUUM"))
        await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    return vacuum
