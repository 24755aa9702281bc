"""Adding to the outbox (``deliveries``) and reading its state. Claims and outcomes of sends are
``models.db.outbox``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.items import chunks, insert_ignoring_conflicts
from models.db.tables import Delivery
from models.outbox import DeliveryKind, DeliveryStatus, OutboxPayload
from models.views import OutboxBacklog

MAX_DEDUPE_KEY = 128


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A planned delivery of ``payload`` to one subscriber.

    ``item_id`` makes it unique per (chat, item); ``dedupe_key`` per (chat, key).
    """

    subscriber_id: int
    kind: DeliveryKind
    dedupe_key: str
    payload: OutboxPayload
    item_id: int | None = None
    status: DeliveryStatus = DeliveryStatus.PENDING
    send_at: datetime | None = None  # None: as soon as possible

    def __post_init__(self) -> None:
        if len(self.dedupe_key) > MAX_DEDUPE_KEY:
            msg = f"dedupe key longer than {MAX_DEDUPE_KEY} characters: {self.dedupe_key[:40]}…"
            raise ValueError(msg)


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(self, deliveries: Sequence[NewDelivery], now: datetime) -> list[int]:
        """Add planned messages to the outbox, silently skipping any that would repeat an item
        or a dedupe key for the same chat. Returns the ids actually added."""
        values = [
            {
                "subscriber_id": d.subscriber_id,
                "item_id": d.item_id,
                "kind": d.kind.value,
                "dedupe_key": d.dedupe_key,
                "status": d.status.value,
                "payload": dict(d.payload),
                "next_attempt_at": d.send_at or now,
                "created_at": now,
                "updated_at": now,
            }
            for d in deliveries
        ]
        stmt = insert_ignoring_conflicts(self.session, Delivery.__table__).returning(Delivery.id)  # type: ignore[arg-type]
        added: list[int] = []
        for part in chunks(values):
            result = await self.session.execute(stmt, list(part))
            added.extend(result.scalars().all())
        return added

    async def recent_instant(
        self, subscriber_ids: Sequence[int], since: datetime
    ) -> dict[int, int]:
        """Instant messages (alerts and summaries) each chat got or has queued since ``since``."""
        counts: dict[int, int] = {}
        for chunk in chunks(list(subscriber_ids)):
            rows = await self.session.execute(
                select(Delivery.subscriber_id, func.count())
                .where(
                    Delivery.subscriber_id.in_(chunk),
                    Delivery.kind.in_([DeliveryKind.ALERT, DeliveryKind.BURST]),
                    Delivery.status.not_in(
                        [DeliveryStatus.FOLDED, DeliveryStatus.CANCELLED, DeliveryStatus.FAILED]
                    ),
                    Delivery.created_at >= since,
                )
                .group_by(Delivery.subscriber_id)
            )
            counts.update({int(sid): int(n) for sid, n in rows.all()})
        return counts

    async def backlog(self, now: datetime) -> OutboxBacklog:
        """How many deliveries wait to be sent, and how long the oldest has waited."""
        row = (
            await self.session.execute(
                select(func.count(), func.min(Delivery.created_at)).where(
                    Delivery.status == DeliveryStatus.PENDING
                )
            )
        ).one()
        count = int(row[0] or 0)
        oldest: datetime | None = row[1]  # min() keeps the column's type: aware UTC
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        return OutboxBacklog(pending=count, oldest_seconds=age)
