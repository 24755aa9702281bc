"""Whole-list sources (``kind: csl``): a poll's snapshot is diffed against the stored list, the
list is updated, and each event of the diff becomes an item (stored here, in the poll's
transaction, so classification and alert planning see it like any new item).

- A first snapshot (nothing stored for the source yet) is history, not news: it is stored and
  reported as no change.
- A snapshot that would remove more than ``max_removed_share`` of the list (default a quarter)
  is refused with a ``SourceError``: a truncated or broken download must not empty the stored
  list nor alert thousands of removals. The source fails and is retried (admins hear of it
  after a few failures); what is stored stays as it was.
- An addition batch is linked to its Federal Register rule through the citation: when that
  document is already stored, the item names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog

from models.csl import CslSnapshot, batch_item, change_batches, diff_snapshots, with_linked_document
from models.db import UnitOfWork
from models.db.items import StoreResult
from models.errors import SourceError

log = structlog.get_logger(__name__)

DEFAULT_MAX_REMOVED_SHARE = 0.25
MIN_LIST_FOR_GUARD = 20


def _share(options: Mapping[str, Any]) -> float:
    value = options.get("max_removed_share", DEFAULT_MAX_REMOVED_SHARE)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1
    return float(value) if ok else DEFAULT_MAX_REMOVED_SHARE


async def record_snapshot(
    uow: UnitOfWork,
    *,
    source_id: int,
    source_name: str,
    options: Mapping[str, Any],
    snapshot: CslSnapshot,
    now: datetime,
) -> StoreResult:
    """Diff ``snapshot`` against the stored list, store the change and its event items."""
    if not await uow.csl.has_snapshot(source_id):
        await uow.csl.record_baseline(source_id, snapshot.entries, now)
        log.info(
            "screening list baseline stored", source=source_name, entries=len(snapshot.entries)
        )
        return StoreResult((), ())
    previous = await uow.csl.active_entries(source_id)
    diff = diff_snapshots(previous, snapshot.entries)
    if diff.is_empty:
        return StoreResult((), ())
    share = _share(options)
    if len(previous) >= MIN_LIST_FOR_GUARD and len(diff.removed) > share * len(previous):
        msg = (
            f"the download would remove {len(diff.removed)} of {len(previous)} entries "
            f"(more than {share:.0%}); not applied: check the download"
        )
        raise SourceError(source_name, msg)
    batches = change_batches(diff)
    items = [batch_item(b, seen_at=now) for b in batches]
    cited = [c for b in batches if (c := b.citation)]
    documents = await uow.items.documents_by_citation(cited) if cited else {}
    items = [
        with_linked_document(item, *documents[b.citation])
        if b.citation in documents and b.citation is not None
        else item
        for b, item in zip(batches, items, strict=True)
    ]
    stored = await uow.items.store(source_id, items, now)
    ids = {s.external_id: s.id for s in (*stored.new, *stored.updated)}
    by_entry: dict[str, int] = {}
    for batch, item in zip(batches, items, strict=True):
        item_id = ids.get(item.external_id)
        if item_id is not None:
            by_entry.update({e.entry_id: item_id for e in batch.entries})
    await uow.csl.apply(source_id, diff, now, by_entry)
    log.info(
        "screening list changed",
        source=source_name,
        added=len(diff.added),
        removed=len(diff.removed),
        changed=len(diff.changed),
    )
    return stored
