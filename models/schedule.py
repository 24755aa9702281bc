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

from dataclasses import dataclass
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
        exponent = min(failures - 1, 30)
        full = min(cap, interval * (2**exponent))
        delay = full / 2 + (full / 2) * jitter
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return now + delay


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


@dataclass(frozen=True, slots=True)
class Backoff:
    """The schedule knobs the shell reads from settings."""

    max_backoff: timedelta = DEFAULT_MAX_BACKOFF
    failing_after: int = 3
