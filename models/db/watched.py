"""Watched organisations: a theme's (editors) or one subscriber's, with their aliases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.tables import Subscriber, Theme, WatchedOrg
from models.views import WatchedOrgView

MAX_ALIASES = 20


def _view(row: WatchedOrg, slug: str | None = None) -> WatchedOrgView:
    aliases = tuple(a for a in row.aliases or [] if isinstance(a, str))
    return WatchedOrgView(
        id=row.id,
        name=row.name,
        aliases=aliases,
        theme_id=row.theme_id,
        theme_slug=slug,
        subscriber_id=row.subscriber_id,
    )


def _is(row: WatchedOrg, name: str) -> bool:
    wanted = name.casefold().strip()
    aliases = row.aliases or []
    return any(isinstance(n, str) and n.casefold() == wanted for n in [row.name, *aliases])


class WatchedOrgRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _owned(self, theme_id: int | None, subscriber_id: int | None) -> list[WatchedOrg]:
        stmt = select(WatchedOrg).order_by(WatchedOrg.name)
        if theme_id is not None:
            stmt = stmt.where(WatchedOrg.theme_id == theme_id)
        else:
            stmt = stmt.where(WatchedOrg.subscriber_id == subscriber_id)
        return list((await self.session.scalars(stmt)).all())

    async def add(
        self,
        *,
        name: str,
        aliases: list[str],
        theme_id: int | None = None,
        subscriber_id: int | None = None,
        user_id: int | None,
        now: datetime,
    ) -> tuple[WatchedOrgView, bool]:
        """Watch ``name`` (True) or, when it is watched already under that name or an alias,
        add the new aliases to it (False)."""
        if (theme_id is None) == (subscriber_id is None):
            msg = "a watch belongs to a theme or to a subscriber"
            raise ValueError(msg)
        for row in await self._owned(theme_id, subscriber_id):
            if _is(row, name) or any(_is(row, a) for a in aliases):
                known = {n.casefold() for n in [row.name, *row.aliases]}
                extra = [a for a in [name, *aliases] if a.casefold() not in known]
                row.aliases = [*row.aliases, *extra][:MAX_ALIASES]
                await self.session.flush()
                return _view(row), False
        row = WatchedOrg(
            theme_id=theme_id,
            subscriber_id=subscriber_id,
            name=name,
            aliases=aliases[:MAX_ALIASES],
            created_by=user_id,
            created_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return _view(row), True

    async def remove(
        self, *, name: str, theme_id: int | None = None, subscriber_id: int | None = None
    ) -> WatchedOrgView | None:
        """Stop watching the organisation called ``name`` (or one of its aliases)."""
        for row in await self._owned(theme_id, subscriber_id):
            if _is(row, name):
                view = _view(row)
                await self.session.delete(row)
                await self.session.flush()
                return view
        return None

    async def of_theme(self, theme_id: int) -> list[WatchedOrgView]:
        return [_view(r) for r in await self._owned(theme_id, None)]

    async def of_subscriber(self, subscriber_id: int) -> list[WatchedOrgView]:
        return [_view(r) for r in await self._owned(None, subscriber_id)]

    async def of_enabled_themes(self) -> list[WatchedOrgView]:
        """Every watch of an enabled theme, with the theme's slug, in a stable order."""
        rows = await self.session.execute(
            select(WatchedOrg, Theme.slug)
            .join(Theme, Theme.id == WatchedOrg.theme_id)
            .where(Theme.enabled.is_(True))
            .order_by(WatchedOrg.id)
        )
        return [_view(row, slug) for row, slug in rows.all()]

    async def of_active_subscribers(self) -> list[WatchedOrgView]:
        """Every subscriber's own watches (of active chats), in a stable order."""
        rows = await self.session.scalars(
            select(WatchedOrg)
            .join(Subscriber, Subscriber.id == WatchedOrg.subscriber_id)
            .where(Subscriber.active.is_(True))
            .order_by(WatchedOrg.id)
        )
        return [_view(row) for row in rows.all()]
