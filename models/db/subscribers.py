"""Subscribers (chats), their settings, roles and subscriptions, and their digest schedule."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    Table,
    UniqueConstraint,
    and_,
    delete,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models.alerts import INSTANT_CHOICES, INSTANT_SURE, SubscriberInfo, SubscriptionInfo
from models.db.tables import (
    Base,
    Delivery,
    ItemEvent,
    ItemTheme,
    Subscriber,
    Subscription,
    Theme,
)
from models.digests import DIGEST_MODES
from models.localtime import parse_quiet_hours
from models.outbox import DeliveryKind, DeliveryStatus
from models.views import SubscriberView, SubscriptionView

ROLE_SUBSCRIBER = "subscriber"
ROLE_EDITOR = "editor"
ROLE_ADMIN = "admin"
PRIVATE = "private"


@dataclass(frozen=True, slots=True)
class DigestDue:
    """A subscriber whose digest is due, with the schedule it is built from."""

    subscriber_id: int
    timezone: str
    mode: str
    digest_time: str | None
    weekday: int | None
    send_empty: bool
    due: datetime
    last_digest_at: datetime | None
    topic: int | None = None  # the forum topic it goes to


class SubscriberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------ chats

    async def get_by_chat(self, chat_id: int) -> SubscriberView | None:
        row = await self._by_chat(chat_id)
        return view(row) if row is not None else None

    async def ensure(
        self,
        *,
        chat_id: int,
        chat_type: str,
        user_id: int | None,
        title: str | None,
        now: datetime,
    ) -> SubscriberView:
        """The chat's subscriber, registering (or re-activating) it on first use."""
        row = await self._by_chat(chat_id)
        if row is not None and row.active:
            return view(row)
        return await self.register(
            chat_id=chat_id, chat_type=chat_type, user_id=user_id, title=title, now=now
        )

    async def register(
        self,
        *,
        chat_id: int,
        chat_type: str,
        user_id: int | None,
        title: str | None,
        now: datetime,
        role: str = ROLE_SUBSCRIBER,
    ) -> SubscriberView:
        """Create the subscriber for a chat, or re-activate it."""
        row = await self._by_chat(chat_id)
        if row is None:
            row = Subscriber(
                chat_id=chat_id,
                chat_type=chat_type,
                user_id=user_id,
                title=title[:255] if title else None,
                role=role,
                created_at=now,
                updated_at=now,
            )
            self.session.add(row)
        else:
            row.active = True
            row.deactivated_reason = None
            row.chat_type, row.title = chat_type, title[:255] if title else None
            if user_id is not None:
                row.user_id = user_id
            row.updated_at = now
        await self.session.flush()
        return view(row)

    async def deactivate(self, subscriber_id: int, reason: str, now: datetime) -> int:
        """The chat is unreachable (blocked, kicked, deactivated): make the subscriber inactive
        and cancel what is pending for it, so the outbox backlog does not count messages that
        can never go. Returns how many pending deliveries were cancelled."""
        await self.session.execute(
            update(Subscriber)
            .where(Subscriber.id == subscriber_id)
            .values(active=False, deactivated_reason=reason[:2000], updated_at=now)
        )
        result = await self.session.execute(
            update(Delivery)
            .where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.status == DeliveryStatus.PENDING,
            )
            .values(
                status=DeliveryStatus.CANCELLED,
                last_error=f"chat unreachable: {reason}"[:2000],
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def migrate_chat(self, subscriber_id: int, new_chat_id: int, now: datetime) -> bool:
        """A group became a supergroup, which Telegram gives a new chat id: the subscriber moves
        to it with everything that is its (subscriptions, settings, watched organisations,
        feedback, reminders, outbox rows, pending ones included). A subscriber registered under
        the new id meanwhile (a command sent in the supergroup first) is merged into this one:
        the group's own subscriptions and settings are kept, whatever only the newer one has is
        added (``_absorb``) and its row goes. Idempotent: a subscriber already at ``new_chat_id``
        stays as it is. False when there is no such subscriber."""
        row = await self.session.get(Subscriber, subscriber_id)
        if row is None:
            return False
        if row.chat_id != new_chat_id:
            other = await self._by_chat(new_chat_id)
            if other is not None and other.id != row.id:
                await self._absorb(other, into=row.id)
            row.chat_id = new_chat_id
        row.chat_type = "supergroup"  # the only chat a group migrates to
        row.active, row.deactivated_reason = True, None  # Telegram just told us the new id
        row.updated_at = now
        await self.session.flush()
        return True

    async def _absorb(self, other: Subscriber, *, into: int) -> None:
        """Move ``other``'s rows in every table that refers to subscribers over to ``into``,
        except those ``into`` already has under the same unique key (a theme it follows, an
        item it was sent, its verdict on it…), then delete ``other`` and, with it, them."""
        for table, owner, keys in _owned_tables():
            mine = table.alias("mine")
            clashes = [
                exists().where(mine.c[owner.name] == into, *(mine.c[c.name] == c for c in key))
                for key in keys
            ]
            await self.session.execute(
                update(table)
                .where(owner == other.id, *(~clash for clash in clashes))
                .values({owner.name: into})
                .execution_options(synchronize_session=False)
            )
        await self.session.execute(delete(Subscriber).where(Subscriber.id == other.id))
        self.session.expunge(other)

    async def _update(
        self, subscriber_id: int, now: datetime, change: Callable[[Subscriber], None]
    ) -> SubscriberView:
        """Apply a settings change; the digest schedule is recomputed by the next digest tick."""
        row = await self.session.get(Subscriber, subscriber_id)
        if row is None:
            msg = f"subscriber {subscriber_id} does not exist"
            raise LookupError(msg)
        change(row)
        row.next_digest_at = None
        row.updated_at = now
        await self.session.flush()
        return view(row)

    async def set_digest(
        self,
        subscriber_id: int,
        *,
        mode: str,
        digest_time: str | None,
        weekday: int | None,
        now: datetime,
        topic_id: int | None = None,
    ) -> SubscriberView:
        """The digest schedule, and the forum topic the digest goes to (None: the chat)."""

        def change(row: Subscriber) -> None:
            row.digest_mode, row.digest_time, row.digest_weekday = mode, digest_time, weekday
            row.digest_topic_id = topic_id

        return await self._update(subscriber_id, now, change)

    async def set_timezone(self, subscriber_id: int, zone: str, now: datetime) -> SubscriberView:
        def change(row: Subscriber) -> None:
            row.timezone = zone

        return await self._update(subscriber_id, now, change)

    async def set_instant_alerts(
        self, subscriber_id: int, which: str, now: datetime
    ) -> SubscriberView:
        """``all``: every match alerts at once; ``sure``: only the sure ones
        (``models.alerts``, rule 3)."""
        if which not in INSTANT_CHOICES:
            msg = f"instant alerts must be one of {', '.join(INSTANT_CHOICES)}, not {which!r}"
            raise ValueError(msg)

        def change(row: Subscriber) -> None:
            row.instant_alerts = which

        return await self._update(subscriber_id, now, change)

    async def set_muted_until(
        self, subscriber_id: int, until: datetime | None, now: datetime
    ) -> SubscriberView:
        def change(row: Subscriber) -> None:
            row.muted_until = until

        return await self._update(subscriber_id, now, change)

    async def set_quiet_hours(
        self, subscriber_id: int, window: str | None, now: datetime
    ) -> SubscriberView:
        """``window`` is ``HH:MM-HH:MM`` in the chat's time zone (``models.localtime``), or
        None for none."""
        if window is not None and parse_quiet_hours(window) is None:
            msg = f"quiet hours must be HH:MM-HH:MM, not {window!r}"
            raise ValueError(msg)

        def change(row: Subscriber) -> None:
            row.quiet_hours = window

        return await self._update(subscriber_id, now, change)

    # ------------------------------------------------------------ roles

    async def role_of(self, user_id: int) -> str:
        """The role granted in chat to a user (through their private chat's row)."""
        role = await self.session.scalar(
            select(Subscriber.role).where(
                Subscriber.chat_id == user_id, Subscriber.chat_type == PRIVATE
            )
        )
        return role if role in (ROLE_EDITOR, ROLE_ADMIN) else ROLE_SUBSCRIBER

    async def grant_editor(self, user_id: int, now: datetime) -> str | None:
        """Make a user an editor; returns their role before (None: unknown so far, a row is
        kept for them until they start the bot)."""
        row = await self._by_chat(user_id)
        if row is None:
            self.session.add(
                Subscriber(
                    chat_id=user_id,
                    chat_type=PRIVATE,
                    user_id=user_id,
                    role=ROLE_EDITOR,
                    active=False,
                    deactivated_reason="has not started the bot yet",
                    created_at=now,
                    updated_at=now,
                )
            )
            await self.session.flush()
            return None
        before = row.role
        row.role, row.updated_at = ROLE_EDITOR, now
        await self.session.flush()
        return before

    async def revoke_editor(self, user_id: int, now: datetime) -> str | None:
        """Take the editor role back; returns the role before, or None if not an editor."""
        row = await self._by_chat(user_id)
        if row is None or row.role == ROLE_SUBSCRIBER:
            return None
        before = row.role
        row.role, row.updated_at = ROLE_SUBSCRIBER, now
        await self.session.flush()
        return before

    async def admin_chats(self, admin_ids: Collection[int]) -> dict[int, str]:
        """The private chats of these admins that started the bot: subscriber id → zone."""
        if not admin_ids:
            return {}
        admins = list(admin_ids)
        rows = await self.session.execute(
            select(Subscriber.id, Subscriber.timezone).where(
                Subscriber.active.is_(True),
                Subscriber.chat_type == PRIVATE,
                or_(Subscriber.chat_id.in_(admins), Subscriber.user_id.in_(admins)),
            )
        )
        return {int(sid): str(zone) for sid, zone in rows.all()}

    async def active_ids(self) -> list[int]:
        rows = await self.session.scalars(select(Subscriber.id).where(Subscriber.active.is_(True)))
        return list(rows.all())

    # ------------------------------------------------------------ subscriptions

    async def subscriptions(self, subscriber_id: int) -> list[SubscriptionView]:
        """The chat's subscriptions to enabled themes, by slug."""
        result = await self.session.execute(
            select(Theme.slug, Subscription.mode, Subscription.topic_id, Subscription.through_quiet)
            .join(Theme, Theme.id == Subscription.theme_id)
            .where(Subscription.subscriber_id == subscriber_id, Theme.enabled.is_(True))
            .order_by(Theme.slug)
        )
        return [SubscriptionView(*row) for row in result.all()]

    async def subscribed_theme_ids(self, subscriber_id: int) -> set[int]:
        rows = await self.session.scalars(
            select(Subscription.theme_id).where(Subscription.subscriber_id == subscriber_id)
        )
        return set(rows.all())

    async def subscribe(
        self,
        subscriber_id: int,
        theme_id: int,
        mode: str,
        now: datetime,
        *,
        topic_id: int | None = None,
    ) -> bool:
        """Follow a theme, its alerts going to forum topic ``topic_id`` (None: the chat
        itself); False when already following it."""
        existing = await self._subscription(subscriber_id, theme_id)
        if existing is not None:
            return False
        self.session.add(
            Subscription(
                subscriber_id=subscriber_id,
                theme_id=theme_id,
                mode=mode,
                topic_id=topic_id,
                created_at=now,
            )
        )
        await self.session.flush()
        return True

    async def route(self, subscriber_id: int, theme_id: int, topic_id: int | None) -> bool:
        """Send a followed theme's alerts to forum topic ``topic_id`` (None: the chat itself);
        False when that is where they go already, or the theme is not followed."""
        row = await self._subscription(subscriber_id, theme_id)
        if row is None or row.topic_id == topic_id:
            return False
        row.topic_id = topic_id
        await self.session.flush()
        return True

    async def let_through_quiet(self, subscriber_id: int, theme_ids: Collection[int]) -> None:
        """The chat's quiet hours let these themes' alerts through, and only these."""
        await self.session.execute(
            update(Subscription)
            .where(Subscription.subscriber_id == subscriber_id)
            .values(through_quiet=Subscription.theme_id.in_(list(theme_ids)))
            .execution_options(synchronize_session=False)
        )

    async def unroute_topic(self, subscriber_id: int, topic_id: int) -> list[str]:
        """A forum topic is gone or closed: the themes routed to it go to the chat itself.
        Returns their slugs."""
        slugs = await self.session.scalars(
            select(Theme.slug)
            .join(Subscription, Subscription.theme_id == Theme.id)
            .where(Subscription.subscriber_id == subscriber_id, Subscription.topic_id == topic_id)
            .order_by(Theme.slug)
        )
        found = list(slugs.all())
        if found:
            await self.session.execute(
                update(Subscription)
                .where(
                    Subscription.subscriber_id == subscriber_id,
                    Subscription.topic_id == topic_id,
                )
                .values(topic_id=None)
                .execution_options(synchronize_session=False)
            )
        return found

    async def unsubscribe(self, subscriber_id: int, theme_id: int, now: datetime) -> bool:
        """Stop following a theme; an alert or update queued for the chat (held by quiet hours,
        say) because of it, none of whose items matched a theme the chat still follows, is
        cancelled. Summaries of several events and reminders still go."""
        result = await self.session.execute(
            delete(Subscription)
            .where(Subscription.subscriber_id == subscriber_id, Subscription.theme_id == theme_id)
            .returning(Subscription.id)
        )
        if not result.scalars().all():
            return False
        followed = select(Subscription.theme_id).where(Subscription.subscriber_id == subscriber_id)

        folded = aliased(Delivery)

        def matched(themes: Select[int] | Collection[int]) -> ColumnElement[bool]:
            """An item the row carries matched ``themes``: its own, one folded into it (the
            event's other items), or, for an update, any item of its event."""
            by_item = select(ItemTheme.item_id).where(
                ItemTheme.item_id == Delivery.item_id, ItemTheme.theme_id.in_(themes)
            )
            by_folded = (
                select(folded.id)
                .join(ItemTheme, ItemTheme.item_id == folded.item_id)
                .where(
                    folded.subscriber_id == subscriber_id,
                    folded.status == DeliveryStatus.FOLDED,
                    folded.payload["folded_into"].as_string() == Delivery.dedupe_key,
                    ItemTheme.theme_id.in_(themes),
                )
            )
            by_event = (
                select(ItemEvent.item_id)
                .join(ItemTheme, ItemTheme.item_id == ItemEvent.item_id)
                .where(ItemEvent.event_id == Delivery.event_id, ItemTheme.theme_id.in_(themes))
            )
            return or_(
                by_item.exists(),
                by_folded.exists(),
                and_(Delivery.item_id.is_(None), by_event.exists()),
            )

        await self.session.execute(
            update(Delivery)
            .where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.lease_owner.is_(None),
                Delivery.kind.in_([DeliveryKind.ALERT, DeliveryKind.UPDATE]),
                matched([theme_id]),
                ~matched(followed),
            )
            .values(
                status=DeliveryStatus.CANCELLED,
                last_error="the chat stopped following its theme",
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return True

    async def set_mode(self, subscriber_id: int, theme_id: int, mode: str) -> bool:
        """Switch a subscription between instant and digest; False when not subscribed."""
        row = await self._subscription(subscriber_id, theme_id)
        if row is None:
            return False
        row.mode = mode
        await self.session.flush()
        return True

    async def audience(
        self, theme_ids: Sequence[int]
    ) -> tuple[dict[int, SubscriberInfo], list[SubscriptionInfo]]:
        """The active subscribers of these themes and their subscriptions (for planning)."""
        if not theme_ids:
            return {}, []
        pairs = (
            await self.session.execute(
                select(Subscription, Subscriber)
                .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
                .where(Subscription.theme_id.in_(list(theme_ids)), Subscriber.active.is_(True))
            )
        ).all()
        subscribers = {s.id: _info(s) for _, s in pairs}
        subscriptions = [
            SubscriptionInfo(
                sub.subscriber_id, sub.theme_id, sub.mode, sub.topic_id, sub.through_quiet
            )
            for sub, _ in pairs
        ]
        return subscribers, subscriptions

    async def infos(self, subscriber_ids: Sequence[int]) -> dict[int, SubscriberInfo]:
        """The active ones of these subscribers, as planning sees them."""
        found: dict[int, SubscriberInfo] = {}
        for start in range(0, len(subscriber_ids), 500):
            rows = await self.session.scalars(
                select(Subscriber).where(
                    Subscriber.id.in_(list(subscriber_ids[start : start + 500])),
                    Subscriber.active.is_(True),
                )
            )
            for s in rows.all():
                found[s.id] = _info(s)
        return found

    # ------------------------------------------------------------ digests

    async def unscheduled_digests(self) -> list[DigestDue]:
        """Active digest subscribers whose next digest time is not computed yet."""
        rows = (
            await self.session.scalars(
                select(Subscriber).where(
                    Subscriber.active.is_(True),
                    Subscriber.digest_mode.in_(DIGEST_MODES),
                    Subscriber.next_digest_at.is_(None),
                )
            )
        ).all()
        return [_due(r) for r in rows]

    async def claim_due_digests(self, now: datetime, limit: int) -> list[DigestDue]:
        """Up to ``limit`` subscribers whose digest is due (``SKIP LOCKED`` on PostgreSQL: the
        rows stay locked to this transaction, so two workers never build the same one)."""
        rows = (
            await self.session.scalars(
                select(Subscriber)
                .where(
                    Subscriber.active.is_(True),
                    Subscriber.digest_mode.in_(DIGEST_MODES),
                    Subscriber.next_digest_at.is_not(None),
                    Subscriber.next_digest_at <= now,
                )
                .order_by(Subscriber.next_digest_at, Subscriber.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        return [_due(r) for r in rows]

    async def schedule_digest(
        self,
        subscriber_id: int,
        *,
        next_at: datetime | None,
        now: datetime,
        done: datetime | None = None,
        expected: datetime | None = None,
    ) -> None:
        """Set the next digest time; with ``done``, record the digest of that period as built
        (only while the schedule is still ``expected``: a settings change in between wins)."""
        stmt = update(Subscriber).where(Subscriber.id == subscriber_id)
        values: dict[str, object] = {"next_digest_at": next_at}
        if done is not None:
            stmt = stmt.where(Subscriber.next_digest_at == expected)
            values.update(last_digest_at=done, updated_at=now)
        await self.session.execute(
            stmt.values(**values).execution_options(synchronize_session=False)
        )

    async def digest_themes(self, subscriber_id: int) -> dict[int, str]:
        """The enabled themes a subscriber follows: id → title."""
        rows = (
            await self.session.execute(
                select(Theme.id, Theme.title)
                .join(Subscription, Subscription.theme_id == Theme.id)
                .where(Subscription.subscriber_id == subscriber_id, Theme.enabled.is_(True))
            )
        ).all()
        return {row.id: row.title for row in rows}

    # ------------------------------------------------------------ helpers

    async def _by_chat(self, chat_id: int) -> Subscriber | None:
        return await self.session.scalar(select(Subscriber).where(Subscriber.chat_id == chat_id))

    async def _subscription(self, subscriber_id: int, theme_id: int) -> Subscription | None:
        return await self.session.scalar(
            select(Subscription).where(
                Subscription.subscriber_id == subscriber_id, Subscription.theme_id == theme_id
            )
        )


def _owned_tables() -> list[tuple[Table, Column[Any], list[list[Column[Any]]]]]:
    """Every table with a column referring to ``subscribers.id``: the table, that column, and
    the other columns of each unique key it is part of (read from the schema, so a table added
    later is moved with the rest)."""
    target = Subscriber.__table__.c.id
    owned = []
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column is not target:
                continue
            owner = fk.parent
            uniques = [
                list(c.columns)
                for c in table.constraints
                if isinstance(c, UniqueConstraint) and c.contains_column(owner)
            ] + [
                list(i.columns)
                for i in table.indexes
                if i.unique and any(col is owner for col in i.columns)
            ]
            keys = [[col for col in unique if col is not owner] for unique in uniques]
            owned.append((table, owner, keys))
    return owned


def _info(row: Subscriber) -> SubscriberInfo:
    """A subscriber as alert planning sees it."""
    return SubscriberInfo(
        id=row.id,
        chat_id=row.chat_id,
        timezone=row.timezone,
        quiet_hours=row.quiet_hours,
        muted_until=row.muted_until,
        active=row.active,
        digest=row.digest_mode in DIGEST_MODES,
        sure_only=row.instant_alerts == INSTANT_SURE,
    )


def view(row: Subscriber) -> SubscriberView:
    return SubscriberView(
        id=row.id,
        chat_id=row.chat_id,
        chat_type=row.chat_type,
        user_id=row.user_id,
        title=row.title,
        role=row.role,
        timezone=row.timezone,
        digest_mode=row.digest_mode,
        digest_time=row.digest_time,
        digest_weekday=row.digest_weekday,
        muted_until=row.muted_until,
        quiet_hours=row.quiet_hours,
        active=row.active,
        instant_alerts=row.instant_alerts,
        digest_topic_id=row.digest_topic_id,
    )


def _due(row: Subscriber) -> DigestDue:
    return DigestDue(
        subscriber_id=row.id,
        timezone=row.timezone,
        mode=row.digest_mode,
        digest_time=row.digest_time,
        weekday=row.digest_weekday,
        send_empty=row.digest_send_empty,
        due=row.next_digest_at or row.updated_at,
        last_digest_at=row.last_digest_at,
        topic=row.digest_topic_id,
    )
