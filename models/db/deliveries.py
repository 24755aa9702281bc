"""Adding to the outbox (``deliveries``) and reading its state. Claims and outcomes of sends are
``models.db.outbox``."""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.alerts import EventDelivered, Queued
from models.db.items import chunks, insert_ignoring_conflicts
from models.db.tables import Delivery, Event, ItemTheme, Subscriber
from models.localtime import quiet_hours_end
from models.outbox import (
    QUIET_HELD_KINDS,
    DeliveryKind,
    DeliveryStatus,
    OutboxPayload,
    payload_from_json,
)
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
    event_id: int | None = None

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
                "event_id": d.event_id,
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
        return await self._instant_counts(
            subscriber_ids,
            Delivery.status.not_in(
                [DeliveryStatus.FOLDED, DeliveryStatus.CANCELLED, DeliveryStatus.FAILED]
            ),
            Delivery.created_at >= since,
        )

    async def queued_instant(
        self, subscriber_ids: Sequence[int], now: datetime
    ) -> dict[int, Queued]:
        """What waits to go to each chat after ``now`` (held by its quiet hours): instant
        messages, alerts and summaries."""
        counts = await self._instant_counts(
            subscriber_ids,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.next_attempt_at > now,
        )
        return {chat: Queued(n) for chat, n in counts.items()}

    async def _instant_counts(
        self, subscriber_ids: Sequence[int], *where: ColumnElement[bool]
    ) -> dict[int, int]:
        """Alerts and summaries of each chat that match ``where``."""
        counts: dict[int, int] = {}
        for chunk in chunks(list(subscriber_ids)):
            rows = await self.session.execute(
                select(Delivery.subscriber_id, func.count())
                .where(
                    Delivery.subscriber_id.in_(chunk),
                    Delivery.kind.in_([DeliveryKind.ALERT, DeliveryKind.BURST]),
                    *where,
                )
                .group_by(Delivery.subscriber_id)
            )
            counts.update({int(sid): int(n) for sid, n in rows.all()})
        return counts

    async def event_state(
        self, subscriber_ids: Sequence[int], event_ids: Sequence[int]
    ) -> dict[tuple[int, int], EventDelivered]:
        """What each chat was already sent about each event (events merged into one count as
        that one): the key of the message to reply to, and the updates so far."""
        if not subscriber_ids or not event_ids:
            return {}
        merged = dict(
            (
                await self.session.execute(
                    select(Event.id, Event.merged_into).where(
                        Event.merged_into.in_(list(event_ids))
                    )
                )
            ).all()
        )
        wanted = [*event_ids, *merged]
        rows = (
            await self.session.execute(
                select(Delivery)
                .where(
                    Delivery.subscriber_id.in_(list(subscriber_ids)),
                    Delivery.event_id.in_(wanted),
                )
                .order_by(Delivery.id)
            )
        ).scalars()
        # An alert that never reached the chat (it failed, or was cancelled) does not count,
        # nor do the items folded into it: the next item is an alert, not a bare "also:".
        lost = [DeliveryStatus.FAILED, DeliveryStatus.CANCELLED]
        reached = [(row, payload_from_json(row.payload)) for row in rows if row.status not in lost]
        # a summary a folded item went into is a row of its own, of any event or none
        unsent = await self.taken_keys(
            {
                (row.subscriber_id, key)
                for row, payload in reached
                if row.status == DeliveryStatus.FOLDED and (key := payload.get("folded_into"))
            },
            lost,
        )
        found: dict[tuple[int, int], EventDelivered] = {}
        for row, payload in reached:
            assert row.event_id is not None
            pair = (row.subscriber_id, merged.get(row.event_id) or row.event_id)
            state = found.get(pair)
            if (row.subscriber_id, payload.get("folded_into", "")) in unsent:
                continue
            if row.kind == DeliveryKind.UPDATE:
                if state is None:
                    continue
                waiting = (
                    row.status == DeliveryStatus.PENDING
                    and row.lease_owner is None
                    and not payload.get("sent")
                )
                last = state.last_update_at
                found[pair] = replace(
                    state,
                    updates=state.updates + 1,
                    last_update_at=max(last, row.next_attempt_at) if last else row.next_attempt_at,
                    waiting_update=row.dedupe_key if waiting else state.waiting_update,
                )
            elif state is None:
                key = payload.get("folded_into", row.dedupe_key)
                found[pair] = EventDelivered(alert_key=key)
        return found

    async def taken_keys(
        self, keys: Set[tuple[int, str]], statuses: Sequence[DeliveryStatus] | None = None
    ) -> set[tuple[int, str]]:
        """Of these (chat, message key) pairs, those a row holds already (in ``statuses``)."""
        found: set[tuple[int, str]] = set()
        for chat in {c for c, _ in keys}:
            wanted = sorted(k for c, k in keys if c == chat)
            for part in chunks(wanted):
                query = select(Delivery.dedupe_key).where(
                    Delivery.subscriber_id == chat, Delivery.dedupe_key.in_(part)
                )
                if statuses is not None:
                    query = query.where(Delivery.status.in_(list(statuses)))
                found.update((chat, key) for key in (await self.session.execute(query)).scalars())
        return found

    async def folded_into(self, subscriber_id: int, key: str) -> list[int]:
        """The items a chat's message ``key`` carries (the rows folded into it)."""
        rows = await self.session.scalars(
            select(Delivery.item_id)
            .where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.status == DeliveryStatus.FOLDED,
                Delivery.payload["folded_into"].as_string() == key,
                Delivery.item_id.is_not(None),
            )
            .order_by(Delivery.id)
        )
        return [int(i) for i in rows.all() if i is not None]

    async def payload_of(self, subscriber_id: int, key: str) -> OutboxPayload | None:
        """The payload of a chat's message ``key``; None when there is none."""
        raw = await self.session.scalar(
            select(Delivery.payload).where(
                Delivery.subscriber_id == subscriber_id, Delivery.dedupe_key == key
            )
        )
        return None if raw is None else payload_from_json(raw)

    async def rewrite_waiting(
        self, subscriber_id: int, key: str, payload: OutboxPayload, now: datetime
    ) -> bool:
        """Replace the payload of a chat's message ``key`` that no sender has touched yet;
        False when it is already being sent (or gone)."""
        result = await self.session.execute(
            update(Delivery)
            .where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.dedupe_key == key,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.lease_owner.is_(None),
            )
            .values(payload=dict(payload), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def _move_waiting(
        self, subscriber_id: int, at: datetime, now: datetime, *where: ColumnElement[bool]
    ) -> int:
        """Move a chat's pending deliveries that no sender holds (and that match ``where``)
        to ``at``. Returns how many moved."""
        result = await self.session.execute(
            update(Delivery)
            .where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.lease_owner.is_(None),
                *where,
            )
            .values(next_attempt_at=at, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def reschedule_held(self, subscriber_id: int, at: datetime, now: datetime) -> int:
        """Move a chat's waiting "while you were muted" summaries to ``at`` (its mute ended
        early or changed), or to the end of the chat's quiet hours when ``at`` falls in them.
        Returns how many moved."""
        at = await self._after_mute_and_quiet(subscriber_id, at)
        return await self._move_waiting(
            subscriber_id,
            at,
            now,
            Delivery.kind == DeliveryKind.HELD.value,
            Delivery.next_attempt_at != at,
        )

    async def reschedule_quiet(
        self, subscriber_id: int, held_until: datetime, at: datetime, now: datetime
    ) -> int:
        """Move what a chat's quiet hours hold until ``held_until`` (alerts, summaries,
        updates and reminders planned inside them, never tried yet) to ``at``: the chat ended
        or changed its quiet hours, or its time zone. A "while you were muted" summary held
        there waits for the mute too (to its end, or the end of the quiet hours it falls in).
        Returns how many moved."""
        moved = await self._move_waiting(
            subscriber_id,
            at,
            now,
            Delivery.kind.in_(QUIET_HELD_KINDS),
            Delivery.attempts == 0,
            Delivery.next_attempt_at == held_until,
        )
        return moved + await self._move_waiting(
            subscriber_id,
            await self._after_mute_and_quiet(subscriber_id, at),
            now,
            Delivery.kind == DeliveryKind.HELD.value,
            Delivery.attempts == 0,
            Delivery.next_attempt_at == held_until,
        )

    async def _after_mute_and_quiet(self, subscriber_id: int, at: datetime) -> datetime:
        """``at``, or later: when the chat's mute ends, and out of its quiet hours."""
        chat = (
            await self.session.execute(
                select(Subscriber.muted_until, Subscriber.quiet_hours, Subscriber.timezone).where(
                    Subscriber.id == subscriber_id
                )
            )
        ).first()
        if chat is None:
            return at
        if chat.muted_until is not None and chat.muted_until > at:
            at = chat.muted_until
        return quiet_hours_end(chat.quiet_hours, chat.timezone, at) or at

    async def release_quiet(
        self, subscriber_id: int, held_until: datetime, theme_ids: Sequence[int], now: datetime
    ) -> int:
        """Send now the alerts a chat's quiet hours hold until ``held_until`` whose item matched
        one of ``theme_ids`` (themes the chat now lets through). Returns how many."""
        if not theme_ids:
            return 0
        matched = select(ItemTheme.item_id).where(ItemTheme.theme_id.in_(list(theme_ids)))
        return await self._move_waiting(
            subscriber_id,
            now,
            now,
            Delivery.kind == DeliveryKind.ALERT.value,
            Delivery.attempts == 0,
            Delivery.next_attempt_at == held_until,
            Delivery.item_id.in_(matched),
        )

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
