"""The planning hook: new items of one poll → outbox rows, inside the poll's transaction.

``plan_new_items`` reads the matches the classifier wrote to ``item_themes`` for the new items,
the active subscriptions, and each chat's recent instant messages; the pure planner
(``models.alerts.plan_alerts``) decides; alerts and burst summaries are rendered here, in each
subscriber's time zone, and enqueued. ``UNIQUE(subscriber_id, item_id)`` on ``deliveries``
makes a second alert of one item to one chat impossible (items folded into a summary get a
``folded`` row for that reason).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.render import AlertView, ThemeMatch, render_alert, render_fold
from bot.settings import Settings
from models.alerts import (
    AlertPlan,
    BurstPolicy,
    ItemMatch,
    NewItem,
    SubscriberInfo,
    SubscriptionInfo,
    ThemeInfo,
    plan_alerts,
)
from models.db.outbox import STATUS_CANCELLED, STATUS_FAILED, STATUS_FOLDED
from models.db.repositories import DeliveryRepository, StoreResult
from models.db.tables import Delivery, ItemTheme, Subscriber, Subscription, Theme
from models.items import StoredItem

KIND_ALERT = "alert"
KIND_BURST = "burst"


def burst_policy(settings: Settings) -> BurstPolicy:
    return BurstPolicy(max_alerts=settings.burst_max_alerts, window=settings.burst_window)


def matched_terms(matched: Any) -> tuple[str, ...]:
    """The terms in an ``item_themes.matched`` value (a list of strings, or of objects with a
    ``term``); anything else is ignored."""
    if not isinstance(matched, list):
        return ()
    terms: list[str] = []
    for entry in matched:
        term = entry.get("term") if isinstance(entry, Mapping) else entry
        if isinstance(term, str) and term.strip() and term not in terms:
            terms.append(term)
    return tuple(terms)


async def plan_new_items(
    session: AsyncSession,
    result: StoreResult,
    now: datetime,
    *,
    policy: BurstPolicy | None = None,
    max_age: timedelta | None = None,
) -> None:
    """Plan and enqueue the alerts for ``result.new`` (call after classification, in the same
    transaction; the caller commits)."""
    await plan_items(session, result.new, now, policy=policy or BurstPolicy(), max_age=max_age)


async def plan_items(
    session: AsyncSession,
    new_items: Sequence[StoredItem],
    now: datetime,
    *,
    policy: BurstPolicy,
    max_age: timedelta | None = None,
) -> AlertPlan:
    items = {i.id: i for i in new_items if not i.from_first_poll}
    if not items:
        return AlertPlan()
    match_rows = (
        await session.execute(
            select(ItemTheme.item_id, ItemTheme.theme_id, ItemTheme.matched).where(
                ItemTheme.item_id.in_(list(items))
            )
        )
    ).all()
    if not match_rows:
        return AlertPlan()
    terms = {(r.item_id, r.theme_id): matched_terms(r.matched) for r in match_rows}
    theme_ids = sorted({r.theme_id for r in match_rows})
    themes = {
        t.id: t
        for t in (
            await session.scalars(
                select(Theme).where(Theme.id.in_(theme_ids), Theme.enabled.is_(True))
            )
        ).all()
    }
    pairs = (
        await session.execute(
            select(Subscription, Subscriber)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscription.theme_id.in_(list(themes)), Subscriber.active.is_(True))
        )
    ).all()
    subscribers = {
        s.id: SubscriberInfo(
            id=s.id,
            chat_id=s.chat_id,
            timezone=s.timezone,
            quiet_hours=s.quiet_hours,
            muted_until=s.muted_until,
            active=s.active,
        )
        for _, s in pairs
    }
    recent = await _recent_instant(session, list(subscribers), now - policy.window)
    plan = plan_alerts(
        items=[
            NewItem(
                i.id,
                i.from_first_poll,
                None if i.published_at_guessed else i.published_at,
            )
            for i in items.values()
        ],
        matches=[ItemMatch(r.item_id, r.theme_id) for r in match_rows],
        themes={t.id: ThemeInfo(t.id, t.slug, t.title, t.priority) for t in themes.values()},
        subscribers=subscribers,
        subscriptions=[
            SubscriptionInfo(sub.subscriber_id, sub.theme_id, sub.mode) for sub, _ in pairs
        ],
        recent_instant=recent,
        policy=policy,
        now=now,
        max_age=max_age,
    )

    def view(item_id: int, theme_ids: Sequence[int]) -> AlertView:
        item = items[item_id]
        return AlertView(
            title=item.title,
            url=item.url,
            source_name=item.source_name,
            published_at=item.published_at,
            published_at_guessed=item.published_at_guessed,
            summary=item.summary,
            fields=item.fields,
            themes=tuple(
                ThemeMatch(themes[t].slug, themes[t].title, terms.get((item_id, t), ()))
                for t in theme_ids
            ),
        )

    rows: list[dict[str, Any]] = []
    for alert in plan.alerts:
        zone = subscribers[alert.subscriber_id].timezone
        rows.append(
            {
                "subscriber_id": alert.subscriber_id,
                "item_id": alert.item_id,
                "kind": KIND_ALERT,
                "dedupe_key": f"alert:{alert.item_id}",
                "next_attempt_at": alert.send_at,
                "payload": {"messages": [render_alert(view(alert.item_id, alert.theme_ids), zone)]},
            }
        )
    window_minutes = int(policy.window.total_seconds() // 60)
    for fold in plan.folds:
        zone = subscribers[fold.subscriber_id].timezone
        key = f"burst:{fold.item_ids[0]}"
        views = [view(i, fold.theme_ids[i]) for i in fold.item_ids]
        rows.append(
            {
                "subscriber_id": fold.subscriber_id,
                "kind": KIND_BURST,
                "dedupe_key": key,
                "next_attempt_at": fold.send_at,
                "payload": {"messages": [render_fold(views, zone, window_minutes)]},
            }
        )
        rows.extend(
            {
                "subscriber_id": fold.subscriber_id,
                "item_id": item_id,
                "kind": KIND_ALERT,
                "dedupe_key": f"alert:{item_id}",
                "status": STATUS_FOLDED,
                "next_attempt_at": fold.send_at,
                "payload": {"folded_into": key},
            }
            for item_id in fold.item_ids
        )
    repo = DeliveryRepository(session)
    for start in range(0, len(rows), 500):
        await repo.enqueue(rows[start : start + 500], now)
    return plan


async def _recent_instant(
    session: AsyncSession, subscriber_ids: Sequence[int], since: datetime
) -> dict[int, int]:
    """Instant messages (alerts and summaries) each chat got or has queued since ``since``."""
    if not subscriber_ids:
        return {}
    rows = (
        await session.execute(
            select(Delivery.subscriber_id, func.count())
            .where(
                Delivery.subscriber_id.in_(list(subscriber_ids)),
                Delivery.kind.in_([KIND_ALERT, KIND_BURST]),
                Delivery.status.not_in([STATUS_FOLDED, STATUS_CANCELLED, STATUS_FAILED]),
                Delivery.created_at >= since,
            )
            .group_by(Delivery.subscriber_id)
        )
    ).all()
    return {subscriber_id: int(count) for subscriber_id, count in rows}
