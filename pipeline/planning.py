"""The planning hook: new items of one poll → outbox rows, inside the poll's transaction.

``plan_new_items`` reads the matches the classifier wrote for the new items, the active
subscriptions, and each chat's recent instant messages; the pure planner
(``models.alerts.plan_alerts``) decides; alerts and burst summaries are rendered here, in each
subscriber's time zone, and enqueued. ``UNIQUE(subscriber_id, item_id)`` on ``deliveries``
makes a second alert of one item to one chat impossible (items folded into a summary get a
``folded`` row for that reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from delivery.render import AlertView, ThemeMatch, alert_view, render_alert, render_fold
from models.alerts import AlertPlan, BurstPolicy, ItemMatch, NewItem, ThemeInfo, plan_alerts
from models.db import UnitOfWork
from models.db.deliveries import NewDelivery
from models.db.items import StoreResult
from models.items import StoredItem
from models.outbox import DeliveryKind, DeliveryStatus


async def plan_new_items(
    uow: UnitOfWork,
    result: StoreResult,
    now: datetime,
    *,
    policy: BurstPolicy | None = None,
    max_age: timedelta | None = None,
) -> None:
    """Plan and enqueue the alerts for ``result.new`` (call after classification, in the same
    transaction; the caller commits)."""
    await plan_items(uow, result.new, now, policy=policy or BurstPolicy(), max_age=max_age)


async def plan_items(
    uow: UnitOfWork,
    new_items: Sequence[StoredItem],
    now: datetime,
    *,
    policy: BurstPolicy,
    max_age: timedelta | None = None,
) -> AlertPlan:
    items = {i.id: i for i in new_items if not i.from_first_poll}
    if not items:
        return AlertPlan()
    match_rows = await uow.matches.of_items(list(items))
    if not match_rows:
        return AlertPlan()
    terms = {(r.item_id, r.theme_id): r.terms for r in match_rows}
    similar = {(r.item_id, r.theme_id): r.similar_to for r in match_rows}
    themes = await uow.themes.by_ids(sorted({r.theme_id for r in match_rows}))
    subscribers, subscriptions = await uow.subscribers.audience(list(themes))
    recent = await uow.deliveries.recent_instant(list(subscribers), now - policy.window)
    plan = plan_alerts(
        items=[
            NewItem(i.id, i.from_first_poll, None if i.published_at_guessed else i.published_at)
            for i in items.values()
        ],
        matches=[ItemMatch(r.item_id, r.theme_id) for r in match_rows],
        themes={t.id: ThemeInfo(t.id, t.slug, t.title, t.priority) for t in themes.values()},
        subscribers=subscribers,
        subscriptions=subscriptions,
        recent_instant=recent,
        policy=policy,
        now=now,
        max_age=max_age,
    )

    def view(item_id: int, theme_ids: Sequence[int]) -> AlertView:
        return alert_view(
            items[item_id],
            tuple(
                ThemeMatch(
                    themes[t].slug,
                    themes[t].title,
                    terms.get((item_id, t), ()),
                    similar.get((item_id, t)),
                    t,
                )
                for t in theme_ids
            ),
        )

    planned: list[NewDelivery] = []
    for alert in plan.alerts:
        zone = subscribers[alert.subscriber_id].timezone
        planned.append(
            NewDelivery(
                subscriber_id=alert.subscriber_id,
                kind=DeliveryKind.ALERT,
                dedupe_key=f"alert:{alert.item_id}",
                payload={"messages": [render_alert(view(alert.item_id, alert.theme_ids), zone)]},
                item_id=alert.item_id,
                send_at=alert.send_at,
            )
        )
    window_minutes = int(policy.window.total_seconds() // 60)
    for fold in plan.folds:
        zone = subscribers[fold.subscriber_id].timezone
        key = f"burst:{fold.item_ids[0]}"
        views = [view(i, fold.theme_ids[i]) for i in fold.item_ids]
        planned.append(
            NewDelivery(
                subscriber_id=fold.subscriber_id,
                kind=DeliveryKind.BURST,
                dedupe_key=key,
                payload={"messages": [render_fold(views, zone, window_minutes)]},
                send_at=fold.send_at,
            )
        )
        planned.extend(
            NewDelivery(
                subscriber_id=fold.subscriber_id,
                kind=DeliveryKind.ALERT,
                dedupe_key=f"alert:{item_id}",
                payload={"messages": [], "folded_into": key},
                item_id=item_id,
                status=DeliveryStatus.FOLDED,
                send_at=fold.send_at,
            )
            for item_id in fold.item_ids
        )
    await uow.deliveries.enqueue(planned, now)
    return plan
