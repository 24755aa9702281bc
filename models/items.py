"""Items: what a source yields once parsed and normalized, and what the database hands back."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

from models.fields import ItemFields

MAX_TITLE = 1000  # characters; a title is a line, not a document (an 8.6 MB one was seen)
MAX_SUMMARY = 4000
MAX_URL = 4000
MAX_EXTERNAL_ID = 500  # items.external_id is VARCHAR(512)
# How far after the poll that first sees it an item's date may lie (a source's clock or zone a
# few hours off); a later date is not believed (a typo, a placeholder such as 2100-01-01).
FUTURE_SLACK = timedelta(days=1)
# Lone surrogates cannot be encoded (UTF-8, PostgreSQL, SQLite); NUL is refused by PostgreSQL;
# other C0/C1 controls and non-characters are invisible noise. Tab and newline stay.
_BAD_CHARS = re.compile("[\ud800-\udfff]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class ItemData:
    """A normalized item, ready to store. Datetimes are aware UTC; text is plain (no markup).

    ``external_id`` is unique per source (a stable guid, else the canonical URL, else a hash of
    title and date). ``fields`` holds the kind's structured facts (``models.fields``).
    ``date_only``: the source gives a day, not a time (its time is local midnight).
    """

    external_id: str
    title: str
    url: str | None = None
    summary: str = ""
    language: str | None = None
    published_at: datetime | None = None
    published_at_guessed: bool = False
    date_only: bool = False
    fields: ItemFields = field(default_factory=ItemFields)
    # Ids an earlier PolicyWatch derived for this item (before guids were kept as given): the
    # store adopts a row stored under one of them rather than adding the item again.
    previous_ids: tuple[str, ...] = ()

    @property
    def content_hash(self) -> str:
        """A hash of what a reader sees; a change means the item was updated in place."""
        return content_hash(self.title, self.summary)


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as stored, with its database identity and first-seen time."""

    id: int
    source_id: int
    source_name: str
    external_id: str
    title: str
    url: str | None
    summary: str
    language: str | None
    published_at: datetime
    published_at_guessed: bool
    first_seen_at: datetime
    content_hash: str
    fields: ItemFields
    from_first_poll: bool = False
    date_only: bool = False
    source_kind: str = ""

    @property
    def shown_as_date(self) -> bool:
        """Show the publication as a date: the source gave none, or a day without a time."""
        return self.date_only or self.published_at_guessed


def content_hash(title: str, summary: str) -> str:
    """sha256 over the title and summary as a reader sees them."""
    digest = hashlib.sha256()
    digest.update(title.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(summary.encode("utf-8"))
    return digest.hexdigest()


def bounded_id(value: str) -> str:
    """An identity that fits its column: a longer one is replaced by its sha256."""
    if len(value) <= MAX_EXTERNAL_ID:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


def clean_text(value: str, limit: int | None = None) -> str:
    """``value`` safe to store: lone surrogates become U+FFFD, control characters go; cut at
    ``limit`` characters with an ellipsis."""
    text = _BAD_CHARS.sub(_replacement, value) if _BAD_CHARS.search(value) else value
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _replacement(match: re.Match[str]) -> str:
    return "\ufffd" if "\ud800" <= match.group() <= "\udfff" else ""


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_value(v) for k, v in value.items()}
    return value


def clean_item(item: ItemData) -> ItemData | None:
    """The item as it may be stored (text cleaned, lengths capped), or None when nothing
    identifies or shows it any more (no title and no link, or no identity)."""
    title = " ".join(clean_text(item.title).split())
    external = clean_text(item.external_id).strip()
    url = clean_text(item.url).strip() if item.url else None
    if url is not None and (len(url) > MAX_URL or not url):
        url = None
    if not external or not (title or url):
        return None
    return replace(
        item,
        external_id=bounded_id(external),
        title=clean_text(title, MAX_TITLE) or url or "",
        url=url,
        summary=clean_text(item.summary, MAX_SUMMARY),
        fields=cast(ItemFields, _clean_value(dict(item.fields))),
    )


def dated(item: ItemData, seen: datetime) -> ItemData:
    """``item`` with the publication time it is stored with: its own date, or ``seen`` (the poll
    that first saw it), flagged as guessed, when it gives none or one more than
    ``FUTURE_SLACK`` after ``seen`` (an item dated 2100 headed /latest and /search for ever)."""
    published = item.published_at
    if published is not None and published <= seen + FUTURE_SLACK:
        return item
    return replace(item, published_at=seen, published_at_guessed=True, date_only=False)
