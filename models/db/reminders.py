"""The reminder work queue (``reminders``): planned rows, claimed when due, finished once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.items import chunks, insert_ignoring_conflicts
from models.db.queries import REGULATORY_KINDS, item_row
from models.db.tables import Item, ItemTheme, Reminder, Source, Subscriber, Subscription, Theme
from models.digests import parse_fact_date
from models.fields import fields_from_json
from models.reminders import FIELDS, DatedDocument, PlannedReminder
from models.views import ItemRow

LOOKBACK = timedelta(days=400)
MAX_DOCUMENTS = 5000


@dataclass(frozen=True, slots=True)
class DueReminder:
    """A claimed reminder with what it needs to be sent (or dropped)."""

    id: int
    subscriber_id: int
    timezone: str
    active: bool
    muted_until: datetime | None
    quiet_hours: str | None
    still_subscribed: bool
    what: str
    on: date
    lead_days: int
    item: ItemRow
    topic: int | None = None  # the forum topic of the first matching theme routed to one


class ReminderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def dated_documents(self, since: date, until: date) -> list[DatedDocument]:
        """Regulatory documents with an effective date or comment deadline in
        ``[since, until]``, with the enabled themes they matched."""
        published = datetime(since.year, since.month, since.day, tzinfo=UTC) - LOOKBACK
        rows = (
            await self.session.execute(
                select(Item.id, Item.fields)
                .join(Source, Source.id == Item.source_id)
                .where(
                    Source.kind.in_([k for v in REGULATORY_KINDS.values() for k in v]),
                    Item.published_at >= published,
                )
                .order_by(Item.published_at.desc())
                .limit(MAX_DOCUMENTS)
            )
        ).all()
        dated: list[tuple[int, str, date]] = []
        for item_id, raw in rows:
            facts = fields_from_json(raw)
            for what, key in FIELDS:
                on = parse_fact_date(facts.get(key))
                if on is not None and since <= on <= until:
                    dated.append((item_id, what, on))
        themes: dict[int, list[int]] = {}
        for part in chunks(sorted({i for i, _, _ in dated})):
            pairs = await self.session.execute(
                select(ItemTheme.item_id, ItemTheme.theme_id)
                .join(Theme, Theme.id == ItemTheme.theme_id)
                .where(ItemTheme.item_id.in_(part), Theme.enabled.is_(True))
            )
            for item_id, theme_id in pairs.all():
                themes.setdefault(item_id, []).append(theme_id)
        return [
            DatedDocument(item_id, what, on, tuple(sorted(themes[item_id])))  # type: ignore[arg-type]
            for item_id, what, on in dated
            if item_id in themes
        ]

    async def schedule(self, planned: Sequence[PlannedReminder], now: datetime) -> int:
        """Add the reminders not planned yet; a pending one whose time moved (the chat changed
        its zone) is moved. Returns how many were added."""
        rows = [
            {
                "subscriber_id": p.subscriber_id,
                "item_id": p.item_id,
                "what": p.what,
                "on_date": p.on,
                "lead_days": p.lead_days,
                "due_at": p.due_at,
                "created_at": now,
                "updated_at": now,
            }
            for p in planned
        ]
        added = 0
        stmt = insert_ignoring_conflicts(self.session, Reminder.__table__).returning(Reminder.id)  # type: ignore[arg-type]
        for part in chunks(rows):
            added += len((await self.session.execute(stmt, list(part))).scalars().all())
        for p in planned:
            await self.session.execute(
                update(Reminder)
                .where(
                    Reminder.subscriber_id == p.subscriber_id,
                    Reminder.item_id == p.item_id,
                    Reminder.what == p.what,
                    Reminder.on_date == p.on,
                    Reminder.lead_days == p.lead_days,
                    Reminder.status == "pending",
                    Reminder.due_at != p.due_at,
                )
                .values(due_at=p.due_at, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        return added

    async def claim_due(self, now: datetime, limit: int) -> list[DueReminder]:
        """Pending reminders due by ``now`` (``SKIP LOCKED`` on PostgreSQL: locked to this
        transaction, so two workers never send the same one)."""
        subscribed = exists(
            select(Subscription.id)
            .join(ItemTheme, ItemTheme.theme_id == Subscription.theme_id)
            .where(
                Subscription.subscriber_id == Reminder.subscriber_id,
                ItemTheme.item_id == Reminder.item_id,
            )
        )
        topic = (
            select(Subscription.topic_id)
            .join(ItemTheme, ItemTheme.theme_id == Subscription.theme_id)
            .where(
                Subscription.subscriber_id == Reminder.subscriber_id,
                ItemTheme.item_id == Reminder.item_id,
                Subscription.topic_id.is_not(None),
            )
            .order_by(Subscription.theme_id)
            .limit(1)
            .scalar_subquery()
        )
        rows = (
            await self.session.execute(
                select(
                    Reminder,
                    Subscriber,
                    Item,
                    Source,
                    subscribed.label("still"),
                    topic.label("topic"),
                )
                .join(Subscriber, Subscriber.id == Reminder.subscriber_id)
                .join(Item, Item.id == Reminder.item_id)
                .join(Source, Source.id == Item.source_id)
                .where(and_(Reminder.status == "pending", Reminder.due_at <= now))
                .order_by(Reminder.due_at, Reminder.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=Reminder)
            )
        ).all()
        return [
            DueReminder(
                id=r.Reminder.id,
                subscriber_id=r.Subscriber.id,
                timezone=r.Subscriber.timezone,
                active=r.Subscriber.active,
                muted_until=r.Subscriber.muted_until,
                quiet_hours=r.Subscriber.quiet_hours,
                still_subscribed=bool(r.still),
                what=r.Reminder.what,
                on=r.Reminder.on_date,
                lead_days=r.Reminder.lead_days,
                item=item_row(r.Item, r.Source),
                topic=r.topic,
            )
            for r in rows
        ]

    async def finish(self, outcomes: Mapping[int, str], now: datetime) -> None:
        """Record what became of claimed reminders (``sent``, ``skipped`` or ``cancelled``)."""
        for reminder_id, status in outcomes.items():
            await self.session.execute(
                update(Reminder)
                .where(Reminder.id == reminder_id)
                .values(status=status, updated_at=now)
                .execution_options(synchronize_session=False)
            )
