"""Names of organisations that editors added from the chat (``/names``), in groups, and names
they dropped."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.tables import KnownOrgNames
from models.orgnames import EditorsNames, forms

KIND_DROP = "drop"


def _keys(name: str) -> set[str]:
    return {f.compact for f in forms(name) if f.compact}


class KnownOrgRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def edits(self) -> EditorsNames:
        """Every added group of names, oldest first (the order ``KnownOrgs.with_added``
        merges them in), and every dropped name."""
        rows = await self.session.scalars(select(KnownOrgNames).order_by(KnownOrgNames.id))
        groups: list[tuple[str, ...]] = []
        dropped: list[str] = []
        for row in rows.all():
            names = tuple(n for n in row.names or [] if isinstance(n, str))
            if row.kind == KIND_DROP:
                dropped.extend(names)
            else:
                groups.append(names)
        return EditorsNames(tuple(groups), tuple(dropped))

    async def add(self, names: list[str], user_id: int | None, now: datetime) -> None:
        self.session.add(KnownOrgNames(names=names, created_by=user_id, created_at=now))
        await self.session.flush()

    async def drop(self, name: str, user_id: int | None, now: datetime) -> None:
        """Take ``name`` out of whichever organisation it names (``KnownOrgs.without``)."""
        self.session.add(
            KnownOrgNames(names=[name], kind=KIND_DROP, created_by=user_id, created_at=now)
        )
        await self.session.flush()

    async def remove(self, name: str) -> list[str]:
        """Lift a drop of ``name`` (legal form, spacing, case and script variants aside) if
        there is one (and nothing else: it undoes the drop); otherwise take it out of every
        added group, a group left with fewer than two names going. Returns the names taken."""
        wanted = _keys(name)
        taken: list[str] = []
        rows = list(
            (await self.session.scalars(select(KnownOrgNames).order_by(KnownOrgNames.id))).all()
        )
        drops = [r for r in rows if r.kind == KIND_DROP]
        if any(_keys(n) & wanted for r in drops for n in r.names or [] if isinstance(n, str)):
            rows = drops
        for row in rows:
            names = [n for n in row.names or [] if isinstance(n, str)]
            kept = [n for n in names if not (_keys(n) & wanted)]
            if len(kept) == len(names):
                continue
            taken += [n for n in names if n not in kept]
            if len(kept) < 2 or row.kind == KIND_DROP:
                await self.session.execute(delete(KnownOrgNames).where(KnownOrgNames.id == row.id))
            else:
                row.names = kept
        await self.session.flush()
        return list(dict.fromkeys(taken))
