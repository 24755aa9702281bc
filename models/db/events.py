"""Events: assigning stored items to the happening they report, and reading events back.

``assign`` is incremental: for each new item it reads the signature (``models.events.read``),
looks candidates up through ``item_keys`` (the item's hard keys and anchors, within their time
windows: an indexed range read of a few keys, never a scan of the items), loads the members of
the events they belong to, and lets the pure ``decide`` choose. The decision, its reason and the
signature are stored; so are the item's keys, for the items after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.items import chunks, stored_item
from models.db.tables import Event, Item, ItemEvent, ItemKey, Source
from models.events import (
    HARD_WINDOW,
    MEMBERS_PER_EVENT,
    REGULATION_LAG,
    EventItem,
    Member,
    Signature,
    decide,
    read,
    window_keys,
)
from models.fields import fields_from_json
from models.items import StoredItem
from models.views import EventMember, EventView

MAX_KEY = 200
MAX_CANDIDATES = 100  # items looked at per assignment: most keys shared, then most recent
MAX_MEMBERS = 400  # members of candidate events compared with


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where an item went: its event, whether that event is new, and why."""

    item_id: int
    event_id: int
    new_event: bool
    reason: str


def _key(value: str) -> str:
    """An index key of at most ``MAX_KEY`` characters (a long URL is hashed)."""
    if len(value) <= MAX_KEY:
        return value
    kind, _, rest = value.partition(":")
    return f"{kind}:sha1:{hashlib.sha1(rest.encode()).hexdigest()}"  # noqa: S324 - an index key


def event_item(item: StoredItem) -> EventItem:
    return EventItem(
        id=str(item.id),
        title=item.title,
        summary=item.summary,
        url=item.url,
        source=item.source_name,
        language=item.language,
        published_at=item.published_at,
        fields=item.fields,
    )


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------ assignment

    async def assign(self, items: Iterable[StoredItem], now: datetime) -> list[Assignment]:
        """Assign each item (oldest first) to an event, creating events as needed."""
        done: list[Assignment] = []
        for item in sorted(items, key=lambda i: (i.published_at, i.id)):
            signature = read(event_item(item))
            members = await self.candidates(signature)
            decision = decide(signature, members)
            new = decision.event_id is None
            event_id = decision.event_id or await self._new_event(item)
            if not new:
                await self._grow(event_id, item.published_at, 1)
            self.session.add(
                ItemEvent(
                    item_id=item.id,
                    event_id=event_id,
                    reason=decision.reason,
                    score=decision.score if decision.score != float("inf") else None,
                    signature=signature.to_json(),
                    assigned_at=now,
                )
            )
            hard, soft = window_keys(signature)
            self.session.add_all(
                ItemKey(item_id=item.id, key=key, at=signature.when)
                for key in dict.fromkeys(_key(k) for k in (*hard, *soft))
            )
            await self.session.flush()
            done.append(Assignment(item.id, event_id, new, decision.reason))
        return done

    async def ungrouped(self, limit: int) -> list[StoredItem]:
        """Up to ``limit`` stored items not yet in any event, oldest first (a source's first
        poll is grouped in the background: ``pipeline.grouping.group_backlog``)."""
        rows = (
            await self.session.execute(
                select(Item, Source)
                .join(Source, Source.id == Item.source_id)
                .outerjoin(ItemEvent, ItemEvent.item_id == Item.id)
                .where(ItemEvent.item_id.is_(None))
                .order_by(Item.published_at, Item.id)
                .limit(limit)
            )
        ).all()
        return [stored_item(item, source) for item, source in rows]

    async def candidates(self, signature: Signature) -> list[Member]:
        """The members of the events an item with ``signature`` may join: items sharing a hard
        key within ``HARD_WINDOW`` or an anchor within ``REGULATION_LAG``, and their events."""
        hard, soft = window_keys(signature)
        when = signature.when
        conditions = []
        if hard:
            conditions.append(
                (ItemKey.key.in_([_key(k) for k in hard]))
                & ItemKey.at.between(when - HARD_WINDOW, when + HARD_WINDOW)
            )
        if soft:
            conditions.append(
                (ItemKey.key.in_([_key(k) for k in soft]))
                & ItemKey.at.between(when - REGULATION_LAG, when + REGULATION_LAG)
            )
        if not conditions:
            return []
        item_ids = (
            await self.session.scalars(
                select(ItemKey.item_id)
                .where(or_(*conditions))
                .group_by(ItemKey.item_id)
                .order_by(func.count().desc(), func.max(ItemKey.at).desc())
                .limit(MAX_CANDIDATES)
            )
        ).all()
        if not item_ids:
            return []
        events = (
            await self.session.scalars(
                select(ItemEvent.event_id).where(ItemEvent.item_id.in_(list(item_ids))).distinct()
            )
        ).all()
        # Each event's latest members (what ``decide`` compares with), and every member that
        # shares a hard key (a correction joins its document however big the event grew).
        keyed = list(item_ids) if hard else []
        if hard and soft:
            keyed = list(
                (
                    await self.session.scalars(
                        select(ItemKey.item_id)
                        .where(conditions[0], ItemKey.item_id.in_(list(item_ids)))
                        .distinct()
                    )
                ).all()
            )
        ranked = (
            select(
                ItemEvent.item_id,
                ItemEvent.event_id,
                ItemEvent.signature,
                ItemEvent.assigned_at,
                func.row_number()
                .over(
                    partition_by=ItemEvent.event_id,
                    order_by=(ItemEvent.assigned_at.desc(), ItemEvent.item_id.desc()),
                )
                .label("rank"),
            )
            .where(ItemEvent.event_id.in_(list(events)))
            .subquery()
        )
        wanted = ranked.c.rank <= MEMBERS_PER_EVENT
        if keyed:
            wanted = or_(wanted, ranked.c.item_id.in_(keyed))
        rows = (
            await self.session.execute(
                select(ranked.c.event_id, ranked.c.signature)
                .where(wanted)
                .order_by(ranked.c.assigned_at.desc())
                .limit(MAX_MEMBERS)
            )
        ).all()
        return [Member(int(r.event_id), Signature.from_json(r.signature)) for r in rows]

    async def _new_event(self, item: StoredItem) -> int:
        event = Event(
            title=item.title,
            first_at=item.published_at,
            last_at=item.published_at,
            item_count=1,
        )
        self.session.add(event)
        await self.session.flush()
        return event.id

    async def _grow(self, event_id: int, at: datetime, count: int) -> None:
        event = await self.session.get(Event, event_id)
        if event is None:
            return
        event.item_count += count
        event.first_at = min(event.first_at, at)
        event.last_at = max(event.last_at, at)

    # ------------------------------------------------------------ reading

    async def of_items(self, item_ids: Sequence[int]) -> dict[int, int]:
        """item id → event id, for the items that have one."""
        found: dict[int, int] = {}
        for chunk in chunks(list(item_ids)):
            rows = await self.session.execute(
                select(ItemEvent.item_id, ItemEvent.event_id).where(ItemEvent.item_id.in_(chunk))
            )
            found.update({int(i): int(e) for i, e in rows.all()})
        return found

    async def views(self, event_ids: Sequence[int]) -> dict[int, EventView]:
        """The events with their members, oldest member first."""
        if not event_ids:
            return {}
        events = {
            e.id: e
            for e in (
                await self.session.scalars(select(Event).where(Event.id.in_(list(event_ids))))
            ).all()
        }
        rows = (
            await self.session.execute(
                select(ItemEvent, Item, Source)
                .join(Item, Item.id == ItemEvent.item_id)
                .join(Source, Source.id == Item.source_id)
                .where(ItemEvent.event_id.in_(list(events)))
                .order_by(Item.published_at, Item.id)
            )
        ).all()
        members: dict[int, list[EventMember]] = {}
        for link, item, source in rows:
            members.setdefault(link.event_id, []).append(
                EventMember(
                    item_id=item.id,
                    title=item.title,
                    url=item.url,
                    source_name=source.name,
                    source_kind=source.kind,
                    published_at=item.published_at,
                    date_only=item.published_date_only or item.published_at_guessed,
                    language=item.language,
                    reason=link.reason,
                    manual=link.manual,
                    fields=fields_from_json(item.fields),
                )
            )
        return {
            eid: EventView(
                id=eid,
                title=e.title,
                first_at=e.first_at,
                last_at=e.last_at,
                members=tuple(members.get(eid, ())),
            )
            for eid, e in events.items()
        }

    async def resolve(self, event_id: int) -> int | None:
        """The event an id names now (following merges), or None."""
        for _ in range(16):
            event = await self.session.get(Event, event_id)
            if event is None:
                return None
            if event.merged_into is None:
                return event.id
            event_id = event.merged_into
        return None

    # ------------------------------------------------------------ editors' fixes

    async def merge(self, into: int, other: int, now: datetime) -> int:
        """Move every item of ``other`` into ``into``; ``other`` is left pointing at it.
        Returns how many items moved."""
        moved = int(
            await self.session.scalar(
                select(func.count()).select_from(ItemEvent).where(ItemEvent.event_id == other)
            )
            or 0
        )
        await self.session.execute(
            update(ItemEvent)
            .where(ItemEvent.event_id == other)
            .values(event_id=into, manual=True, reason=f"merged by an editor from event {other}")
            .execution_options(synchronize_session=False)
        )
        source = await self.session.get(Event, other)
        target = await self.session.get(Event, into)
        if source is not None and target is not None:
            target.item_count += moved
            target.first_at = min(target.first_at, source.first_at)
            target.last_at = max(target.last_at, source.last_at)
            target.updated_at = now
            source.item_count, source.merged_into, source.updated_at = 0, into, now
        await self.session.flush()
        return moved

    async def split(self, item_id: int, now: datetime) -> tuple[int, int] | None:
        """Move one item out of its event into a new event of its own (kept apart from then on:
        the assignment is manual). Returns (old event, new event), or None for no such item."""
        link = await self.session.get(ItemEvent, item_id)
        item = await self.session.get(Item, item_id)
        if link is None or item is None:
            return None
        old = link.event_id
        event = Event(
            title=item.title, first_at=item.published_at, last_at=item.published_at, item_count=1
        )
        self.session.add(event)
        await self.session.flush()
        link.event_id, link.manual, link.reason = event.id, True, "split off by an editor"
        link.assigned_at = now
        previous = await self.session.get(Event, old)
        if previous is not None:
            previous.item_count = max(previous.item_count - 1, 0)
            previous.updated_at = now
        # Its keys go too: later items must not follow it back into either event by them.
        await self.session.execute(delete(ItemKey).where(ItemKey.item_id == item_id))
        await self.session.flush()
        return old, event.id

    async def prune(self, older_than: timedelta, now: datetime) -> int:
        """Delete events left without items (retention purged them) and not touched since
        ``now - older_than``; merged events stay as pointers while anything points at them."""
        empty = select(Event.id).where(
            ~exists().where(ItemEvent.event_id == Event.id),
            ~exists().where(Event.merged_into == Event.id),
            Event.updated_at < now - older_than,
            Event.merged_into.is_(None),
        )
        result = await self.session.execute(
            delete(Event).where(Event.id.in_(empty.scalar_subquery()))
        )
        return int(getattr(result, "rowcount", 0) or 0)
