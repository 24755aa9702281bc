"""Themes and their watchlists (rule text), from the config file and from the chat.

Rows carry ``origin`` (``config`` or ``chat``): seeding updates only ``config`` rows; a rule
removed in chat stays as a disabled tombstone so the file cannot bring it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.configdoc import SyncReport
from models.db.tables import Theme, ThemeRule
from models.sources import ORIGIN_CHAT, ORIGIN_CONFIG
from models.themes import ThemeSpec
from models.views import RuleView, ThemeView


class ThemeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sync_from_config(self, specs: Sequence[ThemeSpec], now: datetime) -> SyncReport:
        """Upsert declared themes by slug and their watchlists.

        A theme edited in chat (origin 'chat') keeps its title, description and priority.
        Rules added in chat stay; rules removed in chat stay removed (disabled tombstones);
        config rules that left the file are deleted.
        """
        report = SyncReport()
        themes = {t.slug: t for t in (await self.session.scalars(select(Theme))).all()}
        for spec in specs:
            theme = themes.get(spec.slug)
            changed = False
            if theme is None:
                theme = Theme(
                    slug=spec.slug,
                    title=spec.title,
                    description=spec.description,
                    priority=spec.priority,
                    enabled=spec.enabled,
                    origin=ORIGIN_CONFIG,
                    created_at=now,
                    updated_at=now,
                )
                self.session.add(theme)
                await self.session.flush()
                report.created.append(spec.slug)
            elif theme.origin == ORIGIN_CONFIG:
                wanted = {
                    "title": spec.title,
                    "description": spec.description,
                    "priority": spec.priority,
                    "enabled": spec.enabled,
                }
                for key, value in wanted.items():
                    if getattr(theme, key) != value:
                        setattr(theme, key, value)
                        changed = True
            else:
                report.kept_chat_edits.append(spec.slug)
            changed |= await self._sync_rules(theme, spec.rules, now)
            if changed:
                theme.updated_at = now
                if spec.slug not in report.created:
                    report.updated.append(spec.slug)
            elif spec.slug not in report.created and spec.slug not in report.kept_chat_edits:
                report.unchanged.append(spec.slug)
        await self.session.flush()
        return report

    async def _sync_rules(self, theme: Theme, wanted: Iterable[str], now: datetime) -> bool:
        rows = {
            r.rule: r
            for r in (
                await self.session.scalars(select(ThemeRule).where(ThemeRule.theme_id == theme.id))
            ).all()
        }
        changed = False
        wanted_set = set(wanted)
        for rule in wanted:
            if rule not in rows:
                self.session.add(ThemeRule(theme_id=theme.id, rule=rule, created_at=now))
                changed = True
        for rule, row in rows.items():
            if row.origin == ORIGIN_CONFIG and rule not in wanted_set:
                await self.session.delete(row)
                changed = True
        return changed

    # ------------------------------------------------------------ reads

    async def enabled_rules(self) -> list[tuple[int, str, str]]:
        """``(theme id, slug, rule)`` for every enabled rule of every enabled theme, in a
        stable order (the classifier compares it with what its matcher was built from)."""
        rows = (
            await self.session.execute(
                select(Theme.id, Theme.slug, ThemeRule.rule)
                .join(ThemeRule, ThemeRule.theme_id == Theme.id)
                .where(Theme.enabled.is_(True), ThemeRule.enabled.is_(True))
                .order_by(Theme.slug, ThemeRule.id)
            )
        ).all()
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def enabled(self) -> list[ThemeView]:
        rows = (
            await self.session.scalars(
                select(Theme).where(Theme.enabled.is_(True)).order_by(Theme.slug)
            )
        ).all()
        return [_view(t) for t in rows]

    async def get(self, slug: str) -> ThemeView | None:
        row = await self._row(slug)
        return _view(row) if row is not None else None

    async def by_ids(self, theme_ids: Sequence[int]) -> dict[int, ThemeView]:
        """The enabled themes among ``theme_ids``."""
        if not theme_ids:
            return {}
        rows = (
            await self.session.scalars(
                select(Theme).where(Theme.id.in_(list(theme_ids)), Theme.enabled.is_(True))
            )
        ).all()
        return {t.id: _view(t) for t in rows}

    async def rules(self, theme_id: int) -> list[RuleView]:
        """The enabled rules of a theme, oldest first."""
        return [_rule(r) for r in await self._enabled_rules(theme_id)]

    async def _enabled_rules(self, theme_id: int) -> list[ThemeRule]:
        rows = await self.session.scalars(
            select(ThemeRule)
            .where(ThemeRule.theme_id == theme_id, ThemeRule.enabled.is_(True))
            .order_by(ThemeRule.id)
        )
        return list(rows.all())

    # ------------------------------------------------------------ chat edits

    async def add_from_chat(self, slug: str, title: str, now: datetime) -> ThemeView:
        """Add a theme (or bring back a removed one) as a chat edit."""
        theme = await self._row(slug)
        if theme is None:
            theme = Theme(slug=slug, title=title, origin=ORIGIN_CHAT, created_at=now)
            self.session.add(theme)
        theme.title, theme.enabled, theme.origin, theme.updated_at = title, True, ORIGIN_CHAT, now
        theme.priority = theme.priority or "instant"
        await self.session.flush()
        return _view(theme)

    async def update_from_chat(
        self, slug: str, now: datetime, *, enabled: bool | None = None, priority: str | None = None
    ) -> ThemeView | None:
        """Disable a theme or change its priority, as a chat edit; None if there is none."""
        theme = await self._row(slug)
        if theme is None:
            return None
        if enabled is not None:
            theme.enabled = enabled
        if priority is not None:
            theme.priority = priority
        theme.origin, theme.updated_at = ORIGIN_CHAT, now
        await self.session.flush()
        return _view(theme)

    async def add_rule(
        self, theme_id: int, rule: str, *, user_id: int | None, now: datetime
    ) -> RuleView | None:
        """Add ``rule`` (or re-enable its tombstone) as a chat edit. Returns the rule as it was
        before (None when it is new); an enabled rule is left as it is."""
        row = await self.session.scalar(
            select(ThemeRule).where(ThemeRule.theme_id == theme_id, ThemeRule.rule == rule)
        )
        before = _rule(row) if row is not None else None
        if row is not None and row.enabled:
            return before
        if row is None:
            row = ThemeRule(theme_id=theme_id, rule=rule, created_at=now)
            self.session.add(row)
        row.enabled, row.origin, row.created_by = True, ORIGIN_CHAT, user_id
        theme = await self.session.get(Theme, theme_id)
        if theme is not None:
            theme.updated_at = now
        await self.session.flush()
        return before

    async def remove_rule(self, theme_id: int, rule: str) -> RuleView | None:
        """Disable a rule as a chat edit (a tombstone: re-seeding does not bring it back).
        The text matches exactly, else without quotes and case. Returns the rule as it was,
        or None when the theme has no such enabled rule."""
        rows = await self._enabled_rules(theme_id)
        target = next((r for r in rows if r.rule == rule), None) or next(
            (r for r in rows if r.rule.strip('"').lower() == rule.lower()), None
        )
        if target is None:
            return None
        before = _rule(target)
        target.enabled, target.origin = False, ORIGIN_CHAT
        await self.session.flush()
        return before

    async def _row(self, slug: str) -> Theme | None:
        return await self.session.scalar(select(Theme).where(Theme.slug == slug.lower()))


def _view(row: Theme) -> ThemeView:
    return ThemeView(
        id=row.id,
        slug=row.slug,
        title=row.title,
        description=row.description or "",
        priority=row.priority,
        enabled=row.enabled,
        origin=row.origin,
    )


def _rule(row: ThemeRule) -> RuleView:
    return RuleView(
        id=row.id, theme_id=row.theme_id, rule=row.rule, enabled=row.enabled, origin=row.origin
    )
