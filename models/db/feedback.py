"""Feedback on alerts: one verdict per (subscriber, item, theme), and the counts editors see and
training reads. Nothing here returns who said what to anyone but the trainer."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.tables import Delivery, Feedback, Item, ItemTheme, Source, Subscription, Theme
from models.feedback import UP, AlertVerdicts, Vote
from models.outbox import DeliveryKind, DeliveryStatus, payload_from_json


def _with_match(*columns: Any) -> Select[Any]:
    """``columns`` over every verdict joined to its theme, its item's source and how the theme
    matches the item now (none when it no longer does)."""
    return (
        select(*columns)
        .select_from(Feedback)
        .join(Theme, Theme.id == Feedback.theme_id)
        .join(Item, Item.id == Feedback.item_id)
        .join(Source, Source.id == Item.source_id)
        .outerjoin(
            ItemTheme,
            (ItemTheme.item_id == Feedback.item_id) & (ItemTheme.theme_id == Feedback.theme_id),
        )
    )


@dataclass(frozen=True, slots=True)
class ItemVotes:
    """How many subscribers said 👍 and 👎 (with "wrong theme") on one item for one theme."""

    item_id: int
    slug: str
    title: str
    summary: str
    ups: int
    downs: int


@dataclass(frozen=True, slots=True)
class ThemeRef:
    id: int
    slug: str
    title: str
    sure: bool | None = None  # the match was sure when the alert was planned (None: unknown)


class FeedbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def matched_theme(self, item_id: int, theme_id: int) -> ThemeRef | None:
        """The theme, if it is enabled and the item still matches it."""
        row = (
            await self.session.execute(
                select(Theme.id, Theme.slug, Theme.title)
                .join(ItemTheme, ItemTheme.theme_id == Theme.id)
                .where(
                    ItemTheme.item_id == item_id,
                    Theme.id == theme_id,
                    Theme.enabled.is_(True),
                )
            )
        ).first()
        return None if row is None else ThemeRef(row[0], row[1], row[2])

    async def alert_themes(self, item_id: int, subscriber_id: int) -> list[ThemeRef]:
        """The themes this subscriber's alert of the item named that the item still matches,
        as its delivery recorded them, each with how sure the match was when the alert was
        planned. For an alert planned before deliveries recorded its themes, or whose row is
        gone (purged by retention), the themes the item matches and the subscriber follows now
        (all it matches when it follows none of them)."""
        stored = await self.session.scalar(
            select(Delivery.payload).where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.item_id == item_id,
                Delivery.kind == DeliveryKind.ALERT,
                Delivery.status != DeliveryStatus.FOLDED,
            )
        )
        alert = payload_from_json(stored) if stored is not None else None
        rows = (
            await self.session.execute(
                select(Theme.id, Theme.slug, Theme.title, Subscription.id.is_not(None))
                .join(ItemTheme, ItemTheme.theme_id == Theme.id)
                .outerjoin(
                    Subscription,
                    (Subscription.theme_id == Theme.id)
                    & (Subscription.subscriber_id == subscriber_id),
                )
                .where(ItemTheme.item_id == item_id, Theme.enabled.is_(True))
                .order_by(Theme.slug)
            )
        ).all()
        if alert is not None and "themes" in alert:
            named, sure = set(alert["themes"]), alert.get("sure")
            return [
                ThemeRef(r[0], r[1], r[2], None if sure is None else r[0] in sure)
                for r in rows
                if r[0] in named
            ]
        followed = [ThemeRef(r[0], r[1], r[2]) for r in rows if r[3]]
        return followed or [ThemeRef(r[0], r[1], r[2]) for r in rows]

    async def record(
        self,
        *,
        subscriber_id: int,
        user_id: int | None,
        item_id: int,
        theme_ids: Sequence[int],
        verdict: str,
        now: datetime,
        sure: Mapping[int, bool | None] | None = None,
    ) -> int:
        """Store ``verdict`` for each theme (replacing an earlier one), with whether each
        match was sure when alerted (``sure`` by theme id; missing: unknown). Returns how
        many verdicts changed (0: the subscriber had said exactly this already)."""
        sure = sure or {}
        existing = {
            row.theme_id: row
            for row in (
                await self.session.scalars(
                    select(Feedback).where(
                        Feedback.subscriber_id == subscriber_id,
                        Feedback.item_id == item_id,
                        Feedback.theme_id.in_(list(theme_ids)),
                    )
                )
            ).all()
        }
        changed = 0
        for theme_id in theme_ids:
            row = existing.get(theme_id)
            if row is None:
                self.session.add(
                    Feedback(
                        subscriber_id=subscriber_id,
                        item_id=item_id,
                        theme_id=theme_id,
                        verdict=verdict,
                        sure=sure.get(theme_id),
                        user_id=user_id,
                        created_at=now,
                        updated_at=now,
                    )
                )
                changed += 1
            elif row.verdict != verdict:
                row.verdict, row.user_id, row.updated_at = verdict, user_id, now
                changed += 1
            if row is not None and row.sure is None:
                row.sure = sure.get(theme_id)
        await self.session.flush()
        return changed

    async def votes(self) -> list[Vote]:
        """Every verdict with how its theme matched the item and the item's source (for
        ``models.feedback.tally``)."""
        rows = (
            await self.session.execute(
                _with_match(
                    Theme.slug, Feedback.verdict, ItemTheme.layer, ItemTheme.rules, Source.name
                )
            )
        ).all()
        return [
            Vote(
                slug=r[0],
                verdict=r[1],
                layer=r[2] or "rules",
                rules=tuple(x for x in (r[3] or []) if isinstance(x, str)),
                source=r[4],
            )
            for r in rows
        ]

    async def alert_verdicts(
        self, sources: Collection[str] | None = None, since: datetime | None = None
    ) -> list[AlertVerdicts]:
        """Per judged (item, theme) of these sources (by name; every source with None): how
        many subscribers said 👍 and how many 👎 or "wrong theme" (verdicts given or changed
        at ``since`` or later), with how the theme matches the item now; a verdict on a match
        that no longer exists (a rule fixed, the item reclassified) says nothing; with whether
        the match was sure when alerted, where that was recorded (for
        ``models.feedback.unsure_record``)."""
        if sources is not None and not sources:
            return []
        ups = func.sum(case((Feedback.verdict == UP, 1), else_=0))
        downs = func.sum(case((Feedback.verdict == UP, 0), else_=1))
        # sure when alerted: 1 or 0 as recorded (one alert's verdicts agree); NULL if none was
        sure = func.max(case((Feedback.sure.is_(True), 1), (Feedback.sure.is_(False), 0)))
        rows = (
            await self.session.execute(
                _with_match(Source.name, Theme.slug, ItemTheme.layer, ups, downs, sure)
                .where(
                    ItemTheme.item_id.is_not(None),
                    Source.name.in_(sorted(sources)) if sources is not None else true(),
                    Feedback.updated_at >= since if since is not None else true(),
                )
                .group_by(
                    Feedback.item_id, Feedback.theme_id, Source.name, Theme.slug, ItemTheme.layer
                )
            )
        ).all()
        return [
            AlertVerdicts(
                r[0],
                r[1],
                r[2] or "rules",
                int(r[3]),
                int(r[4]),
                None if r[5] is None else r[5] == 1,
            )
            for r in rows
        ]

    async def item_votes(self) -> list[ItemVotes]:
        """Per (item, theme): how many subscribers said 👍 and how many 👎 or "wrong theme"."""
        ups = func.sum(case((Feedback.verdict == UP, 1), else_=0))
        downs = func.sum(case((Feedback.verdict == UP, 0), else_=1))
        rows = (
            await self.session.execute(
                select(Feedback.item_id, Theme.slug, Item.title, Item.summary, ups, downs)
                .join(Theme, Theme.id == Feedback.theme_id)
                .join(Item, Item.id == Feedback.item_id)
                .group_by(Feedback.item_id, Theme.slug, Item.title, Item.summary)
                .order_by(Feedback.item_id, Theme.slug)
            )
        ).all()
        return [ItemVotes(r[0], r[1], r[2], r[3] or "", int(r[4]), int(r[5])) for r in rows]

    async def latest_at(self) -> datetime | None:
        """When feedback last changed (None: never)."""
        value: datetime | None = await self.session.scalar(select(func.max(Feedback.updated_at)))
        return value
