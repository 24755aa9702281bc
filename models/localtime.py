"""Subscriber-local time: zones, ``HH:MM`` times and quiet hours. Pure (standard library only).

Every input here comes from a chat and may be nonsense; nonsense is reported as ``None`` (or
UTC for a zone), never raised, so one bad subscriber row cannot stop a tick.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HHMM = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")


def load_zone(name: str | None, *, strict: bool = False) -> tzinfo:
    """The IANA zone called ``name``; UTC when it is empty.

    An unknown name is UTC too (a subscriber's stored zone must never stop a tick), unless
    ``strict``: then it is a ValueError (a source's declared zone is a configuration error, a
    chat's ``/timezone`` a usage error). Unknown includes a region's folder of zones
    ("America", "Europe"), which ``ZoneInfo`` fails to open as an OSError.
    """
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        if strict:
            msg = f"unknown time zone {name!r}"
            raise ValueError(msg) from exc
        return UTC


def zone_name(name: str | None) -> str:
    """The label of the zone ``load_zone(name)`` gives: the name, or "UTC" for a bad one."""
    zone = load_zone(name)
    return zone.key if isinstance(zone, ZoneInfo) else "UTC"


def parse_hhmm(text: str | None) -> time | None:
    """``'08:30'`` → 08:30; anything else → None."""
    if text is None:
        return None
    match = _HHMM.match(text)
    if match is None:
        return None
    return time(int(match.group(1)), int(match.group(2)))


def parse_quiet_hours(text: str | None) -> tuple[time, time] | None:
    """``'22:00-07:00'`` → (22:00, 07:00); a window may cross midnight. Bad or empty → None."""
    if not text or "-" not in text:
        return None
    start_text, _, end_text = text.partition("-")
    start, end = parse_hhmm(start_text), parse_hhmm(end_text)
    if start is None or end is None or start == end:
        return None
    return start, end


def local_datetime(day: datetime, at: time, zone: tzinfo) -> datetime:
    """``at`` on ``day``'s date in ``zone``, as aware UTC.

    A local time that does not exist (the spring-forward gap) is taken with the offset before
    the change, i.e. it lands just after the gap; an ambiguous one (fall back) is the first.
    """
    naive = datetime.combine(day.date(), at)
    return naive.replace(tzinfo=zone).astimezone(UTC)


def quiet_hours_end(
    quiet_hours: str | None, zone_name: str | None, now: datetime
) -> datetime | None:
    """When ``now`` falls in the subscriber's quiet hours, the UTC time they end; else None."""
    window = parse_quiet_hours(quiet_hours)
    if window is None:
        return None
    start, end = window
    zone = load_zone(zone_name)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        end_day = local
    else:  # crosses midnight
        inside = clock >= start or clock < end
        end_day = local + timedelta(days=1) if clock >= start else local
    if not inside:
        return None
    result = local_datetime(end_day, end, zone)
    return result if result > now else now
