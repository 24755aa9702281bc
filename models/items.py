"""Items: what a source yields once parsed and normalized, and what the database hands back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from models.fields import ItemFields


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
