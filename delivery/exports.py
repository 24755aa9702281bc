"""``/export``: matched items as a CSV file a spreadsheet opens (pure: rows in, bytes out).

One row per item, newest first, with the event it belongs to (so a sheet can group sources of
one happening), its themes and the facts of a regulatory document. Times are in the chat's zone
(the column header names it); a document published on a date shows that date, as its source
gave it, like every other reply (``delivery.render.published_when``).

Spreadsheets run a cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return)
as a formula, and headlines come from feeds anyone can write: such a cell gets a leading
apostrophe (the OWASP advice for CSV injection). The file is UTF-8 with a byte-order mark, which
Excel needs to read Chinese correctly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

from delivery.render import published_when
from models.entitylist import counts_text
from models.fields import ItemFields
from models.localtime import zone_name
from models.views import ItemRow

COLUMNS = (
    "published",
    "event",
    "title",
    "source",
    "url",
    "themes",
    "document_type",
    "citation",
    "effective_on",
    "comments_close_on",
    "to_be_published",  # a document on public inspection: the day it is to be printed
    "entity_list",  # an Entity List rule: "29 added; China (19), Turkey (9), UAE (1)"
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """``value`` as a spreadsheet shows it, never runs it."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def entity_list_cell(fields: ItemFields) -> str:
    """What an Entity List rule does, in one cell (empty for anything else)."""
    parts = (counts_text(fields), ", ".join(fields.get("destinations", [])))
    return "; ".join(p for p in parts if p)


def items_csv(rows: Sequence[ItemRow], events: Mapping[int, int], zone: str) -> bytes:
    """``rows`` (newest first) as CSV; ``events``: item id → its event id."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = list(COLUMNS)
    header[0] = f"published ({zone_name(zone)})"
    writer.writerow(header)
    for row in rows:
        fields = row.fields
        writer.writerow(
            safe_cell(str(value))
            for value in (
                published_when(
                    row.published_at,
                    fields,
                    zone,
                    date_only=row.date_only,
                    abbreviation=False,
                ),
                events.get(row.id, ""),
                row.title,
                row.source_name,
                row.url or "",
                " ".join(row.themes),
                fields.get("document_type", ""),
                fields.get("citation", ""),
                fields.get("effective_on", ""),
                fields.get("comments_close_on", ""),
                fields.get("publishes_on", ""),
                entity_list_cell(fields),
            )
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
