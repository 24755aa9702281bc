"""Alert planning: for every new item × matching theme × subscription, decide what to send.

Pure: plain data in, decisions out; ``now`` is a parameter. The unit a subscriber sees is the
*event* (``models.events``): one real-world happening, however many sources report it. The rules,
in order:

1. Items from a source's very first successful poll are never alerted (no flood when a source
   is added); they stay visible to /latest only (digests leave them out too). Nor is an item
   whose known (not guessed) publication date is older than ``max_age``: a feed re-serving an
   old story is not news; it stays in /latest.
2. Only active subscribers count.
3. A subscription in ``digest`` mode, or a theme whose priority is ``digest``, gives no instant
   alert: the subscriber's digest carries the item. Nor does a match that is not *sure*, for a
   subscriber who asked for sure ones only (``/alerts sure``) and has a digest to carry it: a
   sure match is one the watchlist and the learned model agree on (or the watchlist's alone
   where no model judges the theme). On real news never tuned on (RT), the two agreeing were
   right 198 times in 211 (0.94), either alone 88 in 134 (0.66); the sure ones are 65 % of
   the items a subscriber wants (``tests/data/classification_eval.md``). Without a digest
   every match still alerts: nothing is lost. An event the chat was already alerted to is
   sure: a new item of it, sure or not, is an update (rule 6). Likewise an item from a source
   an admin set to the digest (``NewItem.digest_only``: a noisy feed; ``/source digest``), or
   a match of a theme the admin set to the digest for that source only
   (``NewItem.digest_themes``; ``/source digest <name> <theme>``), or a match that is not
   sure, of a theme whose unsure matches from that source subscribers judged mostly wrong
   (``NewItem.wary_themes``; ``models.feedback.WaryPolicy``): it alerts only chats without a
   digest, and as an update of an event already alerted.
4. A muted subscriber (``muted_until`` after ``now``) gets no instant alert now. What matched
   is kept: a subscriber with a digest gets it there, if the digest carries that theme; what
   it does not carry (a chat's own watched organisations) and everything of a subscriber
   without a digest waits for one "while you were muted" summary when the mute ends
   (``holds``).
5. One alert per (chat, event), naming every theme of the chat that matched. Other new items of
   the same event in the same batch are named in that alert ("also: …").
6. An event the chat was already alerted to gets no second alert: its new items become one
   short *update* replying to the original alert ("also: Reuters, 新华社"), at most
   ``UpdatePolicy.max_updates`` per event and chat, at least ``min_gap`` apart; items arriving
   while an update still waits are added to it. Beyond the cap, items are recorded, not sent.
7. During the subscriber's quiet hours an alert is held until they end (``send_at``), unless
   one of its themes is one the chat lets through (``SubscriptionInfo.through_quiet``); an
   update likewise; a summary only when every event in it may come through.
8. Bursts: if a chat would get more than ``max_alerts`` alerts within ``window`` (counting those
   already sent or queued in the window), it gets ``max_alerts - 1`` of the new events as alerts
   and the rest folded into one summary of events, so the window holds ``max_alerts`` messages.
   A summary never holds a single event (that one is simply alerted), and never an event the
   chat was already told about (those are updates, rule 6). What quiet hours hold goes out at
   once when they end, so held events are counted apart from those that go now (themes let
   through): what already waits for that moment counts (``queued``), and one slot is kept for
   a summary: ``max_alerts - 1`` held alerts at most, the rest in one summary for the release
   that later polls add to (``PlannedFold.release``; it may start with one event).
9. Forum topics: a chat may route a theme to a topic of its forum (``SubscriptionInfo.topic_id``).
   An alert goes to the topic of the first of its themes that has one; a summary of several
   events, or of what a mute held, goes to a topic only when all of it belongs there; anything
   else goes to the chat itself (a forum's General topic). An update replies in its alert's
   topic (the outbox resolves that when it sends).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from models.localtime import quiet_hours_end

MODE_INSTANT = "instant"
INSTANT_ALL = "all"  # a subscriber's instant alerts: every match
INSTANT_SURE = "sure"  # only sure matches; the others wait for the digest
INSTANT_CHOICES = (INSTANT_ALL, INSTANT_SURE)


@dataclass(frozen=True, slots=True)
class SubscriberInfo:
    id: int
    chat_id: int
    timezone: str = "UTC"
    quiet_hours: str | None = None
    muted_until: datetime | None = None
    active: bool = True
    digest: bool = False  # the subscriber gets a digest (a muted one's matches wait there)
    sure_only: bool = False  # instant alerts for sure matches only (rule 3)


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    subscriber_id: int
    theme_id: int
    mode: str = MODE_INSTANT
    topic_id: int | None = None  # the forum topic the theme's alerts go to (rule 9)
    through_quiet: bool = False  # the theme's alerts come during quiet hours too (rule 7)


@dataclass(frozen=True, slots=True)
class ThemeInfo:
    id: int
    slug: str
    title: str
    priority: str = MODE_INSTANT
    in_digest: bool = True  # a subscriber's digest lists this theme's items


@dataclass(frozen=True, slots=True)
class NewItem:
    id: int
    from_first_poll: bool = False
    published_at: datetime | None = None  # None: unknown or guessed (taken as fresh)
    event_id: int | None = None  # None: the item is an event of its own
    digest_only: bool = False  # its source's matches wait for digests (rule 3)
    digest_themes: frozenset[int] = frozenset()  # ... or those of these themes only
    wary_themes: frozenset[int] = frozenset()  # its unsure matches of these wait (rule 3)

    @property
    def event(self) -> int:
        """The event this item reports (its own id, negated, when it has none)."""
        return self.event_id if self.event_id is not None else -self.id


@dataclass(frozen=True, slots=True)
class ItemMatch:
    item_id: int
    theme_id: int
    sure: bool = True  # both layers agree, or the only layer that judges the theme matched


def is_sure(layer: str, judged_by_model: bool) -> bool:
    """A match is sure when the watchlist and the learned model agree (``layer`` "both"), or
    when the watchlist matched a theme no model judges: the model alone, or the watchlist
    against the model, is not (rule 3)."""
    return layer == "both" or (layer == "rules" and not judged_by_model)


@dataclass(frozen=True, slots=True)
class EventDelivered:
    """What a chat was already sent about one event."""

    alert_key: str  # the dedupe key of the alert the updates reply to
    updates: int = 0  # update messages planned so far
    last_update_at: datetime | None = None
    waiting_update: str | None = None  # the key of an update not sent yet (items join it)


@dataclass(frozen=True, slots=True)
class BurstPolicy:
    """At most ``max_alerts`` instant alerts per chat within ``window``."""

    max_alerts: int = 5
    window: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.max_alerts < 2:
            msg = "max_alerts must be at least 2 (alerts plus one summary)"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class UpdatePolicy:
    """At most ``max_updates`` updates per event and chat, at least ``min_gap`` apart."""

    max_updates: int = 3
    min_gap: timedelta = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    """One alert of one event to one chat: its first new item, naming the chat's matching
    themes; ``also`` are the event's other new items (named as further sources).
    ``item_themes``: the themes the first item itself alerts for (what its feedback judges;
    the others came with ``also``)."""

    subscriber_id: int
    item_id: int
    theme_ids: tuple[int, ...]
    send_at: datetime
    event_id: int | None = None
    also: tuple[int, ...] = ()
    topic: int | None = None  # the forum topic it goes to (rule 9)
    item_themes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedUpdate:
    """New sources of an event a chat was alerted to, as a reply to that alert. ``join`` is
    the key of a waiting update to add them to; otherwise ``key`` is a new one."""

    subscriber_id: int
    event_id: int
    item_ids: tuple[int, ...]
    reply_to: str
    key: str
    send_at: datetime
    join: bool = False


@dataclass(frozen=True, slots=True)
class PlannedFold:
    """Several events for one chat folded into one summary message."""

    subscriber_id: int
    item_ids: tuple[int, ...]  # the first new item of each event, in order
    theme_ids: Mapping[int, tuple[int, ...]]
    send_at: datetime
    members: Mapping[int, tuple[int, ...]] = field(default_factory=dict)  # item → event's others
    topic: int | None = None
    release: bool = False  # held until quiet hours end: one summary for that moment, added to

    @property
    def all_items(self) -> tuple[int, ...]:
        return tuple(i for first in self.item_ids for i in (first, *self.members.get(first, ())))


@dataclass(frozen=True, slots=True)
class PlannedHold:
    """What a muted chat without a digest missed, summed up when the mute ends (``until``),
    sent then or, when the mute ends in the chat's quiet hours, when they end (``send_at``)."""

    subscriber_id: int
    item_ids: tuple[int, ...]
    theme_ids: Mapping[int, tuple[int, ...]]
    until: datetime
    topic: int | None
    send_at: datetime


@dataclass(frozen=True, slots=True)
class Queued:
    """What waits for a chat's quiet hours to end: instant messages (alerts and summaries)."""

    messages: int = 0


@dataclass(frozen=True, slots=True)
class AlertPlan:
    alerts: tuple[PlannedAlert, ...] = ()
    folds: tuple[PlannedFold, ...] = ()
    updates: tuple[PlannedUpdate, ...] = ()
    holds: tuple[PlannedHold, ...] = ()
    silenced: Mapping[int, tuple[tuple[int, str], ...]] = field(default_factory=dict)
    """subscriber → (item, alert key) of items past an event's update cap: recorded, not sent"""
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
    delivered: Mapping[tuple[int, int], EventDelivered] | None = None,
    updates: UpdatePolicy | None = None,
    queued: Mapping[int, Queued] | None = None,
) -> AlertPlan:
    """Apply the rules of the module docstring. ``recent_instant[subscriber_id]`` is how many
    alerts that chat got (or has queued) within ``policy.window`` before ``now``;
    ``delivered[(subscriber_id, event_id)]`` what it was already sent about an event;
    ``queued[subscriber_id]`` what waits for its quiet hours to end."""
    delivered = delivered or {}
    queued = queued or {}
    updates = updates or UpdatePolicy()
    skipped: dict[str, int] = {}

    def skip(reason: str, count: int = 1) -> None:
        skipped[reason] = skipped.get(reason, 0) + count

    by_id = {item.id: item for item in items}
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
    topics = {
        (s.subscriber_id, s.theme_id): s.topic_id for s in subscriptions if s.topic_id is not None
    }
    through_quiet = {(s.subscriber_id, s.theme_id) for s in subscriptions if s.through_quiet}

    def send_time(
        subscriber_id: int, held_until: datetime | None, *theme_sets: Sequence[int]
    ) -> datetime:
        """Rule 7: when a message about these themes' matches goes: at the end of the chat's
        quiet hours, unless each of its parts names a theme the chat lets through."""
        if held_until is None or all(
            any((subscriber_id, t) in through_quiet for t in ids) for ids in theme_sets
        ):
            return now
        return held_until

    def topic_of(subscriber_id: int, *theme_sets: Sequence[int]) -> int | None:
        """Rule 9: where a message about these themes' matches goes."""
        found = {
            next((topics[(subscriber_id, t)] for t in ids if (subscriber_id, t) in topics), None)
            for ids in theme_sets
        }
        return found.pop() if len(found) == 1 else None

    # (subscriber, item) -> the chat's matching themes that want an instant alert
    wanted: dict[tuple[int, int], list[int]] = {}
    muted: dict[tuple[int, int], list[int]] = {}
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
            item = by_id[match.item_id]
            # what a chat's digest will carry may wait for it (not an update of an alerted event)
            digest_carries = (
                subscriber.digest
                and theme.in_digest
                and (sub.subscriber_id, item.event) not in delivered
            )
            if digest_carries and subscriber.sure_only and not match.sure:
                skip("not_sure")
                continue
            if digest_carries and (item.digest_only or match.theme_id in item.digest_themes):
                skip("source_digest")
                continue
            if digest_carries and not match.sure and match.theme_id in item.wary_themes:
                skip("wary_source")
                continue
            if subscriber.muted_until is not None and subscriber.muted_until > now:
                skip("muted")
                if not (subscriber.digest and theme.in_digest):
                    muted.setdefault((sub.subscriber_id, match.item_id), []).append(theme.id)
                continue
            wanted.setdefault((sub.subscriber_id, match.item_id), []).append(theme.id)

    # subscriber -> event -> [(item, themes)], items oldest first
    per_chat: dict[int, dict[int, list[tuple[int, tuple[int, ...]]]]] = {}
    for (subscriber_id, item_id), theme_ids in sorted(
        wanted.items(), key=lambda kv: (kv[0][0], _order(by_id[kv[0][1]]))
    ):
        event = by_id[item_id].event
        per_chat.setdefault(subscriber_id, {}).setdefault(event, []).append(
            (item_id, tuple(theme_ids))
        )

    alerts: list[PlannedAlert] = []
    folds: list[PlannedFold] = []
    planned_updates: list[PlannedUpdate] = []
    silenced: dict[int, list[tuple[int, str]]] = {}
    for subscriber_id, events in sorted(per_chat.items()):
        subscriber = subscribers[subscriber_id]
        held_until = quiet_hours_end(subscriber.quiet_hours, subscriber.timezone, now)
        fresh: list[tuple[int, list[tuple[int, tuple[int, ...]]]]] = []
        for event, entries in events.items():
            state = delivered.get((subscriber_id, event)) if event > 0 else None
            if state is None:
                fresh.append((event, entries))
                continue
            item_ids = tuple(i for i, _ in entries)
            send_at = send_time(subscriber_id, held_until, _all_themes(entries))
            if state.waiting_update is not None:
                planned_updates.append(
                    PlannedUpdate(
                        subscriber_id,
                        event,
                        item_ids,
                        state.alert_key,
                        state.waiting_update,
                        send_at,
                        join=True,
                    )
                )
            elif state.updates >= updates.max_updates:
                silenced.setdefault(subscriber_id, []).extend(
                    (i, state.alert_key) for i in item_ids
                )
                skip("update_cap", len(item_ids))
            else:
                earliest = (
                    state.last_update_at + updates.min_gap
                    if state.last_update_at is not None
                    else now
                )
                planned_updates.append(
                    PlannedUpdate(
                        subscriber_id,
                        event,
                        item_ids,
                        state.alert_key,
                        f"update:{event}:{state.updates + 1}",
                        max(send_at, earliest),
                    )
                )
        going: list[tuple[int, list[tuple[int, tuple[int, ...]]]]] = []
        kept: list[tuple[int, list[tuple[int, tuple[int, ...]]]]] = []
        for pair in fresh:
            held_now = send_time(subscriber_id, held_until, _all_themes(pair[1])) > now
            (kept if held_now else going).append(pair)
        if kept:
            skip("held_quiet_hours", len(kept))
        # what goes now: the window's alerts so far count
        allowed = policy.max_alerts - recent_instant.get(subscriber_id, 0)
        if len(going) <= allowed:
            single, folded = going, []
        else:
            cut = max(allowed - 1, 0)
            single, folded = going[:cut], going[cut:]
            if len(folded) == 1:  # a summary of one event is just an alert
                single, folded = going, []
        # what quiet hours hold goes at once when they end: what waits for then counts, and one
        # slot is kept for the summary later polls may need
        waiting = queued.get(subscriber_id, Queued()).messages
        cut = max(policy.max_alerts - 1 - waiting, 0)
        single, release = [*single, *kept[:cut]], kept[cut:]
        for event, entries in single:
            (first, first_themes), *others = entries
            alert_themes = _all_themes(entries) if others else first_themes
            alerts.append(
                PlannedAlert(
                    subscriber_id,
                    first,
                    alert_themes,
                    send_time(subscriber_id, held_until, alert_themes),
                    event if event > 0 else None,
                    tuple(i for i, _ in others),
                    topic_of(subscriber_id, alert_themes),
                    first_themes,
                )
            )
        for summed, is_release in ((folded, False), (release, True)):
            if not summed:
                continue
            fold_themes = {entries[0][0]: _all_themes(entries) for _, entries in summed}
            folds.append(
                PlannedFold(
                    subscriber_id=subscriber_id,
                    item_ids=tuple(entries[0][0] for _, entries in summed),
                    theme_ids=fold_themes,
                    send_at=send_time(subscriber_id, held_until, *fold_themes.values()),
                    members={
                        entries[0][0]: tuple(i for i, _ in entries[1:])
                        for _, entries in summed
                        if len(entries) > 1
                    },
                    topic=topic_of(subscriber_id, *fold_themes.values()),
                    release=is_release,
                )
            )

    holds: list[PlannedHold] = []
    by_muted: dict[int, list[tuple[int, list[int]]]] = {}
    for (subscriber_id, item_id), held_themes in muted.items():
        by_muted.setdefault(subscriber_id, []).append((item_id, held_themes))
    for subscriber_id, held in sorted(by_muted.items()):
        subscriber = subscribers[subscriber_id]
        until = subscriber.muted_until
        assert until is not None
        held.sort(key=lambda e: _order(by_id[e[0]]))
        holds.append(
            PlannedHold(
                subscriber_id,
                tuple(i for i, _ in held),
                {i: tuple(t) for i, t in held},
                until,
                topic_of(subscriber_id, *(t for _, t in held)),
                quiet_hours_end(subscriber.quiet_hours, subscriber.timezone, until) or until,
            )
        )
    return AlertPlan(
        alerts=tuple(alerts),
        folds=tuple(folds),
        updates=tuple(planned_updates),
        holds=tuple(holds),
        silenced={s: tuple(v) for s, v in silenced.items()},
        skipped=skipped,
    )


_UNKNOWN = datetime.max.replace(tzinfo=UTC)


def _order(item: NewItem) -> tuple[datetime, int]:
    """Oldest first; an item of unknown date after the dated ones, then by id."""
    return (item.published_at or _UNKNOWN, item.id)


def _all_themes(entries: Sequence[tuple[int, tuple[int, ...]]]) -> tuple[int, ...]:
    return tuple(sorted({t for _, themes in entries for t in themes}))
