"""Deadlines as messages and as a calendar: the reminder message (Telegram HTML) and the
``.ics`` file ``/upcoming`` sends (RFC 5545, built with the icalendar library). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from icalendar import Alarm, Calendar, Event

from delivery.render import fact_lines
from delivery.telegram_html import clip, esc, link
from models.outbox import OutgoingMessage, html_message
from models.reminders import LABELS, LEADS
from models.views import Deadline, ItemRow

PRODID = "-//PolicyWatch//deadlines//EN"


def _when(days: int) -> str:
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    return f"in {days} days"


def render_reminder(item: ItemRow, what: str, on: date, days_left: int) -> OutgoingMessage:
    """⏰ "Comments close in 7 days (2026-10-09)" and the document, with its facts."""
    label = LABELS.get(what, what)
    head = f"⏰ <b>{esc(label.capitalize())} {_when(days_left)}</b> ({on.isoformat()})"
    lines = [head, f"<b>{link(clip(item.title, 300), item.url)}</b>", esc(item.source_name)]
    lines.extend(fact_lines(item.fields))
    return html_message("\n".join(lines))


def deadlines_ics(deadlines: Sequence[Deadline], *, now: datetime) -> bytes:
    """An all-day event per date, with alarms 7 days and 1 day before."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "PolicyWatch deadlines")
    for deadline in deadlines:
        event = Event()
        what = "effective" if deadline.what == "effective" else "comments"
        event.add("uid", f"{deadline.item.id}-{what}-{deadline.on.isoformat()}@policywatch")
        event.add("dtstamp", now)
        event.add("dtstart", deadline.on)
        event.add("dtend", deadline.on + timedelta(days=1))
        event.add("summary", f"{LABELS[what].capitalize()}: {clip(deadline.item.title, 200)}")
        if deadline.item.url:
            event.add("url", deadline.item.url)
        facts = [deadline.item.source_name]
        if citation := deadline.item.fields.get("citation"):
            facts.append(citation)
        if deadline.item.url:
            facts.append(deadline.item.url)
        event.add("description", "\n".join(facts))
        for lead in LEADS:
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", f"{LABELS[what]} {_when(lead)}")
            alarm.add("trigger", timedelta(days=-lead, hours=9))
            event.add_component(alarm)
        calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data
