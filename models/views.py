"""Plain, frozen views of stored rows: what repositories hand to the pipeline, the bot and the
renderers (ORM rows never leave ``models.db``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from models.csl import CslEntry
from models.fields import ItemFields


@dataclass(frozen=True, slots=True)
class SubscriberView:
    """A chat that receives alerts, with its settings."""

    id: int
    chat_id: int
    chat_type: str
    user_id: int | None
    title: str | None
    role: str
    timezone: str
    digest_mode: str
    digest_time: str | None
    digest_weekday: int | None
    muted_until: datetime | None
    quiet_hours: str | None
    active: bool
    instant_alerts: str = "all"  # or "sure" (models.alerts, rule 3)
    digest_topic_id: int | None = None  # the forum topic the digest goes to; None: the chat

    @property
    def is_group(self) -> bool:
        return self.chat_type in {"group", "supergroup", "channel"}


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """A theme a chat follows: instantly or in the digest, and in which forum topic."""

    slug: str
    mode: str
    topic_id: int | None = None  # None: the chat itself (a forum's General topic)
    through_quiet: bool = False  # its alerts come during the chat's quiet hours too


@dataclass(frozen=True, slots=True)
class ThemeView:
    id: int
    slug: str
    title: str
    description: str
    priority: str
    enabled: bool
    origin: str


@dataclass(frozen=True, slots=True)
class RuleView:
    id: int
    theme_id: int
    rule: str
    enabled: bool
    origin: str


ThemeList = Literal["digest_themes", "trusted_themes"]  # a source's per-theme lists


@dataclass(frozen=True, slots=True)
class SourceView:
    """A source as the bot lists it: declaration and health."""

    id: int
    name: str
    kind: str
    url: str
    enabled: bool
    origin: str
    last_success_at: datetime | None
    last_new_item_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    alerts: str = "instant"  # or "digest": its matches wait for chats' digests
    quiet_since: datetime | None = None  # polls succeed, nothing new for longer than expected
    expected_within: timedelta | None = None  # how long it may go without a new item
    digest_themes: tuple[str, ...] = ()  # themes whose matches from it wait for digests
    trusted_themes: tuple[str, ...] = ()  # ... whose unsure ones alert whatever feedback says

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0


@dataclass(frozen=True, slots=True)
class ItemRow:
    """An item as a reply or a digest shows it."""

    id: int
    title: str
    url: str | None
    source_name: str
    source_kind: str
    published_at: datetime
    date_only: bool = False  # a date without a time (FR documents, CAC lists), or a guess
    themes: tuple[str, ...] = ()
    fields: ItemFields = field(default_factory=ItemFields)


@dataclass(frozen=True, slots=True)
class Deadline:
    """A date in the coming days: an effective date or a comment deadline of a document."""

    on: date
    what: str  # "effective" or "comments close"
    item: ItemRow


@dataclass(frozen=True, slots=True)
class Stats:
    items: int
    items_last_day: int
    matches: int
    deliveries: dict[str, int]
    subscribers_active: int
    subscribers_inactive: int
    subscriptions: int
    sources_enabled: int
    sources_failing: int


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    pending: int
    oldest_seconds: float  # age of the oldest pending delivery (0 when none)


@dataclass(frozen=True, slots=True)
class DryRunExample:
    item_id: int
    title: str
    published_at: datetime
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DryRunResult:
    """How many of the last ``days`` days' items ``rule`` would match, with recent examples.

    ``new_to_theme`` counts the matched items the theme does not match already.
    """

    slug: str
    rule: str
    days: int
    items: int
    matched: int
    new_to_theme: int
    examples: tuple[DryRunExample, ...] = ()


@dataclass(frozen=True, slots=True)
class EventMember:
    """One item of an event, as a timeline or a source list shows it."""

    item_id: int
    title: str
    url: str | None
    source_name: str
    source_kind: str
    published_at: datetime
    date_only: bool
    language: str | None
    reason: str
    manual: bool = False
    fields: ItemFields = field(default_factory=ItemFields)


@dataclass(frozen=True, slots=True)
class EventView:
    """An event with its members, oldest first (the first one named it)."""

    id: int
    title: str
    first_at: datetime
    last_at: datetime
    members: tuple[EventMember, ...]

    @property
    def sources(self) -> tuple[str, ...]:
        """The sources that reported it, in the order they did (each once)."""
        return tuple(dict.fromkeys(m.source_name for m in self.members))


@dataclass(frozen=True, slots=True)
class EntityRecord:
    """A stored screening-list entry: where it is listed, since when, and whether it left."""

    id: int
    entry: CslEntry
    source_name: str
    first_seen_at: datetime
    changed_at: datetime
    removed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WatchedOrgView:
    """An organisation watched by a theme (``theme_slug``) or by one subscriber."""

    id: int
    name: str
    aliases: tuple[str, ...]
    theme_id: int | None = None
    theme_slug: str | None = None
    subscriber_id: int | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)
