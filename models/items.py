"""Items: what a source yields once parsed and normalized, and what the database hands back."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ItemData:
    """A normalized item, ready to store. Datetimes are aware UTC; text is plain (no markup).

    ``external_id`` is unique per source (a stable guid, else the canonical URL, else a hash of
    title and date). ``fields`` holds kind-specific structured facts as JSON-able values
    (document type, effective date, CFR parts, CAC filing counts, ...).
    """

    external_id: str
    title: str
    url: str | None = None
    summary: str = ""
    language: str | None = None
    published_at: datetime | None = None
    published_at_guessed: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)

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
    fields: Mapping[str, Any]
    from_first_poll: bool = False


def content_hash(title: str, summary: str) -> str:
    """sha256 over the title and summary as a reader sees them."""
    digest = hashlib.sha256()
    digest.update(title.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(summary.encode("utf-8"))
    return digest.hexdigest()
