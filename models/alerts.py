"""Alert planning: for every new item × matching theme × subscription, decide what to send.

Pure: plain data in, decisions out; ``now`` is a parameter. The rules, in order:

1. Items from a source's very first successful poll are never alerted (no flood when a source
   is added); they stay visible to /latest only (digests leave them out too). Nor is an item
   whose known (not guessed) publication date is older than ``max_age``: a feed re-serving an
   old story is not news (author and tag feeds serve items for years); it stays in /latest.
2. Only active subscribers count.
3. A subscription in ``digest`` mode, or a theme whose priority is ``digest``, gives no instant
   alert: the subscriber's digest carries the item.
4. A muted subscriber (``muted_until`` after ``now``) gets no instant alert.
5. One alert per (chat, item), however many of the chat's themes matched; it names them all.
6. During the subscriber's quiet hours the alert is held until they end (``send_at``).
7. Bursts: if a chat would get more than ``max_alerts`` instant messages within ``window``
   (counting those already sent or queued in the window), it gets ``max_alerts - 1`` of the new
   ones as alerts and the rest folded into one summary, so the window holds ``max_alerts``
   messages. A chat already at the limit gets one summary for all the new items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.localtime import quiet_hours_end

MODE_INSTANT = "instant"


@dataclass(frozen=True, slots=True)
class SubscriberInfo:
    id: int
    chat_id: int
    timezone: str = "UTC"
    quiet_hours: str | None = None
    muted_until: datetime | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    subscriber_id: int
    theme_id: int
    mode: str = MODE_INSTANT


@dataclass(frozen=True, slots=True)
class ThemeInfo:
    id: int
    slug: str
    title: str
    priority: str = MODE_INSTANT


@dataclass(frozen=True, slots=True)
class NewItem:
    id: int
    from_first_poll: bool = False
    published_at: datetime | None = None  # None: unknown or guessed (taken as fresh)


@dataclass(frozen=True, slots=True)
class ItemMatch:
    item_id: int
    theme_id: int


@dataclass(frozen=True, slots=True)
class BurstPolicy:
    """At most ``max_alerts`` instant messages per chat within ``window``."""

    max_alerts: int = 5
    window: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.max_alerts < 2:
            msg = "max_alerts must be at least 2 (alerts plus one summary)"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    """One instant alert of one item to one chat, naming the chat's matching themes."""

    subscriber_id: int
    item_id: int
    theme_ids: tuple[int, ...]
    send_at: datetime


@dataclass(frozen=True, slots=True)
class PlannedFold:
    """Several items for one chat folded into one summary message."""

    subscriber_id: int
    item_ids: tuple[int, ...]
    theme_ids: Mapping[int, tuple[int, ...]]
    send_at: datetime


@dataclass(frozen=True, slots=True)
class AlertPlan:
    alerts: tuple[PlannedAlert, ...] = ()
    folds: tuple[PlannedFold, ...] = ()
    skipped: Mapping[str, int] = field(default_factory=dict)


def plan_alerts(
    *,
    items: Sequence[NewItem],
    matches: Sequence[ItemMatch],
    themes: Mapping[int, ThemeInfo],
    subscribers: Mapping[int, SubscriberInfo],
    subscriptions: Sequence[SubscriptionInfo],
    recent_instant: Mapping[int, int],
    policy: BurstPolicy,
    now: datetime,
    max_age: timedelta | None = None,
) -> AlertPlan:
    """Apply the rules of the module docstring. ``recent_instant[subscriber_id]`` is how many
    instant messages that chat got (or has queued) within ``policy.window`` before ``now``."""
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    alertable: set[int] = set()
    for item in items:
        if item.from_first_poll:
            skip("first_poll")
        elif (
            max_age is not None
            and item.published_at is not None
            and now - item.published_at > max_age
        ):
            skip("old_news")
        else:
            alertable.add(item.id)
    by_theme: dict[int, list[SubscriptionInfo]] = {}
    for sub in subscriptions:
        by_theme.setdefault(sub.theme_id, []).append(sub)

    # (subscriber, item) -> the chat's matching themes that want an instant alert
    wanted: dict[tuple[int, int], list[int]] = {}
    for match in sorted(matches, key=lambda m: (m.item_id, m.theme_id)):
        if match.item_id not in alertable:
            continue
        theme = themes.get(match.theme_id)
        if theme is None:
            continue
        for sub in by_theme.get(match.theme_id, ()):
            subscriber = subscribers.get(sub.subscriber_id)
            if subscriber is None or not subscriber.active:
                skip("inactive")
                continue
            if sub.mode != MODE_INSTANT or theme.priority != MODE_INSTANT:
                skip("digest")
                continue
            if subscriber.muted_until is not None and subscriber.muted_until > now:
                skip("muted")
                continue
            wanted.setdefault((sub.subscriber_id, match.item_id), []).append(theme.id)

    per_chat: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
    for (subscriber_id, item_id), theme_ids in sorted(wanted.items()):
        per_chat.setdefault(subscriber_id, []).append((item_id, tuple(theme_ids)))

    alerts: list[PlannedAlert] = []
    folds: list[PlannedFold] = []
    for subscriber_id, entries in sorted(per_chat.items()):
        subscriber = subscribers[subscriber_id]
        held_until = quiet_hours_end(subscriber.quiet_hours, subscriber.timezone, now)
        send_at = held_until or now
        if held_until is not None:
            skipped["held_quiet_hours"] = skipped.get("held_quiet_hours", 0) + len(entries)
        allowed = policy.max_alerts - recent_instant.get(subscriber_id, 0)
        if len(entries) <= allowed:
            single, folded = entries, []
        else:
            cut = max(allowed - 1, 0)
            single, folded = entries[:cut], entries[cut:]
        alerts.extend(PlannedAlert(subscriber_id, i, t, send_at) for i, t in single)
        if folded:
            folds.append(
                PlannedFold(
                    subscriber_id=subscriber_id,
                    item_ids=tuple(i for i, _ in folded),
                    theme_ids=dict(folded),
                    send_at=send_at,
                )
            )
    return AlertPlan(alerts=tuple(alerts), folds=tuple(folds), skipped=skipped)
