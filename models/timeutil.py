"""Time helpers. Every datetime in PolicyWatch is timezone-aware UTC; ``now`` is a parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utcnow() -> datetime:
    """The current time, aware and in UTC. Only the shell calls this; the core takes ``now``."""
    return datetime.now(UTC)


def parse_duration(text: str | int | float) -> timedelta:
    """Parse ``30s``, ``15m``, ``1h``, ``2d``, ``1w`` or a number of seconds.

    >>> parse_duration("15m")
    datetime.timedelta(seconds=900)
    """
    if isinstance(text, bool):
        msg = f"not a duration: {text!r}"
        raise ValueError(msg)
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if match is None:
            msg = f"not a duration: {text!r} (use e.g. 30s, 15m, 1h, 2d or a number of seconds)"
            raise ValueError(msg)
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds <= 0:
        msg = f"a duration must be positive: {text!r}"
        raise ValueError(msg)
    try:
        return timedelta(seconds=seconds)
    except OverflowError:  # over 999,999,999 days: out of range is bad input, not a crash
        msg = f"not a duration: {text!r} is far too long"
        raise ValueError(msg) from None


def describe_duration(span: timedelta) -> str:
    """``3 days``, ``1 day``, ``12 hours``, ``45 minutes``: the largest whole unit a reader needs
    (two days or more in days, two hours or more in hours)."""
    seconds = max(0, int(span.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= 2 * size or (unit == "minute" and seconds >= size):
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
