"""The outbox's claims and outcomes: the one place that decides which process sends which row.

A row is *due* when ``status = 'pending'``, ``next_attempt_at <= now``, it is not leased (or its
lease has expired: the process that held it died) and its subscriber is active. ``claim`` leases
due rows to this worker (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers get
disjoint rows; SQLite assumes one process) and commits at once. Every later write is one short
transaction and applies only while this worker still holds the lease, so a row taken over after
an expired lease is never overwritten by the slow process.

Progress through a multi-message payload is recorded after every message (``payload["sent"]``),
so a crash repeats at most the message that was in flight, never the ones before it.

Statuses: ``pending`` → ``sent`` | ``failed`` | ``cancelled`` (the chat became unreachable);
``folded`` rows record an item delivered inside a burst summary and are never sent themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.db.deliveries import DeliveryRepository, NewDelivery
from models.db.subscribers import SubscriberRepository
from models.db.tables import Delivery, Subscriber
from models.outbox import (
    DeliveryKind,
    DeliveryStatus,
    OutboxPayload,
    OutgoingMessage,
    payload_from_json,
)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A leased outbox row with what sending it needs."""

    id: int
    subscriber_id: int
    chat_id: int
    chat_type: str
    kind: str
    item_id: int | None
    payload: OutboxPayload
    attempts: int
    reply_to_message_id: int | None = None  # the message this one answers (an update)
    reply_waiting: bool = False  # that message has not gone yet: send this one after it
    topic: int | None = None  # the forum topic it goes to: its own, or its reply's

    @property
    def messages(self) -> list[OutgoingMessage]:
        return self.payload["messages"]

    @property
    def sent_count(self) -> int:
        return self.payload.get("sent", 0)

    @property
    def is_group(self) -> bool:
        return self.chat_id < 0 or self.chat_type in {"group", "supergroup", "channel"}


class Outbox:
    """Claims and outcome records for one worker; each method is its own transaction."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, worker_id: str, lease: timedelta
    ) -> None:
        self.sessions = sessions
        self.worker_id = worker_id
        self.lease = lease

    async def claim(self, now: datetime, limit: int) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due rows to this worker, oldest due first."""
        due = (
            select(Delivery.id)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at <= now,
                or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
                Subscriber.active.is_(True),
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=Delivery)
        )
        async with self.sessions.begin() as session:
            ids = list(
                (
                    await session.execute(
                        update(Delivery)
                        .where(Delivery.id.in_(due.scalar_subquery()))
                        .values(lease_owner=self.worker_id, lease_until=now + self.lease)
                        .returning(Delivery.id)
                        .execution_options(synchronize_session=False)
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                return []
            rows = (
                await session.execute(
                    select(Delivery, Subscriber.chat_id, Subscriber.chat_type)
                    .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                    .where(Delivery.id.in_(ids))
                    .order_by(Delivery.next_attempt_at, Delivery.id)
                )
            ).all()
            claimed = []
            for row, chat_id, chat_type in rows:
                payload = payload_from_json(row.payload)
                reply = _Replied(None, False, None)
                if "reply_to" in payload:
                    reply = await _replied(session, row.subscriber_id, payload["reply_to"])
                claimed.append(
                    ClaimedDelivery(
                        id=row.id,
                        subscriber_id=row.subscriber_id,
                        chat_id=chat_id,
                        chat_type=chat_type,
                        kind=row.kind,
                        item_id=row.item_id,
                        payload=payload,
                        attempts=row.attempts,
                        reply_to_message_id=reply.message_id,
                        reply_waiting=reply.waiting,
                        topic=payload.get("topic", reply.topic),
                    )
                )
        return claimed

    def _mine(self, delivery_id: int) -> Any:
        return and_(
            Delivery.id == delivery_id,
            Delivery.lease_owner == self.worker_id,
            Delivery.status == DeliveryStatus.PENDING,
        )

    async def _update(self, delivery_id: int, values: Mapping[str, Any]) -> bool:
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(Delivery)
                .where(self._mine(delivery_id))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        return bool(getattr(result, "rowcount", 0))

    async def release(self, delivery_ids: list[int]) -> None:
        """Give back claimed rows this worker did not get to (on a graceful stop)."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(delivery_ids),
                    Delivery.lease_owner == self.worker_id,
                    Delivery.status == DeliveryStatus.PENDING,
                )
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )

    async def renew(self, delivery_id: int, now: datetime) -> bool:
        """Extend this worker's lease; False when the row is no longer ours to send."""
        return await self._update(delivery_id, {"lease_until": now + self.lease})

    async def record_progress(
        self, delivery: ClaimedDelivery, sent: int, message_id: int, now: datetime
    ) -> bool:
        """``sent`` messages of a multi-message payload have gone out."""
        return await self._update(
            delivery.id,
            {
                "payload": _with_sent(delivery.payload, sent),
                "sent_message_id": message_id,
                "updated_at": now,
            },
        )

    async def mark_sent(
        self, delivery: ClaimedDelivery, sent: int, message_id: int | None, now: datetime
    ) -> bool:
        return await self._update(
            delivery.id,
            {
                "status": DeliveryStatus.SENT,
                "payload": _with_sent(delivery.payload, sent),
                "sent_message_id": message_id,
                "sent_at": now,
                "lease_owner": None,
                "lease_until": None,
                "last_error": None,
                "updated_at": now,
            },
        )

    async def reschedule(
        self,
        delivery: ClaimedDelivery,
        *,
        at: datetime,
        error: str,
        now: datetime,
        count_attempt: bool,
        sent: int | None = None,
    ) -> bool:
        """Try again at ``at`` (a flood wait does not count as an attempt; a failure does)."""
        values: dict[str, Any] = {
            "next_attempt_at": at,
            "last_error": error[:2000],
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now,
            "attempts": delivery.attempts + (1 if count_attempt else 0),
        }
        if sent is not None:
            values["payload"] = _with_sent(delivery.payload, sent)
        return await self._update(delivery.id, values)

    async def mark_failed(
        self,
        delivery: ClaimedDelivery,
        error: str,
        now: datetime,
        *,
        status: str = DeliveryStatus.FAILED,
    ) -> bool:
        return await self._update(
            delivery.id,
            {
                "status": status,
                "last_error": error[:2000],
                "attempts": delivery.attempts + 1,
                "lease_owner": None,
                "lease_until": None,
                "updated_at": now,
            },
        )

    async def deactivate_subscriber(self, subscriber_id: int, reason: str, now: datetime) -> int:
        """The chat is unreachable: make the subscriber inactive and cancel what is pending for
        it. Returns how many pending rows were cancelled."""
        async with self.sessions.begin() as session:
            return await SubscriberRepository(session).deactivate(subscriber_id, reason, now)

    async def unroute_topic(
        self,
        subscriber_id: int,
        topic: int,
        notice: Callable[[list[str]], OutboxPayload],
        now: datetime,
    ) -> list[str]:
        """A forum topic is gone or closed: the chat's themes routed to it go to the chat
        itself from now on, and the chat gets ``notice(their slugs)`` (once). Returns them."""
        async with self.sessions.begin() as session:
            slugs = await SubscriberRepository(session).unroute_topic(subscriber_id, topic)
            if slugs:
                key = f"topic-gone:{topic}:{now.isoformat()}"
                await DeliveryRepository(session).enqueue(
                    [NewDelivery(subscriber_id, DeliveryKind.NOTICE, key, notice(slugs))], now
                )
        return slugs

    async def migrate_chat(self, subscriber_id: int, new_chat_id: int, now: datetime) -> bool:
        """Follow a group that became a supergroup (``SubscriberRepository.migrate_chat``: a
        subscriber already registered under the new id is merged into this one). False when
        the subscriber is gone."""
        async with self.sessions.begin() as session:
            return await SubscriberRepository(session).migrate_chat(subscriber_id, new_chat_id, now)


class _Replied(NamedTuple):
    message_id: int | None  # the message a reply answers, if it was sent
    waiting: bool  # it is still to be sent
    topic: int | None  # the forum topic it went (or goes) to: the reply goes there too


async def _replied(session: AsyncSession, subscriber_id: int, key: str) -> _Replied:
    """The chat's delivery ``key``, as a reply to it needs it. A folded key leads to the
    message that carried it; a failed or missing one is answered without."""
    for _ in range(3):
        row = await session.scalar(
            select(Delivery).where(
                Delivery.subscriber_id == subscriber_id, Delivery.dedupe_key == key
            )
        )
        if row is None:
            break
        payload = payload_from_json(row.payload)
        folded = payload.get("folded_into")
        if row.status == DeliveryStatus.FOLDED and folded:
            key = folded
            continue
        topic = payload.get("topic")
        if row.status == DeliveryStatus.PENDING:
            return _Replied(None, True, topic)
        sent = row.status == DeliveryStatus.SENT
        return _Replied(row.sent_message_id if sent else None, False, topic)
    return _Replied(None, False, None)


def _with_sent(payload: OutboxPayload, sent: int) -> dict[str, Any]:
    """The payload to store once ``sent`` of its messages have gone out."""
    return {**payload, "sent": sent}
