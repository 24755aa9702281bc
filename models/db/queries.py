"""Read-only queries behind the bot's commands. They return plain frozen dataclasses.

The caller owns the session. Text search is a case-insensitive substring match over title and
summary (``LIKE`` on SQLite, ``ILIKE`` on PostgreSQL) with ``%`` and ``_`` escaped, so it
works for Chinese, which has no spaces to split words on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.tables import (
    STATUS_PENDING,
    Delivery,
    Item,
    ItemTheme,
    Source,
    Subscriber,
    Subscription,
    Theme,
)

REGULATORY_KINDS = {"us": ("federal_register",), "cn": ("cac",)}
LIKE_ESCAPE = "\\"


@dataclass(frozen=True, slots=True)
class ItemRow:
    """An item as a reply shows it."""

    id: int
    title: str
    url: str | None
    source_name: str
    source_kind: str
    published_at: datetime
    themes: tuple[str, ...] = ()
    document_type: str | None = None
    effective_on: str | None = None
    comments_close_on: str | None = None


@dataclass(frozen=True, slots=True)
class Deadline:
    """A date in the coming days: an effective date or a comment deadline of a document."""

    on: date
    what: str  # "effective" or "comments close"
    item: ItemRow


@dataclass(frozen=True, slots=True)
class SourceHealth:
    name: str
    kind: str
    url: str
    enabled: bool
    origin: str
    last_success_at: datetime | None
    last_new_item_at: datetime | None
    consecutive_failures: int
    last_error: str | None

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0


@dataclass(frozen=True, slots=True)
class Stats:
    items: int
    items_last_day: int
    matches: int
    deliveries: dict[str, int]
    subscribers_active: int
    subscribers_inactive: int
    subscriptions: int
    sources_enabled: int
    sources_failing: int


def escape_like(text: str) -> str:
    """Escape ``%``, ``_`` and the escape character itself for a LIKE pattern."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def _text(fields: dict[str, Any], key: str) -> str | None:
    value = fields.get(key)
    return str(value) if value not in (None, "") else None


def _item_row(item: Item, source: Source, themes: Sequence[str] = ()) -> ItemRow:
    fields = item.fields or {}
    return ItemRow(
        id=item.id,
        title=item.title,
        url=item.url,
        source_name=source.name,
        source_kind=source.kind,
        published_at=item.published_at,
        themes=tuple(themes),
        document_type=_text(fields, "document_type"),
        effective_on=_text(fields, "effective_on"),
        comments_close_on=_text(fields, "comments_close_on"),
    )


async def _themes_of(session: AsyncSession, item_ids: Sequence[int]) -> dict[int, list[str]]:
    if not item_ids:
        return {}
    result = await session.execute(
        select(ItemTheme.item_id, Theme.slug)
        .join(Theme, Theme.id == ItemTheme.theme_id)
        .where(ItemTheme.item_id.in_(list(item_ids)))
        .order_by(Theme.slug)
    )
    themes: dict[int, list[str]] = {}
    for item_id, slug in result.all():
        themes.setdefault(item_id, []).append(slug)
    return themes


async def _rows(session: AsyncSession, stmt: Any) -> list[ItemRow]:
    pairs = (await session.execute(stmt)).all()
    themes = await _themes_of(session, [item.id for item, _ in pairs])
    return [_item_row(item, source, themes.get(item.id, ())) for item, source in pairs]


async def latest_items(
    session: AsyncSession, theme_slugs: Sequence[str], limit: int
) -> list[ItemRow]:
    """The newest items matched to any of ``theme_slugs``, newest first."""
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
        .where(Item.id.in_(matched))
        .order_by(Item.published_at.desc(), Item.id.desc())
        .limit(limit)
    )
    return await _rows(session, stmt)


async def policy_documents(session: AsyncSession, region: str | None, limit: int) -> list[ItemRow]:
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
    return await _rows(session, stmt)


async def search_items(session: AsyncSession, words: Sequence[str], limit: int) -> list[ItemRow]:
    """Items whose title or summary contains every one of ``words`` (case-insensitive)."""
    conditions: list[ColumnElement[bool]] = []
    for word in words:
        pattern = f"%{escape_like(word)}%"
        conditions.append(
            or_(
                Item.title.ilike(pattern, escape=LIKE_ESCAPE),
                Item.summary.ilike(pattern, escape=LIKE_ESCAPE),
            )
        )
    if not conditions:
        return []
    stmt = (
        select(Item, Source)
        .join(Source, Source.id == Item.source_id)
        .where(and_(*conditions))
        .order_by(Item.published_at.desc(), Item.id.desc())
        .limit(limit)
    )
    return await _rows(session, stmt)


def _parse_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


async def upcoming_deadlines(
    session: AsyncSession, today: date, days: int = 30, *, lookback_days: int = 400
) -> list[Deadline]:
    """Effective dates and comment deadlines from ``today`` to ``today + days``, soonest first.

    Documents published in the last ``lookback_days`` days are considered; dates are read from
    the ``fields`` of regulatory items (ISO ``YYYY-MM-DD``), and unreadable dates are skipped.
    """
    kinds = tuple(k for v in REGULATORY_KINDS.values() for k in v)
    since = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=lookback_days)
    stmt = (
        select(Item, Source)
        .join(Source, Source.id == Item.source_id)
        .where(Source.kind.in_(kinds), Item.published_at >= since)
        .order_by(Item.published_at.desc())
        .limit(5000)
    )
    end = today + timedelta(days=days)
    deadlines: list[Deadline] = []
    for row in await _rows(session, stmt):
        for what, value in (
            ("effective", row.effective_on),
            ("comments close", row.comments_close_on),
        ):
            on = _parse_date(value)
            if on is not None and today <= on <= end:
                deadlines.append(Deadline(on=on, what=what, item=row))
    deadlines.sort(key=lambda d: (d.on, d.item.id, d.what))
    return deadlines


async def source_health(session: AsyncSession) -> list[SourceHealth]:
    rows = (await session.scalars(select(Source).order_by(Source.name))).all()
    return [
        SourceHealth(
            name=s.name,
            kind=s.kind,
            url=s.url,
            enabled=s.enabled,
            origin=s.origin,
            last_success_at=s.last_success_at,
            last_new_item_at=s.last_new_item_at,
            consecutive_failures=s.consecutive_failures,
            last_error=s.last_error,
        )
        for s in rows
    ]


async def stats(session: AsyncSession, now: datetime) -> Stats:
    async def count(stmt: Any) -> int:
        return int(await session.scalar(stmt) or 0)

    by_status = (
        await session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
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


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    pending: int
    oldest_seconds: float  # age of the oldest pending delivery (0 when none)


async def outbox_backlog(session: AsyncSession, now: datetime) -> OutboxBacklog:
    """How many deliveries wait to be sent, and how long the oldest has waited."""
    row = (
        await session.execute(
            select(func.count(), func.min(Delivery.created_at)).where(
                Delivery.status == STATUS_PENDING
            )
        )
    ).one()
    count = int(row[0] or 0)
    oldest: datetime | None = row[1]  # min() keeps the column's type: aware UTC
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return OutboxBacklog(pending=count, oldest_seconds=age)
