"""The Consolidated Screening List download (``kind: csl``): trade.gov's CSV or JSON of every US
screening list, read into ``models.csl.CslEntry`` records. The parser is a pure function of the
bytes and headers; the snapshot is diffed and stored by the pipeline (``pipeline.lists``).

Quirks handled (``reference/sources.md`` §2.3): a BOM, no newline after the last row, a trailing
``\\x1a`` end-of-file row, every field quoted (embedded quotes doubled), older files without
``_id`` (the natural key is hashed instead), the JSON shape ``{"sources_used": …, "results":
[…]}`` with lists and address objects. A row without a source or a name is skipped and counted;
a file without the ``source`` and ``name`` columns is a ``ParseError``.

The whole CSV is about 17 MB, more than the default response limit: the source's
``max_bytes`` option (default 64 MiB) raises it for this source only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from models.csl import CSV_COLUMNS, CslEntry, CslSnapshot, entry_from_values
from models.errors import ParseError
from scrapers.base import KnownIds, PollResult, SourceState, option_int
from scrapers.charset import decode
from scrapers.http import Fetcher

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
ACCEPT = "text/csv, application/json;q=0.9, */*;q=0.1"
FIELD_LIMIT = 16 * 1024 * 1024  # csv's default (128 KiB) is less than a long ``ids`` field may be


def parse_csl(body: bytes, headers: Mapping[str, str], *, source: str = "csl") -> CslSnapshot:
    """Parse a CSL download (CSV or JSON) into a snapshot of entries."""
    text = decode(body, headers, markup="html").replace("\x1a", "")
    stripped = text.lstrip()
    if not stripped:
        raise ParseError(source, "an empty download")
    if stripped[0] in "{[":
        rows = _json_rows(stripped, source)
    elif stripped[0] == "<":
        raise ParseError(source, "an HTML/XML page where the screening list was expected")
    else:
        rows = _csv_rows(text, source)
    entries: list[CslEntry] = []
    seen: set[str] = set()
    skipped = 0
    for row in rows:
        entry_id = _entry_id(row)
        entry = entry_from_values(row, entry_id=entry_id)
        if entry is None or entry.entry_id in seen:
            skipped += 1
            continue
        seen.add(entry.entry_id)
        entries.append(entry)
    if not entries:
        raise ParseError(source, f"no usable entries ({skipped} rows skipped)")
    return CslSnapshot(
        entries=tuple(entries), skipped=skipped, digest=hashlib.sha256(body).hexdigest()
    )


def _csv_rows(text: str, source: str) -> list[dict[str, Any]]:
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lstrip("\ufeff") for h in reader.fieldnames or []]
    if "source" not in header or "name" not in header:
        raise ParseError(source, f"not the screening-list CSV (columns: {', '.join(header[:8])})")
    unknown = set(header) - set(CSV_COLUMNS)
    if len(unknown) > len(header) // 2:
        raise ParseError(source, f"unexpected columns: {', '.join(sorted(unknown)[:8])}")
    reader.fieldnames = header
    try:
        return [dict(row) for row in reader]
    except csv.Error as exc:
        raise ParseError(source, f"unreadable CSV: {exc}") from exc


def _json_rows(text: str, source: str) -> list[dict[str, Any]]:
    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        raise ParseError(source, f"not JSON: {exc}") from exc
    results = document.get("results") if isinstance(document, dict) else document
    if not isinstance(results, list):
        raise ParseError(source, "no 'results' list in the JSON")
    rows: list[dict[str, Any]] = []
    for raw in results:
        if not isinstance(raw, dict):
            rows.append({})
            continue
        row = dict(raw)
        addresses = raw.get("addresses")
        if isinstance(addresses, list):
            row["addresses"] = [_address(a) for a in addresses]
        ids = raw.get("ids")
        if isinstance(ids, list):
            row["ids"] = "; ".join(_id_text(i) for i in ids)
        if "_id" not in row and isinstance(raw.get("id"), str):
            row["_id"] = raw["id"]
        rows.append(row)
    return rows


def _address(value: Any) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        return ""
    parts = [value.get(k) for k in ("address", "city", "state", "postal_code", "country")]
    return ", ".join(str(p).strip() for p in parts if isinstance(p, str | int) and str(p).strip())


def _id_text(value: Any) -> str:
    if isinstance(value, Mapping):
        parts = [value.get(k) for k in ("type", "number", "country")]
        return ", ".join(str(p) for p in parts if isinstance(p, str) and p)
    return str(value) if isinstance(value, str) else ""


def _entry_id(row: Mapping[str, Any]) -> str:
    """``_id``; else the entity number; else a hash of the natural key (older files)."""
    for key in ("_id", "entity_number"):
        value = row.get(key)
        if isinstance(value, str | int) and str(value).strip():
            return str(value).strip()[:128]
    basis = "\x00".join(str(row.get(k) or "").strip() for k in ("source", "name", "start_date"))
    return "k:" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:40]


class CslSource:
    """``kind: csl``. Options: ``max_bytes`` (default 64 MiB). A 304 stores nothing."""

    kind: ClassVar[str] = "csl"

    async def poll(
        self, fetcher: Fetcher, state: SourceState, *, now: datetime, known: KnownIds
    ) -> PollResult:
        result = await fetcher.get(
            state.url,
            source=state.name,
            etag=state.etag,
            last_modified=state.last_modified,
            accept=ACCEPT,
            max_bytes=option_int(state.options, "max_bytes", DEFAULT_MAX_BYTES),
        )
        if result.not_modified:
            return PollResult(
                not_modified=True, etag=result.etag, last_modified=result.last_modified
            )
        snapshot = await fetcher.cpu.run(
            parse_csl, result.body, dict(result.headers), source=state.name
        )
        return PollResult(
            snapshot=snapshot,
            etag=result.etag,
            last_modified=result.last_modified,
            skipped=snapshot.skipped,
        )
