"""Subscribers' own watched organisations: which new items name an organisation a chat watches.

They are planned with the theme alerts, by the one planner (``pipeline.planning``): each
subscriber's watches act as a theme of their own that only that subscriber follows, so the
same rules hold (no history from first polls, no old news, mute and what a mute held, quiet
hours, the burst limit, one alert per event with threaded updates), and a chat that gets an
item through a theme and its own watch gets it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.db import UnitOfWork
from models.items import StoredItem
from models.orgnames import known_with
from models.orgwatch import OrgIndex, Watch

TITLE = "Your watched organisations"


@dataclass(frozen=True, slots=True)
class WatchMatch:
    """``item_id`` names an organisation ``subscriber_id`` watches (``terms``: which)."""

    item_id: int
    subscriber_id: int
    terms: tuple[str, ...]


class PersonalWatches:
    """Keeps the compiled index of every subscriber's watches (rebuilt when they change)."""

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._index = OrgIndex(())

    async def index(self, uow: UnitOfWork) -> OrgIndex:
        rows = tuple(await uow.watched.of_active_subscribers())
        known = await uow.known.edits()
        if (rows, known) != self._key:
            watches = [Watch(str(o.subscriber_id), o.name, o.names) for o in rows]
            self._key, self._index = (rows, known), OrgIndex(watches, known_with(known))
        return self._index

    async def matches(self, uow: UnitOfWork, items: Sequence[StoredItem]) -> list[WatchMatch]:
        """The new items that name an organisation some active subscriber watches."""
        if not items:
            return []
        index = await self.index(uow)
        if not index.watches:
            return []
        return [
            WatchMatch(item.id, int(match.slug), tuple(t.term for t in match.terms))
            for item in items
            for match in index.matches(item.title, item.summary, item.fields)
        ]
