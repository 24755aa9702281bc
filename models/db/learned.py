"""Versions of the themes' learned models (``theme_models``, JSON) and the per-theme switch.

Every training adds a version per theme; one version per theme is active and older ones stay
for rollback (the oldest are pruned beyond ``KEEP_VERSIONS``). A theme whose model an editor
turned off (``themes.model_enabled``) is classified by its rules alone.

A version may read a neighbour index (``neighbour_indexes``, by digest; ``models.neighbours``):
indexes are stored once per training run and deleted when no stored version reads them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.tables import NeighbourIndexRow, Theme, ThemeModel

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


def newer_than_active(versions: Iterable[ModelVersion]) -> set[tuple[str, int]]:
    """(theme, version) of each stored version newer than its theme's active one: one training
    held back (it validated worse) or an editor went back from."""
    versions = list(versions)
    active = {v.slug: v.version for v in versions if v.active}
    return {(v.slug, v.version) for v in versions if v.version > active.get(v.slug, v.version)}


class LearnedModelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def _in_use(*columns: Any) -> Any:
        """``columns`` of the models in use: active versions of enabled themes whose model is
        on, by theme."""
        return (
            select(*columns)
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
        stmt = self._in_use(ThemeModel.theme_id, ThemeModel.id)
        rows = (await self.session.execute(stmt)).all()
        return tuple((int(r[0]), int(r[1])) for r in rows)

    async def active(self) -> list[StoredModel]:
        """The models in use, with their JSON."""
        stmt = self._in_use(
            ThemeModel.id, ThemeModel.theme_id, Theme.slug, ThemeModel.version, ThemeModel.model
        )
        rows = (await self.session.execute(stmt)).all()
        return [StoredModel(int(r[0]), int(r[1]), r[2], int(r[3]), r[4]) for r in rows]

    async def versions(
        self, slug: str | None = None, *, theme_id: int | None = None, active: bool = False
    ) -> list[ModelVersion]:
        """Stored versions, newest first per theme (of one theme when ``slug`` or ``theme_id``
        is given; only the active ones with ``active``), without their weights."""
        stmt = (
            select(
                Theme.slug,
                ThemeModel.version,
                ThemeModel.origin,
                ThemeModel.active,
                ThemeModel.created_at,
                ThemeModel.metrics,
            )
            .join(Theme, Theme.id == ThemeModel.theme_id)
            .order_by(Theme.slug, ThemeModel.version.desc())
        )
        if slug is not None:
            stmt = stmt.where(Theme.slug == slug)
        if theme_id is not None:
            stmt = stmt.where(ThemeModel.theme_id == theme_id)
        if active:
            stmt = stmt.where(ThemeModel.active.is_(True))
        rows = (await self.session.execute(stmt)).all()
        return [ModelVersion(r[0], r[1], r[2], bool(r[3]), r[4], r[5]) for r in rows]

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
        near = model.get("neighbours")
        self.session.add(
            ThemeModel(
                theme_id=theme_id,
                version=version,
                origin=origin,
                active=False,
                created_at=now,
                metrics=dict(metrics),
                model=dict(model),
                neighbour_index=near.get("index") if isinstance(near, Mapping) else None,
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
        """The theme's active version (whether or not its model is switched on)."""
        found = await self.versions(theme_id=theme_id, active=True)
        return found[0] if found else None

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
            await self.prune_indexes()

    async def add_index(self, digest: str, encoder: str, data: bytes, now: datetime) -> bool:
        """Store a neighbour index unless one with its digest is stored; True when stored."""
        if await self.session.get(NeighbourIndexRow, digest) is not None:
            return False
        self.session.add(
            NeighbourIndexRow(digest=digest, encoder=encoder, created_at=now, data=data)
        )
        await self.session.flush()
        return True

    async def indexes(self, digests: Collection[str]) -> dict[str, bytes]:
        """The stored form of each of ``digests`` that is stored (digest → bytes)."""
        if not digests:
            return {}
        rows = await self.session.execute(
            select(NeighbourIndexRow.digest, NeighbourIndexRow.data).where(
                NeighbourIndexRow.digest.in_(sorted(digests))
            )
        )
        return {digest: bytes(data) for digest, data in rows.all()}

    async def prune_indexes(self) -> int:
        """Delete the neighbour indexes no stored version reads; returns how many."""
        read = select(ThemeModel.neighbour_index).where(ThemeModel.neighbour_index.is_not(None))
        result = await self.session.execute(
            delete(NeighbourIndexRow).where(NeighbourIndexRow.digest.not_in(read))
        )
        return int(getattr(result, "rowcount", 0) or 0)

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
