"""Items: store what a poll parsed (new ones inserted, changed ones updated in place) and read
them back in batches for classification."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from models.db.tables import Item, Source
from models.fields import ItemFields, fields_from_json
from models.items import ItemData, StoredItem, clean_item, dated

BATCH = 500
T = TypeVar("T")


def insert_ignoring_conflicts(session: AsyncSession, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the session's dialect (any unique constraint)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    msg = f"unsupported dialect {dialect}"  # pragma: no cover - engine.py refuses others
    raise NotImplementedError(msg)


def chunks(values: Sequence[T], size: int = BATCH) -> list[Sequence[T]]:
    """``values`` in slices of at most ``size`` (bound-parameter lists stay small)."""
    return [values[start : start + size] for start in range(0, len(values), size)]


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What ``ItemRepository.store`` did: items inserted, and items changed in place."""

    new: tuple[StoredItem, ...]
    updated: tuple[StoredItem, ...]
    skipped: int = 0  # items too broken to store (see ``models.items.clean_item``)


@dataclass(frozen=True, slots=True)
class ItemText:
    """What classification reads of an item."""

    id: int
    title: str
    summary: str
    published_at: datetime
    fields: ItemFields = field(default_factory=ItemFields)


class ItemRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def store(
        self,
        source_id: int,
        items: Sequence[ItemData],
        now: datetime,
        *,
        from_first_poll: bool = False,
    ) -> StoreResult:
        """Insert items not stored yet (by ``(source, external_id)``); an item whose title or
        summary changed in place is updated and reported as updated, not new. Every item is
        cleaned first (``clean_item``): one that cannot be stored is skipped and counted,
        never the whole batch. One without a believable date is dated ``now`` (``dated``)."""
        cleaned = [clean_item(item) for item in items]
        items = [item for item in cleaned if item is not None]
        skipped = len(cleaned) - len(items)
        if not items:
            return StoreResult((), (), skipped)
        source = await self.session.get(Source, source_id)
        if source is None:
            msg = f"source {source_id} does not exist"
            raise LookupError(msg)
        by_id: dict[str, ItemData] = {}
        for item in items:  # the same id twice in one response: keep the first
            by_id.setdefault(item.external_id, dated(item, now))
        await self._adopt_previous_ids(source_id, by_id.values())
        rows = [
            {
                "source_id": source_id,
                "external_id": item.external_id,
                "url": item.url,
                "title": item.title,
                "summary": item.summary,
                "language": item.language,
                "published_at": item.published_at or now,
                "published_at_guessed": item.published_at_guessed,
                "published_date_only": item.date_only,
                "first_seen_at": now,
                "content_hash": item.content_hash,
                "fields": dict(item.fields),
                "from_first_poll": from_first_poll,
            }
            for item in by_id.values()
        ]
        stmt = insert_ignoring_conflicts(self.session, Item.__table__).returning(Item.id)  # type: ignore[arg-type]
        new_ids: set[int] = set()
        for part in chunks(rows):
            result = await self.session.execute(stmt, list(part))
            new_ids.update(result.scalars().all())
        stored: list[Item] = []
        for ids in chunks(list(by_id)):
            stored.extend(
                (
                    await self.session.scalars(
                        select(Item).where(Item.source_id == source_id, Item.external_id.in_(ids))
                    )
                ).all()
            )
        new: list[StoredItem] = []
        updated: list[StoredItem] = []
        for row in stored:
            if row.id in new_ids:
                new.append(stored_item(row, source))
                continue
            data = by_id[row.external_id]
            if row.content_hash != data.content_hash:
                row.title, row.summary = data.title, data.summary
                row.content_hash = data.content_hash
                row.fields = {**row.fields, **dict(data.fields)}
                row.updated_at = now
                updated.append(stored_item(row, source))
        await self.session.flush()
        new.sort(key=lambda s: s.id)
        return StoreResult(tuple(new), tuple(updated), skipped)

    async def _adopt_previous_ids(self, source_id: int, items: Iterable[ItemData]) -> None:
        """Rename rows stored under an id an earlier version derived (``previous_ids``) to the
        item's id now, so an upgrade neither duplicates nor re-alerts what is stored.

        Only a row that is this entry stored before can be adopted: its old id must not be the
        id of another entry of the response, and the row must hold the entry's title or content
        (a new ``…#update-1`` entry never takes the row of the ``…`` story it updates). When
        several entries claim one old row (entries an old rule merged, or that shared a guid),
        the first of them that it holds gets it."""
        batch = list(items)
        current_ids = {item.external_id for item in batch}
        claims: dict[str, list[ItemData]] = {}
        for item in batch:
            for old in item.previous_ids:
                if old != item.external_id and old not in current_ids:
                    claims.setdefault(old, []).append(item)
        if not claims:
            return
        claimants = {item.external_id for items in claims.values() for item in items}
        current = await self.known_external_ids(source_id, list(claimants))
        pending = {
            old: unstored
            for old, items in claims.items()
            if (unstored := [i for i in items if i.external_id not in current])
        }
        if not pending:
            return
        stored: dict[str, tuple[str, str]] = {}
        for part in chunks(sorted(pending)):
            rows = await self.session.execute(
                select(Item.external_id, Item.title, Item.content_hash).where(
                    Item.source_id == source_id, Item.external_id.in_(part)
                )
            )
            stored.update({old: (title, digest) for old, title, digest in rows.all()})
        taken: set[str] = set()
        for old in sorted(stored):
            title, digest = stored[old]
            heir = next(
                (
                    i
                    for i in pending[old]
                    if i.external_id not in taken and (i.content_hash == digest or i.title == title)
                ),
                None,
            )
            if heir is None:
                continue
            taken.add(heir.external_id)
            await self.session.execute(
                update(Item)
                .where(Item.source_id == source_id, Item.external_id == old)
                .values(external_id=heir.external_id)
            )

    async def known_external_ids(self, source_id: int, external_ids: Sequence[str]) -> set[str]:
        """The subset of ``external_ids`` already stored for the source."""
        known: set[str] = set()
        for part in chunks(list(external_ids)):
            known.update(
                (
                    await self.session.scalars(
                        select(Item.external_id).where(
                            Item.source_id == source_id, Item.external_id.in_(part)
                        )
                    )
                ).all()
            )
        return known

    async def stored_hashes(self, source_id: int, external_ids: Sequence[str]) -> dict[str, str]:
        """The content hash of each of ``external_ids`` already stored for the source."""
        found: dict[str, str] = {}
        for part in chunks(list(external_ids)):
            rows = await self.session.execute(
                select(Item.external_id, Item.content_hash).where(
                    Item.source_id == source_id, Item.external_id.in_(part)
                )
            )
            found.update(dict(rows.all()))
        return found

    async def documents_by_citation(self, citations: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Federal Register documents stored under these citations: citation → (document
        number, title)."""
        found: dict[str, tuple[str, str]] = {}
        citation = Item.fields["citation"].as_string()
        for part in chunks(list(citations)):
            rows = await self.session.execute(
                select(citation, Item.external_id, Item.title)
                .join(Source, Source.id == Item.source_id)
                .where(Source.kind == "federal_register", citation.in_(part))
                .order_by(Item.id)
            )
            for cited, number, title in rows.all():
                found.setdefault(cited, (number, title))
        return found

    async def texts_since(self, since: datetime) -> AsyncIterator[list[ItemText]]:
        """Items published since ``since``, in id order, in batches (keyset pagination)."""
        last_id = 0
        while True:
            batch = (
                await self.session.execute(
                    select(Item.id, Item.title, Item.summary, Item.published_at, Item.fields)
                    .where(Item.published_at >= since, Item.id > last_id)
                    .order_by(Item.id)
                    .limit(BATCH)
                )
            ).all()
            if not batch:
                return
            yield [
                ItemText(r.id, r.title, r.summary, r.published_at, fields_from_json(r.fields))
                for r in batch
            ]
            last_id = batch[-1].id


def stored_item(row: Item, source: Source) -> StoredItem:
    return StoredItem(
        id=row.id,
        source_id=row.source_id,
        source_name=source.name,
        source_kind=source.kind,
        external_id=row.external_id,
        title=row.title,
        url=row.url,
        summary=row.summary,
        language=row.language,
        published_at=row.published_at,
        published_at_guessed=row.published_at_guessed,
        date_only=row.published_date_only,
        first_seen_at=row.first_seen_at,
        content_hash=row.content_hash,
        fields=fields_from_json(row.fields),
        from_first_poll=row.from_first_poll,
    )
