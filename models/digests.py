"""Digests: when each subscriber's next digest is due, and what goes in it. Pure.

A digest is daily at a local time (``HH:MM``, default 08:00) or weekly on a weekday (0 = Monday)
at that time, in the subscriber's IANA zone, so it follows daylight saving time: a 08:00 digest
in New York is 13:00 UTC in winter and 12:00 UTC in summer. A local time that does not exist
on a spring-forward day is sent just after the gap; a repeated one on a fall-back day, once.

A digest covers the events matched since the previous digest, grouped by theme with counts
(an event is listed once, by its first item, with the other sources that reported it), and an
"upcoming" section: effective dates and comment deadlines in the next 7 days.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from models.alerts import is_sure
from models.localtime import load_zone, local_datetime, parse_hhmm
from models.views import ItemRow

DIGEST_MODES = ("daily", "weekly")
DEFAULT_DIGEST_TIME = time(8, 0)
UPCOMING_DAYS = 7
UPCOMING_FIELDS: tuple[tuple[Literal["effective_on", "comments_close_on"], str], ...] = (
    ("effective_on", "effective"),
    ("comments_close_on", "comments close"),
)


def next_digest_at(
    *,
    mode: str,
    digest_time: str | None,
    weekday: int | None,
    timezone: str | None,
    after: datetime,
) -> datetime | None:
    """The first digest time strictly after ``after`` (aware UTC), or None when digests are off."""
    if mode not in DIGEST_MODES:
        return None
    at = parse_hhmm(digest_time) or DEFAULT_DIGEST_TIME
    wanted_day = weekday if weekday is not None and 0 <= weekday <= 6 else 0
    zone = load_zone(timezone)
    local = after.astimezone(zone)
    for offset in range(9):
        day = local + timedelta(days=offset)
        if mode == "weekly" and day.weekday() != wanted_day:
            continue
        candidate = local_datetime(day, at, zone)
        if candidate > after:
            return candidate
    msg = "unreachable: a digest time always exists within 8 days"  # pragma: no cover
    raise AssertionError(msg)


def digest_period(mode: str) -> timedelta:
    return timedelta(days=7) if mode == "weekly" else timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One item one theme matched, and when."""

    item_id: int
    theme_id: int
    matched_at: datetime
    item: ItemRow
    event_id: int | None = None
    layer: str = "rules"  # which layers matched: rules, model or both
    similar_to: str | None = None  # the learned model alone matched: its nearest labelled headline

    @property
    def event(self) -> int:
        return self.event_id if self.event_id is not None else -self.item_id


@dataclass(frozen=True, slots=True)
class DigestGroup:
    """A theme's events: ``items`` holds each event's first item (newest event first), and
    ``others`` the event's other items, by the first one's id."""

    theme_id: int
    theme_title: str
    items: tuple[DigestEntry, ...]
    others: Mapping[int, tuple[DigestEntry, ...]] = field(default_factory=dict)
    # first items of the events no sure match put here (``models.alerts.is_sure``): a chat
    # with ``/alerts sure`` was not alerted to them, and the digest says so
    unsure: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class UpcomingDate:
    on: date
    what: str  # "effective" or "comments close"
    entry: DigestEntry


@dataclass(frozen=True, slots=True)
class Digest:
    since: datetime
    until: datetime
    groups: tuple[DigestGroup, ...]
    upcoming: tuple[UpcomingDate, ...]

    @property
    def event_count(self) -> int:
        return len({e.event for g in self.groups for e in g.items})

    @property
    def is_empty(self) -> bool:
        return not self.groups and not self.upcoming


def parse_fact_date(value: Any) -> date | None:
    """An ISO date (or datetime) string from an item's fields; anything else → None."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def build_digest(
    *,
    entries: Sequence[DigestEntry],
    theme_titles: Mapping[int, str],
    since: datetime,
    until: datetime,
    upcoming_candidates: Sequence[DigestEntry],
    timezone: str | None,
    judged: Collection[int] = (),
) -> Digest:
    """Group ``entries`` matched in ``(since, until]`` by theme (largest group first) and event
    (newest first, each listed by its first item), mark the events no sure match put there
    (``judged``: the themes a learned model judges), and list the effective dates and comment
    deadlines in the next 7 local days."""
    by_theme: dict[int, dict[int, dict[int, DigestEntry]]] = {}
    for entry in entries:
        if since < entry.matched_at <= until and entry.theme_id in theme_titles:
            events = by_theme.setdefault(entry.theme_id, {})
            events.setdefault(entry.event, {}).setdefault(entry.item_id, entry)
    groups = []
    for theme_id, events in by_theme.items():
        ordered = [
            sorted(found.values(), key=lambda e: (e.item.published_at, e.item_id))
            for found in events.values()
        ]
        ordered.sort(key=lambda found: (found[0].item.published_at, found[0].item_id), reverse=True)
        groups.append(
            DigestGroup(
                theme_id=theme_id,
                theme_title=theme_titles[theme_id],
                items=tuple(found[0] for found in ordered),
                others={found[0].item_id: tuple(found[1:]) for found in ordered if len(found) > 1},
                unsure=frozenset(
                    found[0].item_id
                    for found in ordered
                    if not any(is_sure(e.layer, theme_id in judged) for e in found)
                ),
            )
        )
    groups.sort(key=lambda g: (-len(g.items), g.theme_title))

    today = until.astimezone(load_zone(timezone)).date()
    horizon = today + timedelta(days=UPCOMING_DAYS)
    upcoming: dict[tuple[int, str], UpcomingDate] = {}
    for entry in upcoming_candidates:
        for key, label in UPCOMING_FIELDS:
            on = parse_fact_date(entry.item.fields.get(key))
            if on is not None and today <= on <= horizon:
                upcoming.setdefault((entry.item_id, label), UpcomingDate(on, label, entry))
    return Digest(
        since=since,
        until=until,
        groups=tuple(groups),
        upcoming=tuple(sorted(upcoming.values(), key=lambda u: (u.on, u.what, u.entry.item_id))),
    )
