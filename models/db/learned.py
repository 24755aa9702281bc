"""Versions of the themes' learned models (``theme_models``, JSON) and the per-theme switch.

Every training adds a version per theme; one version per theme is active and older ones stay
for rollback (the oldest are pruned beyond ``KEEP_VERSIONS``). A theme whose model an editor
turned off (``themes.model_enabled``) is classified by its rules alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.tables import Theme, ThemeModel

KEEP_VERSIONS = 10
ORIGIN_SHIPPED = "shipped"
ORIGIN_TRAINED = "trained"


@dataclass(frozen=True, slots=True)
class StoredModel:
    """An active model as the classifier loads it."""

    id: int
    theme_id: int
    slug: str
    version: int
    model: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """A stored version, as ``policywatch model list`` and ``/watch model`` show it."""

    slug: str
    version: int
    origin: str
    active: bool
    created_at: datetime
    metrics: Mapping[str, Any]


class LearnedModelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _active(self) -> Any:
        return (
            select(ThemeModel.id, ThemeModel.theme_id, Theme.slug, ThemeModel.version)
            .join(Theme, Theme.id == ThemeModel.theme_id)
            .where(
                ThemeModel.active.is_(True),
                Theme.enabled.is_(True),
                Theme.model_enabled.is_(True),
            )
            .order_by(Theme.slug)
        )

    async def active_key(self) -> tuple[tuple[int, int], ...]:
        """``(theme id, model id)`` of every model in use: the classifier reloads when it
        changes (a new version, a rollback, a theme's model turned off)."""
        rows = (await self.session.execute(self._active())).all()
        return tuple((int(r[1]), int(r[0])) for r in rows)

    async def active(self) -> list[StoredModel]:
        """The models in use (active versions of enabled themes whose model is on)."""
        rows = (
            await self.session.execute(
                select(
                    ThemeModel.id,
                    ThemeModel.theme_id,
                    Theme.slug,
                    ThemeModel.version,
                    ThemeModel.model,
                )
                .join(Theme, Theme.id == ThemeModel.theme_id)
                .where(
                    ThemeModel.active.is_(True),
                    Theme.enabled.is_(True),
                    Theme.model_enabled.is_(True),
                )
                .order_by(Theme.slug)
            )
        ).all()
        return [StoredModel(int(r[0]), int(r[1]), r[2], int(r[3]), r[4]) for r in rows]

    async def versions(self, slug: str | None = None) -> list[ModelVersion]:
        """Stored versions, newest first per theme (of one theme when ``slug`` is given)."""
        stmt = (
            select(Theme.slug, ThemeModel)
            .join(Theme, Theme.id == ThemeModel.theme_id)
            .order_by(Theme.slug, ThemeModel.version.desc())
        )
        if slug is not None:
            stmt = stmt.where(Theme.slug == slug)
        rows = (await self.session.execute(stmt)).all()
        return [
            ModelVersion(
                r[0], r[1].version, r[1].origin, r[1].active, r[1].created_at, r[1].metrics
            )
            for r in rows
        ]

    async def add(
        self,
        theme_id: int,
        model: Mapping[str, Any],
        metrics: Mapping[str, Any],
        *,
        origin: str,
        activate: bool,
        now: datetime,
    ) -> int:
        """Store a new version (the next number for the theme); returns it."""
        last = await self.session.scalar(
            select(func.max(ThemeModel.version)).where(ThemeModel.theme_id == theme_id)
        )
        version = int(last or 0) + 1
        self.session.add(
            ThemeModel(
                theme_id=theme_id,
                version=version,
                origin=origin,
                active=False,
                created_at=now,
                metrics=dict(metrics),
                model=dict(model),
            )
        )
        await self.session.flush()
        if activate:
            await self.activate(theme_id, version)
        await self._prune(theme_id)
        return version

    async def activate(self, theme_id: int, version: int) -> bool:
        """Make ``version`` the theme's active model (False when there is no such version)."""
        exists = await self.session.scalar(
            select(ThemeModel.id).where(
                ThemeModel.theme_id == theme_id, ThemeModel.version == version
            )
        )
        if exists is None:
            return False
        await self.session.execute(
            update(ThemeModel)
            .where(ThemeModel.theme_id == theme_id)
            .values(active=ThemeModel.version == version)
            .execution_options(synchronize_session=False)
        )
        return True

    async def active_version(self, theme_id: int) -> ModelVersion | None:
        row = await self.session.scalar(
            select(ThemeModel).where(ThemeModel.theme_id == theme_id, ThemeModel.active.is_(True))
        )
        if row is None:
            return None
        slug = await self.session.scalar(select(Theme.slug).where(Theme.id == theme_id))
        return ModelVersion(
            str(slug), row.version, row.origin, row.active, row.created_at, row.metrics
        )

    async def rollback(self, theme_id: int, to: int | None = None) -> int | None:
        """Activate version ``to``, or the newest version older than the active one. Returns
        the version now active, or None when there is nothing to go back to."""
        if to is None:
            current = await self.active_version(theme_id)
            stmt = select(func.max(ThemeModel.version)).where(ThemeModel.theme_id == theme_id)
            if current is not None:
                stmt = stmt.where(ThemeModel.version < current.version)
            to = await self.session.scalar(stmt)
            if to is None:
                return None
        return to if await self.activate(theme_id, int(to)) else None

    async def _prune(self, theme_id: int) -> None:
        keep = (
            await self.session.scalars(
                select(ThemeModel.version)
                .where(ThemeModel.theme_id == theme_id)
                .order_by(ThemeModel.version.desc())
                .limit(KEEP_VERSIONS)
            )
        ).all()
        if len(keep) == KEEP_VERSIONS:
            await self.session.execute(
                delete(ThemeModel).where(
                    ThemeModel.theme_id == theme_id,
                    ThemeModel.version < min(keep),
                    ThemeModel.active.is_(False),
                )
            )

    async def themes_without_models(self) -> dict[str, int]:
        """slug → id of the themes that have no stored model at all."""
        has = select(ThemeModel.theme_id).distinct()
        rows = (
            await self.session.execute(select(Theme.slug, Theme.id).where(Theme.id.not_in(has)))
        ).all()
        return {r[0]: int(r[1]) for r in rows}

    async def latest_trained_at(self) -> datetime | None:
        """When a model was last trained by this install (shipped defaults do not count)."""
        value: datetime | None = await self.session.scalar(
            select(func.max(ThemeModel.created_at)).where(ThemeModel.origin == ORIGIN_TRAINED)
        )
        return value

    async def model_switches(self) -> dict[str, bool]:
        """slug → whether the theme's model is on, for the enabled themes."""
        rows = (
            await self.session.execute(
                select(Theme.slug, Theme.model_enabled).where(Theme.enabled.is_(True))
            )
        ).all()
        return {r[0]: bool(r[1]) for r in rows}

    async def set_model_enabled(self, theme_id: int, on: bool) -> bool:
        """Turn a theme's model on or off; returns what it was before."""
        before = await self.session.scalar(select(Theme.model_enabled).where(Theme.id == theme_id))
        await self.session.execute(
            update(Theme).where(Theme.id == theme_id).values(model_enabled=on)
        )
        return bool(before)
