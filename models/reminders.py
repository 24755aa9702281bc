"""Deadline reminders: when to remind whom of a document's effective date or comment deadline.
Pure.

A subscriber of a theme that matched a regulatory document with a date (a Federal Register
document's effective date or comment deadline; a CAC measure's own effective date or a
consultation's deadline) gets a reminder ``LEADS`` days before each of its dates (7 days and
1 day), at ``REMIND_AT`` (09:00) in their own zone.
A reminder whose moment passed more than ``STALE_AFTER`` ago when it is planned is not planned
(a document published 3 days before its date gets the 1-day reminder only); one that is due
when fewer days are left than its lead (the service was down) says how many days are left, and
a 7-day reminder due with one day or less to go is dropped for the 1-day one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from models.localtime import load_zone, local_datetime

LEADS = (7, 1)
REMIND_AT = time(9, 0)
STALE_AFTER = timedelta(hours=12)
What = Literal["effective", "comments"]
FIELDS: tuple[tuple[What, Literal["effective_on", "comments_close_on"]], ...] = (
    ("effective", "effective_on"),
    ("comments", "comments_close_on"),
)
LABELS: dict[str, str] = {"effective": "takes effect", "comments": "comments close"}


@dataclass(frozen=True, slots=True)
class DatedDocument:
    """A stored document with a date to remind of, and the themes it matched."""

    item_id: int
    what: What
    on: date
    theme_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PlannedReminder:
    subscriber_id: int
    item_id: int
    what: What
    on: date
    lead_days: int
    due_at: datetime


def due_at(on: date, lead_days: int, zone: str | None) -> datetime:
    """``REMIND_AT`` local time, ``lead_days`` before ``on``, in ``zone``, as aware UTC."""
    tz = load_zone(zone)
    day = datetime.combine(on - timedelta(days=lead_days), time(12), tzinfo=tz)
    return local_datetime(day, REMIND_AT, tz)


def plan_reminders(
    documents: Sequence[DatedDocument],
    audience: Mapping[int, Sequence[tuple[int, str]]],
    now: datetime,
) -> list[PlannedReminder]:
    """The reminders to keep for these documents; ``audience[theme_id]`` lists
    ``(subscriber_id, zone)`` of the theme's subscribers."""
    planned: dict[tuple[int, int, str, date, int], PlannedReminder] = {}
    for doc in documents:
        chats = {sid: zone for t in doc.theme_ids for sid, zone in audience.get(t, ())}
        for subscriber_id, zone in sorted(chats.items()):
            for lead in LEADS:
                when = due_at(doc.on, lead, zone)
                if when + STALE_AFTER < now:
                    continue
                key = (subscriber_id, doc.item_id, doc.what, doc.on, lead)
                planned[key] = PlannedReminder(
                    subscriber_id, doc.item_id, doc.what, doc.on, lead, when
                )
    return list(planned.values())


def days_left(on: date, zone: str | None, now: datetime) -> int:
    return (on - now.astimezone(load_zone(zone)).date()).days


def still_worth_sending(on: date, lead_days: int, zone: str | None, now: datetime) -> bool:
    """False when the date has passed, or a longer reminder is overtaken by a shorter one."""
    left = days_left(on, zone, now)
    shorter = [lead for lead in LEADS if lead < lead_days]
    return left >= 0 and not (shorter and left <= max(shorter))
