"""The event-grouping hook: every new item of a poll joins the event it reports (or starts one),
inside the poll's transaction, before alerts are planned (they are planned per event).

Workers sharing PostgreSQL take turns here (a transaction-level lock): two items of one story
stored at the same moment by two workers would otherwise each start an event.
"""

from __future__ import annotations

from datetime import datetime

from models.db import UnitOfWork
from models.db.items import StoreResult


async def group_new_items(uow: UnitOfWork, result: StoreResult, now: datetime) -> None:
    if not result.new:
        return
    await uow.serialize("events")
    await uow.events.assign(result.new, now)
