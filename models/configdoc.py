"""Walking a loaded config document (``{"sources": [...]}``, ``{"themes": [...]}``): the part
every config file shares — the list, each entry a mapping, no unknown keys, a unique, well-formed
key — with every problem collected rather than the first one raised."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from models.errors import ConfigError


def entries(
    doc: Any,
    section: str,
    *,
    key: str,
    key_pattern: re.Pattern[str],
    key_rule: str,
    allowed: set[str],
    problems: list[str],
    where: str,
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """Yield ``(label, key value, entry)`` for each well-formed entry of ``doc[section]``;
    problems with the others are appended to ``problems`` (labels name the index and key)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get(section), list):
        raise ConfigError(
            [f"the top level must be a mapping with a '{section}' list"], origin=where
        )
    seen: set[str] = set()
    for index, entry in enumerate(doc[section]):
        label = f"{section}[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{label}: must be a mapping")
            continue
        value = entry.get(key)
        if isinstance(value, str):
            label = f"{section}[{index}] ({value})"
        extra = sorted(set(entry) - allowed)
        if extra:
            problems.append(f"{label}: unknown keys {', '.join(map(str, extra))}")
        if not isinstance(value, str) or not key_pattern.match(value):
            problems.append(f"{label}.{key}: must be {key_rule} (got {value!r})")
            continue
        if value in seen:
            problems.append(f"{label}.{key}: duplicate {key} {value!r}")
        seen.add(value)
        yield label, value, entry


@dataclass(slots=True)
class SyncReport:
    """What a seed did: names created, updated, kept because edited in chat, and disabled."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_chat_edits: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{len(self.created)} created",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged",
        ]
        if self.kept_chat_edits:
            parts.append(f"{len(self.kept_chat_edits)} kept (edited in chat)")
        if self.disabled:
            parts.append(f"{len(self.disabled)} disabled (no longer in the file)")
        return ", ".join(parts)
