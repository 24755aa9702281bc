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
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

MAX_RETRY_AFTER = timedelta(days=7)
DEFAULT_MAX_BACKOFF = timedelta(hours=6)


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
    """A source crossing into, or out of, the failing state."""

    FAILING = "failing"
    RECOVERED = "recovered"


def health_change(before: int, after: int, *, failing_after: int) -> HealthChange | None:
    """Compare consecutive failures before and after a poll against the threshold."""
    if before < failing_after <= after:
        return HealthChange.FAILING
    if before >= failing_after and after == 0:
        return HealthChange.RECOVERED
    return None
