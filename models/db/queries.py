"""Read-only queries behind the bot's commands and the digests. They return plain frozen
dataclasses (``models.views``, ``models.digests``).

Text search is a case-insensitive substring match over title and summary (``LIKE`` on SQLite,
``ILIKE`` on PostgreSQL) with ``%`` and ``_`` escaped, so it works for Chinese, which has no
spaces to split words on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.items import chunks
from models.db.matches import similar_to
from models.db.tables import (
    Delivery,
    Item,
    ItemEvent,
    ItemTheme,
    Source,
    Subscriber,
    Subscription,
    Theme,
)
from models.digests import DigestEntry, parse_fact_date
from models.fields import fields_from_json
from models.views import Deadline, ItemRow, Stats

# The source kinds of regulatory documents (``/policy``, ``/upcoming``), by region; a document
# on public inspection is one before it is printed.
REGULATORY_KINDS = {"us": ("federal_register", "public_inspection"), "cn": ("cac",)}
LIKE_ESCAPE = "\\"
DEADLINE_LOOKBACK = timedelta(days=400)
DIGEST_ROWS = 5000


def escape_like(text: str) -> str:
    """Escape ``%``, ``_`` and the escape character itself for a LIKE pattern."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def item_row(item: Item, source: Source, themes: Sequence[str] = ()) -> ItemRow:
    return ItemRow(
        id=item.id,
        title=item.title,
        url=item.url,
        source_name=source.name,
        source_kind=source.kind,
        published_at=item.published_at,
        date_only=item.published_date_only or item.published_at_guessed,
        themes=tuple(themes),
        fields=fields_from_json(item.fields),
    )


class Queries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _themes_of(self, item_ids: Sequence[int]) -> dict[int, list[str]]:
        themes: dict[int, list[str]] = {}
        for chunk in chunks(list(item_ids)):
            result = await self.session.execute(
                select(ItemTheme.item_id, Theme.slug)
                .join(Theme, Theme.id == ItemTheme.theme_id)
                .where(ItemTheme.item_id.in_(chunk))
                .order_by(Theme.slug)
            )
            for item_id, slug in result.all():
                themes.setdefault(item_id, []).append(slug)
        return themes

    async def _rows(self, stmt: Any) -> list[ItemRow]:
        pairs = (await self.session.execute(stmt)).all()
        themes = await self._themes_of([item.id for item, _ in pairs])
        return [item_row(item, source, themes.get(item.id, ())) for item, source in pairs]

    async def items(self, item_ids: Sequence[int]) -> dict[int, ItemRow]:
        """These items, by id (those that still exist)."""
        found: dict[int, ItemRow] = {}
        for chunk in chunks(list(item_ids)):
            stmt = (
                select(Item, Source)
                .join(Source, Source.id == Item.source_id)
                .where(Item.id.in_(chunk))
            )
            found.update({row.id: row for row in await self._rows(stmt)})
        return found

    async def latest_items(
        self, theme_slugs: Sequence[str], limit: int, *, since: datetime | None = None
    ) -> list[ItemRow]:
        """The newest items matched to any of ``theme_slugs`` (published at ``since`` or
        later, if given), newest first."""
        if not theme_slugs:
            return []
        matched = (
            select(ItemTheme.item_id)
            .join(Theme, Theme.id == ItemTheme.theme_id)
            .where(Theme.slug.in_(list(theme_slugs)))
        )
        stmt = (
            select(Item, Source)
            .join(Source, Source.id == Item.source_id)
            .where(Item.id.in_(matched), *([Item.published_at >= since] if since else []))
            .order_by(Item.published_at.desc(), Item.id.desc())
            .limit(limit)
        )
        return await self._rows(stmt)

    async def policy_documents(self, region: str | None, limit: int) -> list[ItemRow]:
        """The newest regulatory documents (``region`` "us", "cn" or None for both)."""
        kinds = (
            REGULATORY_KINDS[region]
            if region
            else tuple(k for v in REGULATORY_KINDS.values() for k in v)
        )
        stmt = (
            select(Item, Source)
            .join(Source, Source.id == Item.source_id)
            .where(Source.kind.in_(kinds))
            .order_by(Item.published_at.desc(), Item.id.desc())
            .limit(limit)
        )
        return await self._rows(stmt)

    async def search_items(self, words: Sequence[Sequence[str]], limit: int) -> list[ItemRow]:
        """Items whose title or summary contains every one of ``words`` (case-insensitive),
        each word given as its alternatives (the same word in Simplified and Traditional)."""
        conditions: list[ColumnElement[bool]] = []
        for alternatives in words:
            matches: list[ColumnElement[bool]] = []
            for word in alternatives:
                pattern = f"%{escape_like(word)}%"
                matches.append(Item.title.ilike(pattern, escape=LIKE_ESCAPE))
                matches.append(Item.summary.ilike(pattern, escape=LIKE_ESCAPE))
            if matches:
                conditions.append(or_(*matches))
        if not conditions:
            return []
        stmt = (
            select(Item, Source)
            .join(Source, Source.id == Item.source_id)
            .where(and_(*conditions))
            .order_by(Item.published_at.desc(), Item.id.desc())
            .limit(limit)
        )
        return await self._rows(stmt)

    async def upcoming_deadlines(self, today: date, days: int = 30) -> list[Deadline]:
        """Effective dates and comment deadlines from ``today`` to ``today + days``, soonest
        first, of regulatory documents published in the last ``DEADLINE_LOOKBACK``."""
        kinds = tuple(k for v in REGULATORY_KINDS.values() for k in v)
        since = datetime(today.year, today.month, today.day, tzinfo=UTC) - DEADLINE_LOOKBACK
        stmt = (
            select(Item, Source)
            .join(Source, Source.id == Item.source_id)
            .where(Source.kind.in_(kinds), Item.published_at >= since)
            .order_by(Item.published_at.desc())
            .limit(5000)
        )
        end = today + timedelta(days=days)
        deadlines: list[Deadline] = []
        for row in await self._rows(stmt):
            for what, value in (
                ("effective", row.fields.get("effective_on")),
                ("comments close", row.fields.get("comments_close_on")),
            ):
                on = parse_fact_date(value)
                if on is not None and today <= on <= end:
                    deadlines.append(Deadline(on=on, what=what, item=row))
        deadlines.sort(key=lambda d: (d.on, d.item.id, d.what))
        return deadlines

    async def digest_entries(
        self,
        theme_ids: Sequence[int],
        *,
        after: datetime,
        until: datetime,
        regulatory_only: bool = False,
    ) -> list[DigestEntry]:
        """Items these themes matched in ``(after, until]`` (history from first polls left
        out), newest match first; ``regulatory_only``: documents of regulatory sources alone
        (the ones with dates to come), so a busy news month does not crowd them out."""
        if not theme_ids:
            return []
        kinds = [k for v in REGULATORY_KINDS.values() for k in v] if regulatory_only else None
        rows = (
            await self.session.execute(
                select(
                    ItemTheme.item_id,
                    ItemTheme.theme_id,
                    ItemTheme.matched_at,
                    ItemTheme.layer,
                    ItemTheme.model,
                    ItemEvent.event_id,
                    Item,
                    Source,
                )
                .join(Item, Item.id == ItemTheme.item_id)
                .join(Source, Source.id == Item.source_id)
                .outerjoin(ItemEvent, ItemEvent.item_id == Item.id)
                .where(
                    ItemTheme.theme_id.in_(list(theme_ids)),
                    ItemTheme.matched_at > after,
                    ItemTheme.matched_at <= until,
                    Item.from_first_poll.is_(False),
                    *([Source.kind.in_(kinds)] if kinds is not None else []),
                )
                .order_by(ItemTheme.matched_at.desc())
                .limit(DIGEST_ROWS)
            )
        ).all()
        return [
            DigestEntry(
                item_id=r.item_id,
                theme_id=r.theme_id,
                matched_at=r.matched_at,
                item=item_row(r.Item, r.Source),
                event_id=r.event_id,
                layer=r.layer,
                similar_to=similar_to(r.model) if r.layer == "model" else None,
            )
            for r in rows
        ]

    async def stats(self, now: datetime) -> Stats:
        async def count(stmt: Any) -> int:
            return int(await self.session.scalar(stmt) or 0)

        by_status = (
            await self.session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            )
        ).all()
        return Stats(
            items=await count(select(func.count()).select_from(Item)),
            items_last_day=await count(
                select(func.count())
                .select_from(Item)
                .where(Item.first_seen_at >= now - timedelta(days=1))
            ),
            matches=await count(select(func.count()).select_from(ItemTheme)),
            deliveries={str(status): int(n) for status, n in sorted(by_status)},
            subscribers_active=await count(
                select(func.count()).select_from(Subscriber).where(Subscriber.active.is_(True))
            ),
            subscribers_inactive=await count(
                select(func.count()).select_from(Subscriber).where(Subscriber.active.is_(False))
            ),
            subscriptions=await count(select(func.count()).select_from(Subscription)),
            sources_enabled=await count(
                select(func.count()).select_from(Source).where(Source.enabled.is_(True))
            ),
            sources_failing=await count(
                select(func.count())
                .select_from(Source)
                .where(Source.enabled.is_(True), Source.consecutive_failures > 0)
            ),
        )
