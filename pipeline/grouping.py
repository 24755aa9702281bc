"""The event-grouping hooks: every new item joins the event it reports (or starts one).

New items of a poll are grouped inside the poll's transaction, before alerts are planned (they
are planned per event). A source's first poll is history, never alerted: its items are left
for ``group_backlog``, a tick that groups ungrouped items oldest first in batches, so adding a
source or starting on an empty database does not hold the poll (grouping costs milliseconds an
item) nor the lock every poll takes. Until then such an item is an event of its own.

Workers sharing PostgreSQL take turns here (a transaction-level lock): two items of one story
stored at the same moment by two workers would otherwise each start an event.
"""

from __future__ import annotations

from datetime import datetime

from models.db import Database, UnitOfWork
from models.db.items import StoreResult

BACKLOG_BATCH = 50  # history items grouped per transaction (the lock is released between)
BACKLOG_ROUNDS = 20  # transactions per tick


async def group_new_items(uow: UnitOfWork, result: StoreResult, now: datetime) -> None:
    fresh = [item for item in result.new if not item.from_first_poll]
    if not fresh:
        return
    await uow.serialize("events")
    await uow.events.assign(fresh, now)


async def group_backlog(
    db: Database, now: datetime, *, batch: int = BACKLOG_BATCH, rounds: int = BACKLOG_ROUNDS
) -> int:
    """Group items that are in no event yet, oldest first, ``batch`` per transaction for at
    most ``rounds`` transactions; how many were grouped."""
    done = 0
    for _ in range(rounds):
        async with db.transaction() as uow:
            await uow.serialize("events")
            items = await uow.events.ungrouped(batch)
            if items:
                await uow.events.assign(items, now)
        done += len(items)
        if len(items) < batch:
            break
    return done
