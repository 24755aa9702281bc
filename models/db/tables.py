"""The schema, as typed SQLAlchemy 2 mappings. Changes go through alembic migrations only.

Every timestamp is ``UTCDateTime`` (aware UTC in Python). Constraint names follow the naming
convention below so that batch mode on SQLite and ALTERs on PostgreSQL can find them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from models.db.types import BigIntPK, JSONType, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), server_default=func.now())


class Source(Base):
    """A polled source: its declaration, its conditional-GET state, its schedule and health."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=true())
    interval_seconds: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16), server_default=text("'config'"))
    # conditional GET and API cursors
    etag: Mapped[str | None] = mapped_column(String(512))
    last_modified: Mapped[str | None] = mapped_column(String(128))
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # schedule and claims
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # health
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_new_item_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    items_last_poll: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # polls succeed but nothing new for longer than expected (models.schedule.quiet_change)
    quiet_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "digest": its matches wait for the digest of every chat that has one (a noisy feed)
    alerts: Mapped[str] = mapped_column(String(8), server_default=text("'instant'"))
    # themes (slugs) whose matches from this source wait for digests, the source being instant
    digest_themes: Mapped[list[Any]] = mapped_column(JSONType, server_default=text("'[]'"))
    # themes whose unsure matches alert at once whatever feedback says (/source trust)
    trusted_themes: Mapped[list[Any]] = mapped_column(JSONType, server_default=text("'[]'"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    __table_args__ = (
        CheckConstraint("origin IN ('config', 'chat')", name="origin"),
        CheckConstraint("interval_seconds > 0", name="interval_positive"),
        CheckConstraint("alerts IN ('instant', 'digest')", name="alerts"),
    )


class Item(Base):
    """One stored item; ``(source_id, external_id)`` is its identity."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    source_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("sources.id", ondelete="CASCADE"), index=True
    )
    external_id: Mapped[str] = mapped_column(String(512))
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, server_default=text("''"))
    language: Mapped[str | None] = mapped_column(String(8))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    published_at_guessed: Mapped[bool] = mapped_column(Boolean, server_default=false())
    published_date_only: Mapped[bool] = mapped_column(Boolean, server_default=false())
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    content_hash: Mapped[str] = mapped_column(String(64))
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    from_first_poll: Mapped[bool] = mapped_column(Boolean, server_default=false())

    __table_args__ = (UniqueConstraint("source_id", "external_id"),)


class Event(Base):
    """One real-world happening: the items of every source and language that report it.

    ``merged_into`` points at the event an editor merged this one into (it keeps no items).
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    item_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    merged_into: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("events.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class ItemEvent(Base):
    """Which event an item belongs to, why (``reason``), and the signature it was read into."""

    __tablename__ = "item_events"

    item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    manual: Mapped[bool] = mapped_column(Boolean, server_default=false())
    signature: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ItemKey(Base):
    """The index event grouping looks candidates up by: an item's hard keys and anchors, with
    the time of the item (so a lookup reads a time window of one key, never the table)."""

    __tablename__ = "item_keys"

    item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_item_keys_key_at", "key", "at"),)


class Theme(Base):
    """A tracked theme (the watchlist lives in ``theme_rules``)."""

    __tablename__ = "themes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(48), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default=text("''"))
    priority: Mapped[str] = mapped_column(String(16), server_default=text("'instant'"))
    origin: Mapped[str] = mapped_column(String(16), server_default=text("'config'"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=true())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    # Editors can turn the learned second opinion off per theme (the rules stay).
    model_enabled: Mapped[bool] = mapped_column(Boolean, server_default=true())

    __table_args__ = (
        CheckConstraint("priority IN ('instant', 'digest')", name="priority"),
        CheckConstraint("origin IN ('config', 'chat')", name="origin"),
    )


class ThemeRule(Base):
    """One watchlist entry of a theme, as rule text (a bare term is the simplest rule).

    A rule removed from the chat is kept disabled with origin 'chat' (a tombstone), so that
    re-seeding from the config file does not bring it back.
    """

    __tablename__ = "theme_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    theme_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("themes.id", ondelete="CASCADE"), index=True
    )
    rule: Mapped[str] = mapped_column(String(500))
    origin: Mapped[str] = mapped_column(String(16), server_default=text("'config'"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=true())
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        UniqueConstraint("theme_id", "rule"),
        CheckConstraint("origin IN ('config', 'chat')", name="origin"),
    )


class ItemTheme(Base):
    """Which item matched which theme, with the matched terms and fields for the explanation."""

    __tablename__ = "item_themes"

    item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    theme_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("themes.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    score: Mapped[float] = mapped_column(Float, server_default=text("0"))
    matched: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    matched_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # Which layer matched (rules, model or both), the rules that fired, and the model's
    # version, probability and nearest labelled headline ({"version", "probability",
    # "similar_to"}) when it ran.
    layer: Mapped[str] = mapped_column(String(8), server_default=text("'rules'"))
    rules: Mapped[list[Any] | None] = mapped_column(JSONType)
    model: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    __table_args__ = (CheckConstraint("layer IN ('rules', 'model', 'both')", name="layer"),)


class ThemeModel(Base):
    """A version of a theme's learned model (``models.learned``), as JSON: never pickle.

    One version per theme is ``active``; older ones stay for rollback. ``origin`` is
    ``shipped`` (the default built from the shipped data) or ``trained`` (by this install).
    """

    __tablename__ = "theme_models"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    theme_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("themes.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    model: Mapped[dict[str, Any]] = mapped_column(JSONType)
    neighbour_index: Mapped[str | None] = mapped_column(String(80), index=True)

    __table_args__ = (
        UniqueConstraint("theme_id", "version"),
        CheckConstraint("origin IN ('shipped', 'trained')", name="origin"),
    )


class NeighbourIndexRow(Base):
    """A training run's neighbour index (``models.neighbours``: its own binary form, never
    pickle), by digest; kept while a model version reads it (``theme_models.neighbour_index``)."""

    __tablename__ = "neighbour_indexes"

    digest: Mapped[str] = mapped_column(String(80), primary_key=True)
    encoder: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Feedback(Base):
    """A subscriber's verdict on an alerted item for one theme: ``up`` (relevant), ``down``
    (not relevant) or ``wrong`` (wrong theme). One per (subscriber, item, theme); pressing
    another button replaces it. Shown to editors only as counts."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("items.id", ondelete="CASCADE"), index=True
    )
    theme_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("themes.id", ondelete="CASCADE"), index=True
    )
    verdict: Mapped[str] = mapped_column(String(8))
    # whether the match judged was sure when its alert was planned (None: not known)
    sure: Mapped[bool | None] = mapped_column(Boolean)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    __table_args__ = (
        UniqueConstraint("subscriber_id", "item_id", "theme_id"),
        CheckConstraint("verdict IN ('up', 'down', 'wrong')", name="verdict"),
    )


class Subscriber(Base):
    """A Telegram chat that receives alerts (private chat, group or channel)."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    chat_type: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    title: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), server_default=text("'subscriber'"))
    timezone: Mapped[str] = mapped_column(String(64), server_default=text("'UTC'"))
    digest_mode: Mapped[str] = mapped_column(String(8), server_default=text("'off'"))
    digest_time: Mapped[str | None] = mapped_column(String(5))
    digest_weekday: Mapped[int | None] = mapped_column(SmallInteger)
    digest_send_empty: Mapped[bool] = mapped_column(Boolean, server_default=false())
    digest_topic_id: Mapped[int | None] = mapped_column(BigInteger)  # forum topic; None: chat
    next_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    quiet_hours: Mapped[str | None] = mapped_column(String(11))
    muted_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "all": every match alerts at once; "sure": only matches the watchlist and the learned
    # model agree on (the others wait for the digest, when there is one)
    instant_alerts: Mapped[str] = mapped_column(String(8), server_default=text("'all'"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    deactivated_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    __table_args__ = (
        CheckConstraint("role IN ('subscriber', 'editor', 'admin')", name="role"),
        CheckConstraint("digest_mode IN ('off', 'daily', 'weekly')", name="digest_mode"),
        CheckConstraint("instant_alerts IN ('all', 'sure')", name="instant_alerts"),
        CheckConstraint(
            "digest_weekday IS NULL OR (digest_weekday >= 0 AND digest_weekday <= 6)",
            name="digest_weekday",
        ),
    )


class Subscription(Base):
    """A subscriber following a theme, instantly or in the digest."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    theme_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("themes.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[str] = mapped_column(String(8), server_default=text("'instant'"))
    # the forum topic (message_thread_id) the theme's alerts go to; None: the chat itself
    topic_id: Mapped[int | None] = mapped_column(BigInteger)
    # the theme's alerts come at any hour, the chat's quiet hours or not
    through_quiet: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        UniqueConstraint("subscriber_id", "theme_id"),
        CheckConstraint("mode IN ('instant', 'digest')", name="mode"),
    )


class Delivery(Base):
    """The outbox: one planned message to one chat, and what became of it.

    ``UNIQUE(subscriber_id, item_id)`` makes a second alert of one item to one chat impossible;
    ``UNIQUE(subscriber_id, dedupe_key)`` does the same for digests, summaries and broadcasts.
    ``kind`` is a ``models.outbox.DeliveryKind``, ``status`` a ``DeliveryStatus`` ("folded" rows
    are items carried by a burst summary: never sent, they keep the item unique per chat), and
    ``payload`` an ``OutboxPayload``.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    item_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("items.id", ondelete="SET NULL"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("events.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_message_id: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    __table_args__ = (
        UniqueConstraint("subscriber_id", "item_id"),
        UniqueConstraint("subscriber_id", "dedupe_key"),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )


class AuditLog(Base):
    """Who changed which watchlist, theme, source or role, when, and from what to what."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_key: Mapped[str] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class CslEntryRow(Base):
    """One screening-list entry as last seen: the list kept compactly, one row per entry (not
    one copy per poll). ``removed_at`` is set when it left the list (the row stays, for
    ``/entity`` history); ``data`` is the ``models.csl.CslEntry`` as JSON."""

    __tablename__ = "csl_entries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    source_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("sources.id", ondelete="CASCADE"), index=True
    )
    entry_id: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    names: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("source_id", "entry_id"),)


class CslChangeRow(Base):
    """One change of one entry seen by one poll: ``before`` is the entry as it was (None for an
    addition); the entry after is the next change's ``before`` or the current row."""

    __tablename__ = "csl_changes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    source_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sources.id", ondelete="CASCADE"))
    entry_id: Mapped[str] = mapped_column(String(128))
    change: Mapped[str] = mapped_column(String(16))
    columns: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    item_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("items.id", ondelete="SET NULL"), index=True
    )

    __table_args__ = (
        CheckConstraint("change IN ('added', 'removed', 'changed')", name="change"),
        Index("ix_csl_changes_source_id_entry_id", "source_id", "entry_id"),
    )


class WatchedOrg(Base):
    """An organisation watched by a theme (editors) or by one subscriber, with its aliases
    (English and Chinese): list changes and items naming it are alerts."""

    __tablename__ = "watched_orgs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    theme_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("themes.id", ondelete="CASCADE"), index=True
    )
    subscriber_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        UniqueConstraint("theme_id", "name"),
        UniqueConstraint("subscriber_id", "name"),
        CheckConstraint("(theme_id IS NULL) <> (subscriber_id IS NULL)", name="one_owner"),
    )


class KnownOrgNames(Base):
    """A group of names of one organisation, added by an editor (``/names add``): it joins the
    shipped organisation or earlier group it shares a name with (``models.orgnames``); or a
    name an editor took out of every organisation (``/names drop``, kind ``drop``)."""

    __tablename__ = "known_org_names"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    names: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    # "same": the names are one organisation's; "drop": the one name is no organisation's
    kind: Mapped[str] = mapped_column(String(8), server_default=text("'same'"))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (CheckConstraint("kind IN ('same', 'drop')", name="kind"),)


class Reminder(Base):
    """A reminder of a document's date (effective, comments close) to one subscriber, ``lead_days``
    before it: a work queue claimed by the reminder tick. ``UNIQUE`` makes a second reminder of
    the same date, lead and chat impossible; the outbox row's dedupe key does it again."""

    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("items.id", ondelete="CASCADE"), index=True
    )
    what: Mapped[str] = mapped_column(String(16))
    on_date: Mapped[date] = mapped_column(Date)
    lead_days: Mapped[int] = mapped_column(SmallInteger)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    __table_args__ = (
        UniqueConstraint("subscriber_id", "item_id", "what", "on_date", "lead_days"),
        CheckConstraint("what IN ('effective', 'comments')", name="what"),
        CheckConstraint("status IN ('pending', 'sent', 'skipped', 'cancelled')", name="status"),
        Index("ix_reminders_status_due_at", "status", "due_at"),
    )
