"""The reminder tick: plan the reminders of documents' dates, then send the due ones through
the outbox.

Planning reads the regulatory documents whose effective date or comment deadline falls in the
next ``HORIZON_DAYS`` and the subscribers of the themes they matched, and keeps a ``reminders``
row per (chat, document, date, lead) (``models.reminders``; unique, so re-planning adds nothing).
Sending claims due rows (``SKIP LOCKED`` on PostgreSQL), renders each in the chat's zone and
enqueues it with the dedupe key ``reminder:<item>:<what>:<date>:<lead>``: a reminder is never
sent twice, even by two workers. A chat that left, stopped following the themes, or is muted
is not reminded; quiet hours hold the message until they end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from delivery.calendar import render_reminder
from models.db import Database
from models.db.deliveries import NewDelivery
from models.localtime import quiet_hours_end
from models.outbox import DeliveryKind, with_topic
from models.reminders import LEADS, days_left, plan_reminders, still_worth_sending

HORIZON_DAYS = max(LEADS) + 2  # a week's reminders, and a day's slack
BATCH = 200


@dataclass(slots=True)
class ReminderReport:
    planned: int = 0
    sent: int = 0
    dropped: int = 0


async def run_reminder_tick(db: Database, now: datetime) -> ReminderReport:
    report = ReminderReport()
    today = now.date()
    async with db.transaction() as uow:
        documents = await uow.reminders.dated_documents(
            today - timedelta(days=1), today + timedelta(days=HORIZON_DAYS)
        )
        theme_ids = sorted({t for d in documents for t in d.theme_ids})
        subscribers, subscriptions = await uow.subscribers.audience(theme_ids)
        audience: dict[int, list[tuple[int, str]]] = {}
        for sub in subscriptions:
            info = subscribers.get(sub.subscriber_id)
            if info is not None:
                audience.setdefault(sub.theme_id, []).append((info.id, info.timezone))
        report.planned = await uow.reminders.schedule(plan_reminders(documents, audience, now), now)
    while True:
        async with db.transaction() as uow:
            due = await uow.reminders.claim_due(now, BATCH)
            outcomes: dict[int, str] = {}
            planned: list[NewDelivery] = []
            for r in due:
                if not r.active or not r.still_subscribed:
                    outcomes[r.id] = "cancelled"
                elif (r.muted_until is not None and r.muted_until > now) or not still_worth_sending(
                    r.on, r.lead_days, r.timezone, now
                ):
                    outcomes[r.id] = "skipped"
                else:
                    outcomes[r.id] = "sent"
                    message = render_reminder(
                        r.item, r.what, r.on, days_left(r.on, r.timezone, now)
                    )
                    planned.append(
                        NewDelivery(
                            subscriber_id=r.subscriber_id,
                            kind=DeliveryKind.REMINDER,
                            dedupe_key=f"reminder:{r.item.id}:{r.what}:{r.on}:{r.lead_days}",
                            payload=with_topic({"messages": [message]}, r.topic),
                            send_at=quiet_hours_end(r.quiet_hours, r.timezone, now),
                        )
                    )
            await uow.deliveries.enqueue(planned, now)
            await uow.reminders.finish(outcomes, now)
        report.sent += sum(1 for s in outcomes.values() if s == "sent")
        report.dropped += sum(1 for s in outcomes.values() if s != "sent")
        if len(due) < BATCH:
            return report
