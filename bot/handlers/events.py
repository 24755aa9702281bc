"""``/event``: an event's timeline for everyone; merging and splitting events for editors.

Grouping is automatic and explained (each item carries the reason it joined its event); when it
is wrong, an editor moves items: ``/event merge <a> <b>`` folds event b into a, ``/event split
<item>`` takes one item out into an event of its own. Both are audited and stick: a split item
is not regrouped by its keys again.
"""

from __future__ import annotations

from bot import replies
from bot.commands import EDITOR
from bot.handlers.base import (
    Call,
    RefusedError,
    Reply,
    UsageError,
    allowed,
    parse_number,
    role_of,
)


async def cmd_event(call: Call) -> Reply:
    args = call.args
    if len(args) == 1:
        return await _show(call, parse_number(args[0], "an event number"))
    sub = args[0].lower() if args else ""
    if sub not in {"merge", "split"}:
        raise UsageError("Give an event number, or merge or split.")
    if not allowed(await role_of(call.ctx, call.uow, call.user), EDITOR):
        raise RefusedError(f"Sorry, /event {sub} is only for editors and admins.")
    if sub == "merge" and len(args) == 3:
        return await _merge(call, parse_number(args[1], "an event number"), args[2])
    if sub == "split" and len(args) == 2:
        return await _split(call, parse_number(args[1], "an item number"))
    raise UsageError(f"/event {sub} takes {'two event numbers' if sub == 'merge' else 'an item'}.")


async def _show(call: Call, number: int) -> Reply:
    event_id = await call.uow.events.resolve(number)
    if event_id is None:
        raise UsageError(f"There is no event {number}.")
    views = await call.uow.events.views([event_id])
    first, *more = replies.event_reply(views[event_id], await call.zone())
    note = f"Event {number} was merged into event {event_id}.\n" if event_id != number else ""
    return Reply(note + first, more=tuple(more))


async def _merge(call: Call, into: int, other_text: str) -> Reply:
    other = parse_number(other_text, "an event number")
    target = await call.uow.events.resolve(into)
    source = await call.uow.events.resolve(other)
    if target is None or source is None:
        missing = into if target is None else other
        raise UsageError(f"There is no event {missing}.")
    if target == source:
        raise UsageError(f"Events {into} and {other} are already one event ({target}).")
    moved = await call.uow.events.merge(target, source, call.now)
    await call.audit(
        "event.merge", "event", f"{target}<-{source}", {"event": source}, {"event": target}
    )
    return Reply(f"Event {source} merged into event {target} ({moved} items moved).")


async def _split(call: Call, item_id: int) -> Reply:
    result = await call.uow.events.split(item_id, call.now)
    if result is None:
        raise UsageError(f"There is no item {item_id} in any event.")
    old, new = result
    await call.audit("event.split", "item", str(item_id), {"event": old}, {"event": new})
    return Reply(f"Item {item_id} moved out of event {old} into a new event {new}.")
