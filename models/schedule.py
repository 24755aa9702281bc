"""When to poll a source next, and when its health changes. Pure: ``now`` and the jitter draw
are parameters.

Rules, in order:

1. After a success the next check is one interval away, spread by ±10 % jitter so sources
   declared together drift apart.
2. After a failure the delay doubles with each consecutive failure, starting at one interval
   (``interval · 2^(failures-1)``), capped at ``max(max_backoff, interval)`` so a slow source is
   never polled more often than declared and a broken one is still retried (never silently
   forever). "Equal jitter" draws the delay from its upper half.
3. A ``Retry-After`` (429/503) is honoured: the next check is never earlier than it asks,
   but a hostile value is clamped to one week.

Health has two sides. A source *fails* when its polls fail (``health_change``). A source whose
polls succeed can still be dead: the feed moved and the old URL serves a frozen copy, a list
page changed shape and still parses its old rows. So each source also has the time within
which new items are expected (Huginn's "expected update period": ``expect_new_within`` in its
options, else its kind's default), and it turns *quiet* when successful polls bring nothing
new for longer than that (``quiet_change``); admins hear it once, and again when new items come.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from models.timeutil import parse_duration

MAX_RETRY_AFTER = timedelta(days=7)
DEFAULT_MAX_BACKOFF = timedelta(hours=6)
EXPECT_OPTION = "expect_new_within"
# How long each kind may go without a new item before it is reported quiet: news feeds publish
# daily; BIS prints a few documents a month; the CAC's lists and the screening list change
# monthly or so. The demo source repeats itself and is never reported.
EXPECT_NEW_WITHIN: Mapping[str, timedelta] = {
    "rss": timedelta(days=3),
    "html_list": timedelta(days=14),
    "federal_register": timedelta(days=21),
    "public_inspection": timedelta(days=30),
    "cac": timedelta(days=30),
    "csl": timedelta(days=30),
}


def next_check_at(
    now: datetime,
    *,
    interval: timedelta,
    failures: int,
    jitter: float,
    retry_after: timedelta | None = None,
    max_backoff: timedelta = DEFAULT_MAX_BACKOFF,
) -> datetime:
    """The next time to poll a source that has now ``failures`` consecutive failures.

    ``jitter`` is a draw from [0, 1) (the shell passes ``random.random()``).
    """
    if not 0.0 <= jitter < 1.0:
        msg = f"jitter must be in [0, 1), not {jitter}"
        raise ValueError(msg)
    if failures <= 0:
        delay = interval * (0.9 + 0.2 * jitter)
    else:
        cap = max(max_backoff, interval)
        delay = backoff_delay(failures - 1, base=interval, cap=cap, jitter=jitter, spread=0.5)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return now + delay


def backoff_delay(
    attempt: int,
    *,
    base: timedelta,
    cap: timedelta,
    jitter: float = 0.0,
    spread: float = 0.0,
) -> timedelta:
    """The wait after the ``attempt``-th consecutive failure (0-based): ``base · 2^attempt``,
    capped at ``cap``. With ``spread`` > 0 the wait is drawn from the top ``spread`` share of
    that (``jitter`` is the draw, in [0, 1)), so retries of many clients drift apart.

    The one backoff of the program: sources that fail, sends that fail, and the bot's start
    while Telegram is unreachable all wait this long.
    """
    if not 0.0 <= jitter < 1.0 or not 0.0 <= spread <= 1.0:
        msg = f"jitter must be in [0, 1) and spread in [0, 1], not {jitter}, {spread}"
        raise ValueError(msg)
    full: timedelta = min(cap, base * (2 ** min(max(attempt, 0), 30)))
    return full * (1 - spread) + full * spread * jitter


class HealthChange(StrEnum):
    """A source crossing into, or out of, the failing state, or the quiet one."""

    FAILING = "failing"
    RECOVERED = "recovered"
    QUIET = "quiet"  # polls succeed, but nothing new for longer than expected
    ACTIVE = "active"  # a quiet source brought new items again


def expected_within(kind: str, options: Mapping[str, Any]) -> timedelta | None:
    """How long ``kind`` with ``options`` may go without a new item; None: never reported.
    ``expect_new_within: 7d`` sets it, ``off`` (or false) turns it off; a value that does not
    parse falls back to the kind's default (the sources file refuses it on load)."""
    value = options.get(EXPECT_OPTION)
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            return parse_duration(value)
        except ValueError:
            pass
    return EXPECT_NEW_WITHIN.get(kind)


def quiet_change(
    *,
    quiet_since: datetime | None,
    last_new: datetime | None,
    since: datetime,
    now: datetime,
    expect: timedelta | None,
    new: int,
) -> tuple[HealthChange | None, datetime | None]:
    """After a successful poll that stored ``new`` items: the change to report, if any, and
    the source's quiet-since time to keep. ``last_new`` is when it last brought a new item
    (``since``, when it was added, if never)."""
    if new > 0:
        return (HealthChange.ACTIVE if quiet_since is not None else None), None
    if expect is None or now - (last_new or since) <= expect:
        return None, None  # not quiet (an expectation raised or turned off clears it)
    if quiet_since is not None:
        return None, quiet_since  # told already
    return HealthChange.QUIET, now


def health_change(before: int, after: int, *, failing_after: int) -> HealthChange | None:
    """Compare consecutive failures before and after a poll against the threshold."""
    if before < failing_after <= after:
        return HealthChange.FAILING
    if before >= failing_after and after == 0:
        return HealthChange.RECOVERED
    return None
