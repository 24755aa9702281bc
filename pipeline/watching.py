"""Subscribers' own watched organisations: an alert to the subscriber when a new item names one
(a screening-list change or any other item), after the themes' alerts were planned in the same
transaction.

The alert goes through the same planner as theme alerts (``models.alerts.plan_alerts``: no
history from first polls, no old news, mute, quiet hours, the burst limit), each subscriber's
watches acting as a theme of their own. ``UNIQUE(subscriber_id, item_id)`` in the outbox means
a chat that already gets the item through a theme gets it once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from delivery.render import AlertView, ThemeMatch, alert_view, render_alert, render_fold
from models.alerts import BurstPolicy, ItemMatch, NewItem, SubscriptionInfo, ThemeInfo, plan_alerts
from models.db import UnitOfWork
from models.db.deliveries import NewDelivery
from models.db.items import StoreResult
from models.items import StoredItem
from models.orgwatch import OrgIndex, Watch
from models.outbox import DeliveryKind, DeliveryStatus
from models.views import WatchedOrgView

TITLE = "Your watched organisations"


class PersonalWatches:
    """Keeps the compiled index of every subscriber's watches (rebuilt when they change)."""

    def __init__(self) -> None:
        self._key: tuple[WatchedOrgView, ...] | None = None
        self._index = OrgIndex(())

    async def index(self, uow: UnitOfWork) -> OrgIndex:
        key = tuple(await uow.watched.of_active_subscribers())
        if key != self._key:
            watches = [Watch(str(o.subscriber_id), o.name, o.names) for o in key]
            self._key, self._index = key, OrgIndex(watches)
        return self._index

    async def alert(
        self,
        uow: UnitOfWork,
        result: StoreResult,
        now: datetime,
        *,
        policy: BurstPolicy,
        max_age: timedelta | None = None,
    ) -> int:
        """Plan and enqueue alerts of ``result.new`` to the subscribers whose watches they
        name; returns how many alerts were planned."""
        items = {i.id: i for i in result.new if not i.from_first_poll}
        if not items:
            return 0
        index = await self.index(uow)
        if not index.watches:
            return 0
        terms: dict[tuple[int, int], tuple[str, ...]] = {}
        for item in items.values():
            for match in index.matches(item.title, item.summary, item.fields):
                terms[(item.id, int(match.slug))] = tuple(t.term for t in match.terms)
        if not terms:
            return 0
        subscribers = await uow.subscribers.infos(sorted({s for _, s in terms}))
        recent = await uow.deliveries.recent_instant(list(subscribers), now - policy.window)
        plan = plan_alerts(
            items=[
                NewItem(i.id, i.from_first_poll, None if i.published_at_guessed else i.published_at)
                for i in items.values()
            ],
            matches=[ItemMatch(item_id, -sid) for item_id, sid in terms],
            themes={-sid: ThemeInfo(-sid, f"watch-{sid}", TITLE) for sid in subscribers},
            subscribers=subscribers,
            subscriptions=[SubscriptionInfo(sid, -sid) for sid in subscribers],
            recent_instant=recent,
            policy=policy,
            now=now,
            max_age=max_age,
        )

        def view(item: StoredItem, subscriber_id: int) -> AlertView:
            found = terms.get((item.id, subscriber_id), ())
            return alert_view(item, (ThemeMatch("", TITLE, found),))

        planned: list[NewDelivery] = []
        for alert in plan.alerts:
            zone = subscribers[alert.subscriber_id].timezone
            message = render_alert(
                view(items[alert.item_id], alert.subscriber_id), zone, buttons=False
            )
            planned.append(
                NewDelivery(
                    subscriber_id=alert.subscriber_id,
                    kind=DeliveryKind.ALERT,
                    dedupe_key=f"alert:{alert.item_id}",
                    payload={"messages": [message]},
                    item_id=alert.item_id,
                    send_at=alert.send_at,
                )
            )
        minutes = int(policy.window.total_seconds() // 60)
        for fold in plan.folds:
            zone = subscribers[fold.subscriber_id].timezone
            views = [view(items[i], fold.subscriber_id) for i in fold.item_ids]
            key = f"watch-burst:{fold.item_ids[0]}"
            planned.append(
                NewDelivery(
                    subscriber_id=fold.subscriber_id,
                    kind=DeliveryKind.BURST,
                    dedupe_key=key,
                    payload={"messages": [render_fold(views, zone, minutes)]},
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
        return len(plan.alerts) + sum(len(f.item_ids) for f in plan.folds)
