"""The planning hook: new items of one poll → outbox rows, inside the poll's transaction.

``plan_new_items`` reads the matches the classifier wrote for the new items, the events they
were grouped into, the active subscriptions, each chat's recent alerts and what each chat was
already sent about those events; the pure planner (``models.alerts.plan_alerts``) decides;
alerts, updates and summaries are rendered here, in each subscriber's zone, and enqueued.

The database keeps it exact: an alert is keyed by its event (``event:<id>``), so two workers can
never alert one event to one chat twice (``UNIQUE(subscriber_id, dedupe_key)``); and every item
a message carries without being its subject (further sources, folded and held items) gets a
``folded`` row (``UNIQUE(subscriber_id, item_id)``), so no item is ever alerted again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from delivery.render import (
    AlertView,
    SourceLine,
    ThemeMatch,
    alert_view,
    render_alert,
    render_fold,
    render_held,
    render_update,
)
from models.alerts import (
    AlertPlan,
    BurstPolicy,
    ItemMatch,
    NewItem,
    SubscriptionInfo,
    ThemeInfo,
    UpdatePolicy,
    is_sure,
    plan_alerts,
)
from models.db import UnitOfWork
from models.db.deliveries import NewDelivery
from models.db.items import StoreResult
from models.feedback import Tally, WaryPolicy, explores, unsure_record, wary_pairs
from models.items import StoredItem
from models.outbox import (
    DeliveryKind,
    DeliveryStatus,
    OutboxPayload,
    OutgoingMessage,
    with_topic,
)
from models.views import ThemeView
from pipeline.watching import TITLE, PersonalWatches

RELEASE_SUMMARY = "burst:quiet:"  # the key of the summary of what quiet hours release, + when


async def plan_new_items(
    uow: UnitOfWork,
    result: StoreResult,
    now: datetime,
    *,
    policy: BurstPolicy | None = None,
    updates: UpdatePolicy | None = None,
    max_age: timedelta | None = None,
    watches: PersonalWatches | None = None,
    wary: WaryPolicy | None = None,
) -> None:
    """Plan and enqueue what ``result.new`` sends (call after classification and event
    grouping, in the same transaction; the caller commits)."""
    await plan_items(
        uow,
        result.new,
        now,
        policy=policy or BurstPolicy(),
        updates=updates or UpdatePolicy(),
        max_age=max_age,
        watches=watches,
        wary=wary,
    )


async def wary_sources(
    uow: UnitOfWork,
    policy: WaryPolicy,
    now: datetime,
    sources: Collection[str] | None = None,
    judged_ids: Collection[int] | None = None,
) -> dict[tuple[str, str], Tally]:
    """The (source, theme) pairs whose unsure matches wait for digests now, with the judged
    alerts that made them: of these sources (by name; every one with None), from the verdicts
    of ``policy.window``, less the pairs an admin trusts (``/source trust``). An alert counts
    as unsure as it was when it went out (where that was not recorded, against the themes an
    active model judges now: ``judged_ids``, asked for when None). The planner and ``/watch
    stats`` both ask here."""
    if judged_ids is None:
        judged_ids = [theme_id for theme_id, _ in await uow.learned.active_key()]
    judged = await uow.themes.by_ids(sorted(judged_ids))
    record = unsure_record(
        await uow.feedback.alert_verdicts(sources, since=now - policy.window),
        {t.slug for t in judged.values()},
    )
    trusted = await uow.sources.trusted_pairs(sources)
    return {key: record[key] for key in wary_pairs(record, policy) if key not in trusted}


async def plan_items(
    uow: UnitOfWork,
    new_items: Sequence[StoredItem],
    now: datetime,
    *,
    policy: BurstPolicy,
    updates: UpdatePolicy | None = None,
    max_age: timedelta | None = None,
    watches: PersonalWatches | None = None,
    wary: WaryPolicy | None = None,
) -> AlertPlan:
    """Theme matches and, with ``watches``, subscribers' own watched organisations (each
    subscriber's watches a theme only it follows, numbered ``-subscriber_id``); with ``wary``,
    a source's unsure matches of a theme its subscribers judged mostly wrong wait for digests
    (``models.alerts`` rule 3)."""
    items = {i.id: i for i in new_items if not i.from_first_poll}
    if not items:
        return AlertPlan()
    match_rows = await uow.matches.of_items(list(items))
    own = await watches.matches(uow, list(items.values())) if watches else []
    if not match_rows and not own:
        return AlertPlan()
    terms = {(r.item_id, r.theme_id): r.terms for r in match_rows}
    similar = {(r.item_id, r.theme_id): r.similar_to for r in match_rows}
    themes = await uow.themes.by_ids(sorted({r.theme_id for r in match_rows}))
    subscribers, subscriptions = await uow.subscribers.audience(list(themes))
    # the themes a learned model judges: how sure each match is decides /alerts sure, wary
    # sources and what the alert records for its feedback buttons
    judged = {theme_id for theme_id, _ in await uow.learned.active_key()} if subscribers else set()
    wary_on = wary is not None and wary.enabled
    matches = [
        ItemMatch(r.item_id, r.theme_id, is_sure(r.layer, r.theme_id in judged)) for r in match_rows
    ]
    if own:
        watching = await uow.subscribers.infos(sorted({m.subscriber_id for m in own}))
        subscribers = {**subscribers, **watching}
        for sid in watching:
            themes[-sid] = ThemeView(-sid, "", TITLE, "", "instant", True, "chat")
            subscriptions.append(SubscriptionInfo(sid, -sid))
        for m in own:
            if m.subscriber_id in watching:
                matches.append(ItemMatch(m.item_id, -m.subscriber_id))
                terms[(m.item_id, -m.subscriber_id)] = m.terms
    events = await uow.events.of_items(list(items))
    digest_routes = await uow.sources.digest_routes({i.source_id for i in items.values()})
    theme_ids = {t.slug: t.id for t in themes.values() if t.id > 0}
    wary_pairs_now: Mapping[tuple[str, str], Tally] = {}
    if (
        wary is not None
        and wary_on
        and any(s.digest for s in subscribers.values())  # without one, nothing can wait
        and any(not m.sure for m in matches)
    ):
        wary_pairs_now = await wary_sources(
            uow, wary, now, {i.source_name for i in items.values()}, judged
        )
    recent = await uow.deliveries.recent_instant(list(subscribers), now - policy.window)
    queued = await uow.deliveries.queued_instant(list(subscribers), now)
    delivered = await uow.deliveries.event_state(list(subscribers), sorted(set(events.values())))
    plan = plan_alerts(
        items=[
            NewItem(
                i.id,
                i.from_first_poll,
                None if i.published_at_guessed else i.published_at,
                events.get(i.id),
                i.source_id in digest_routes and digest_routes[i.source_id] is None,
                frozenset(
                    theme_ids[slug]
                    for slug in digest_routes.get(i.source_id) or ()
                    if slug in theme_ids
                ),
                frozenset(
                    theme_id
                    for slug, theme_id in theme_ids.items()
                    if (i.source_name, slug) in wary_pairs_now
                    and not (wary is not None and explores(i.id, wary))
                ),
            )
            for i in items.values()
        ],
        matches=matches,
        themes={
            t.id: ThemeInfo(t.id, t.slug, t.title, t.priority, in_digest=t.id > 0)
            for t in themes.values()
        },
        subscribers=subscribers,
        subscriptions=subscriptions,
        recent_instant=recent,
        policy=policy,
        now=now,
        max_age=max_age,
        delivered=delivered,
        updates=updates,
        queued=queued,
    )
    # what an alert's feedback buttons judge: the themes it names that its item matched
    sure_of = {(m.item_id, m.theme_id): m.sure for m in matches if m.theme_id > 0}
    builder = _Builder(uow, items, themes, terms, similar, events, now)
    # An event's alert that never reached a chat (failed, cancelled) keeps its key; the alert
    # that replaces it takes its item's ("event:7+42"), as a new update does.
    # Likewise an update numbered after one that never reached the chat.
    taken = await uow.deliveries.taken_keys(
        {(a.subscriber_id, f"event:{a.event_id}") for a in plan.alerts if a.event_id}
        | {(u.subscriber_id, u.key) for u in plan.updates if not u.join}
    )
    for alert in plan.alerts:
        zone = subscribers[alert.subscriber_id].timezone
        key = f"event:{alert.event_id}" if alert.event_id else f"alert:{alert.item_id}"
        if (alert.subscriber_id, key) in taken:
            key = f"{key}+{alert.item_id}"
        named = [t for t in alert.item_themes if (alert.item_id, t) in sure_of]
        view = builder.view(alert.item_id, alert.theme_ids, alert.also, feedback_on=named)
        builder.add(
            alert.subscriber_id,
            DeliveryKind.ALERT,
            key,
            with_topic(
                {
                    "messages": [render_alert(view, zone)],
                    "themes": named,
                    "sure": [t for t in named if sure_of[(alert.item_id, t)]],
                },
                alert.topic,
            ),
            alert.send_at,
            item_id=alert.item_id,
            event_id=alert.event_id,
        )
        builder.fold(alert.subscriber_id, alert.also, key, alert.send_at)
    window_minutes = int(policy.window.total_seconds() // 60)
    for fold in plan.folds:
        zone = subscribers[fold.subscriber_id].timezone
        views = [builder.view(i, fold.theme_ids[i], fold.members.get(i, ())) for i in fold.item_ids]
        if fold.release:  # one summary for what quiet hours release, added to by later polls
            key = f"{RELEASE_SUMMARY}{fold.send_at.isoformat()}"
            joined = await builder.join(
                fold.subscriber_id,
                key,
                fold.all_items,
                views,
                partial(render_fold, zone=zone, window_minutes=window_minutes, released=True),
                fold.topic,
            )
        else:
            key, joined = f"burst:{fold.item_ids[0]}", False
        if not joined:
            payload = with_topic(
                {"messages": [render_fold(views, zone, window_minutes, released=fold.release)]},
                fold.topic,
            )
            builder.add(fold.subscriber_id, DeliveryKind.BURST, key, payload, fold.send_at)
        builder.fold(fold.subscriber_id, fold.all_items, key, fold.send_at)
    for hold in plan.holds:
        zone = subscribers[hold.subscriber_id].timezone
        key = f"muted:{hold.until.isoformat()}"
        views = [builder.view(i, hold.theme_ids[i]) for i in hold.item_ids]
        payload = with_topic({"messages": [render_held(views, zone)]}, hold.topic)
        joined = await builder.join(
            hold.subscriber_id,
            key,
            hold.item_ids,
            views,
            partial(render_held, zone=zone),
            hold.topic,
        )
        if not joined:
            builder.add(hold.subscriber_id, DeliveryKind.HELD, key, payload, hold.send_at)
        builder.fold(hold.subscriber_id, hold.item_ids, key, hold.send_at)
    for planned in plan.updates:
        zone = subscribers[planned.subscriber_id].timezone
        key = planned.key
        if (planned.subscriber_id, key) in taken or (
            planned.join
            and not await builder.join_update(
                planned.subscriber_id, key, planned.item_ids, planned.reply_to, zone
            )
        ):
            key = f"{planned.key}+{planned.item_ids[0]}"  # it left meanwhile: a new one
            planned = replace(planned, key=key, join=False)
        if not planned.join:
            payload = {
                "messages": [render_update([builder.source(i) for i in planned.item_ids], zone)],
                "reply_to": planned.reply_to,
            }
            builder.add(
                planned.subscriber_id,
                DeliveryKind.UPDATE,
                key,
                payload,
                planned.send_at,
                event_id=planned.event_id,
            )
        builder.fold(planned.subscriber_id, planned.item_ids, key, planned.send_at)
    for subscriber_id, silenced in plan.silenced.items():
        for item_id, alert_key in silenced:
            builder.fold(subscriber_id, (item_id,), alert_key, now)
    await uow.deliveries.enqueue(builder.planned, now)
    return plan


class _Builder:
    """Collects the rows one plan enqueues and renders what they show."""

    def __init__(
        self,
        uow: UnitOfWork,
        items: Mapping[int, StoredItem],
        themes: Mapping[int, ThemeView],
        terms: Mapping[tuple[int, int], tuple[str, ...]],
        similar: Mapping[tuple[int, int], str | None],
        events: Mapping[int, int],
        now: datetime,
    ) -> None:
        self.uow, self.items, self.themes, self.terms = uow, items, themes, terms
        self.similar = similar
        self.events, self.now = events, now
        self.planned: list[NewDelivery] = []

    def view(
        self,
        item_id: int,
        theme_ids: Sequence[int],
        also: Sequence[int] = (),
        *,
        feedback_on: Collection[int] = (),
    ) -> AlertView:
        """What a message shows of ``item_id``; the themes in ``feedback_on`` carry their ids
        (an alert's feedback buttons judge those: the themes the item itself alerts for)."""
        return alert_view(
            self.items[item_id],
            tuple(
                ThemeMatch(
                    self.themes[t].slug,
                    self.themes[t].title,
                    self.terms.get((item_id, t), ()),
                    self.similar.get((item_id, t)),
                    t if t in feedback_on else None,
                )
                for t in theme_ids
            ),
            [self.items[i] for i in also],
            self.events.get(item_id),
        )

    def source(self, item_id: int) -> SourceLine:
        return SourceLine.of(self.items[item_id])

    def add(
        self,
        subscriber_id: int,
        kind: DeliveryKind,
        key: str,
        payload: OutboxPayload,
        send_at: datetime,
        *,
        item_id: int | None = None,
        event_id: int | None = None,
    ) -> None:
        self.planned.append(
            NewDelivery(
                subscriber_id=subscriber_id,
                kind=kind,
                dedupe_key=key,
                payload=payload,
                item_id=item_id,
                send_at=send_at,
                event_id=event_id,
            )
        )

    def fold(
        self, subscriber_id: int, item_ids: Sequence[int], key: str, send_at: datetime
    ) -> None:
        """Record that the message ``key`` carries these items (never alerted again)."""
        self.planned.extend(
            NewDelivery(
                subscriber_id=subscriber_id,
                kind=DeliveryKind.ALERT,
                dedupe_key=f"item:{item_id}",
                payload={"messages": [], "folded_into": key},
                item_id=item_id,
                status=DeliveryStatus.FOLDED,
                send_at=send_at,
                event_id=self.events.get(item_id),
            )
            for item_id in item_ids
        )

    async def join_update(
        self,
        subscriber_id: int,
        key: str,
        item_ids: Sequence[int],
        reply_to: str,
        zone: str,
    ) -> bool:
        """Add sources to an update that has not gone yet (re-rendered with all of them)."""
        earlier = await self.uow.deliveries.folded_into(subscriber_id, key)
        rows = await self.uow.queries.items([i for i in earlier if i not in self.items])
        sources = [SourceLine.of(rows[i]) for i in earlier if i in rows]
        sources += [self.source(i) for i in (*[i for i in earlier if i in self.items], *item_ids)]
        payload: OutboxPayload = {"messages": [render_update(sources, zone)], "reply_to": reply_to}
        return await self.uow.deliveries.rewrite_waiting(subscriber_id, key, payload, self.now)

    async def join(
        self,
        subscriber_id: int,
        key: str,
        item_ids: Sequence[int],
        views: Sequence[AlertView],
        render: Callable[[Sequence[AlertView]], OutgoingMessage],
        topic: int | None,
    ) -> bool:
        """Add items to a summary that has not gone yet (what a mute held, what quiet hours
        release): re-rendered with all of them; it stays in its forum topic if the new items
        belong there too."""
        earlier = await self.uow.deliveries.folded_into(subscriber_id, key)
        waiting = await self.uow.deliveries.payload_of(subscriber_id, key)
        if not earlier or waiting is None:
            return False
        # one line an event, as when it was first rendered: its first item (folded first)
        event_of = await self.uow.events.of_items([i for i in earlier if i not in item_ids])
        lines: dict[int | str, int] = {}
        for i in earlier:
            if i not in item_ids:
                lines.setdefault(event_of.get(i, f"item {i}"), i)
        rows = await self.uow.queries.items(list(lines.values()))
        old_views = [
            AlertView(
                title=r.title,
                url=r.url,
                source_name=r.source_name,
                published_at=r.published_at,
                date_only=r.date_only,
                fields=r.fields,
                themes=tuple(
                    ThemeMatch(t, next((v.title for v in self.themes.values() if v.slug == t), t))
                    for t in r.themes
                ),
            )
            for r in (rows[i] for i in lines.values() if i in rows)
        ]
        payload = with_topic(
            {"messages": [render([*old_views, *views])]},
            topic if waiting.get("topic") == topic else None,
        )
        return await self.uow.deliveries.rewrite_waiting(subscriber_id, key, payload, self.now)
