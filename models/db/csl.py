"""The screening list kept compactly: one row per entry (``csl_entries``, with a content hash),
and the changes each poll saw (``csl_changes``). The diff itself is pure (``models.csl``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.csl import CslDiff, CslEntry, entry_from_json
from models.db.items import chunks
from models.db.tables import CslChangeRow, CslEntryRow, Source
from models.views import EntityRecord


def _row_values(entry: CslEntry) -> dict[str, object]:
    return {
        "entry_id": entry.entry_id,
        "content_hash": entry.content_hash,
        "name": entry.name,
        "names": list(entry.names),
        "data": entry.to_json(),
    }


class CslRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_entries(self, source_id: int) -> list[CslEntry]:
        """The entries on the list as last seen (removed ones left out)."""
        rows = await self.session.scalars(
            select(CslEntryRow.data).where(
                CslEntryRow.source_id == source_id, CslEntryRow.removed_at.is_(None)
            )
        )
        return [e for raw in rows if (e := entry_from_json(raw)) is not None]

    async def has_snapshot(self, source_id: int) -> bool:
        found = await self.session.scalar(
            select(CslEntryRow.id).where(CslEntryRow.source_id == source_id).limit(1)
        )
        return found is not None

    async def record_baseline(
        self, source_id: int, entries: Sequence[CslEntry], now: datetime
    ) -> None:
        """Store a first snapshot: history, so no change records."""
        rows = [
            {**_row_values(e), "source_id": source_id, "first_seen_at": now, "changed_at": now}
            for e in entries
        ]
        for part in chunks(rows):
            await self.session.execute(insert(CslEntryRow), list(part))

    async def apply(
        self,
        source_id: int,
        diff: CslDiff,
        now: datetime,
        items: Mapping[str, int] | None = None,
    ) -> None:
        """Make the stored list agree with a diff and record its changes; ``items`` maps an
        entry id to the event item that reported it."""
        items = items or {}
        existing: dict[str, CslEntryRow] = {}
        wanted = [e.entry_id for e in diff.added] + [c.before.entry_id for c in diff.changed]
        wanted += [e.entry_id for e in diff.removed] + [old for old, _ in diff.rekeyed]
        for part in chunks(wanted):
            rows = await self.session.scalars(
                select(CslEntryRow).where(
                    CslEntryRow.source_id == source_id, CslEntryRow.entry_id.in_(part)
                )
            )
            existing.update({r.entry_id: r for r in rows})
        changes: list[dict[str, object]] = []
        for entry in diff.added:
            row = existing.get(entry.entry_id)
            if row is None:
                self.session.add(
                    CslEntryRow(
                        source_id=source_id, first_seen_at=now, changed_at=now, **_row_values(entry)
                    )
                )
            else:  # back on the list
                for key, value in _row_values(entry).items():
                    setattr(row, key, value)
                row.changed_at, row.removed_at = now, None
            changes.append(self._change(source_id, entry.entry_id, "added", (), None, now, items))
        for change in diff.changed:
            row = existing[change.before.entry_id]
            for key, value in _row_values(change.after).items():
                setattr(row, key, value)
            row.changed_at = now
            changes.append(
                self._change(
                    source_id,
                    change.after.entry_id,
                    "changed",
                    change.columns,
                    change.before.to_json(),
                    now,
                    items,
                )
            )
        for entry in diff.removed:
            row = existing[entry.entry_id]
            row.removed_at = now
            changes.append(
                self._change(source_id, entry.entry_id, "removed", (), entry.to_json(), now, items)
            )
        changed_ids = {c.before.entry_id for c in diff.changed}
        for old, new in diff.rekeyed:
            if old not in changed_ids:
                existing[old].entry_id = new
        await self.session.flush()
        for batch in chunks(changes):
            await self.session.execute(insert(CslChangeRow), list(batch))

    @staticmethod
    def _change(
        source_id: int,
        entry_id: str,
        change: str,
        columns: Sequence[str],
        before: dict[str, object] | None,
        now: datetime,
        items: Mapping[str, int],
    ) -> dict[str, object]:
        return {
            "source_id": source_id,
            "entry_id": entry_id,
            "change": change,
            "columns": list(columns),
            "before": before,
            "observed_at": now,
            "item_id": items.get(entry_id),
        }

    # ------------------------------------------------------------ lookups (/entity)

    async def version(self) -> tuple[int, datetime | None, datetime | None]:
        """Changes whenever the stored lists do (for caching a name index)."""
        row = (
            await self.session.execute(
                select(
                    func.count(), func.max(CslEntryRow.changed_at), func.max(CslEntryRow.removed_at)
                )
            )
        ).one()
        return int(row[0] or 0), row[1], row[2]

    async def name_index(self) -> list[tuple[int, tuple[str, ...]]]:
        """Every stored entry (removed ones too): its row id and names."""
        rows = await self.session.execute(select(CslEntryRow.id, CslEntryRow.names))
        return [
            (row_id, tuple(n for n in names if isinstance(n, str)))
            for row_id, names in rows.all()
            if isinstance(names, list)
        ]

    async def records(self, row_ids: Sequence[int]) -> list[EntityRecord]:
        """Stored entries with where and since when they are listed, in the order asked."""
        found: dict[int, EntityRecord] = {}
        for part in chunks(list(row_ids)):
            rows = await self.session.execute(
                select(CslEntryRow, Source.name)
                .join(Source, Source.id == CslEntryRow.source_id)
                .where(CslEntryRow.id.in_(part))
            )
            for row, source_name in rows.all():
                entry = entry_from_json(row.data)
                if entry is not None:
                    found[row.id] = EntityRecord(
                        id=row.id,
                        entry=entry,
                        source_name=source_name,
                        first_seen_at=row.first_seen_at,
                        changed_at=row.changed_at,
                        removed_at=row.removed_at,
                    )
        return [found[i] for i in row_ids if i in found]
