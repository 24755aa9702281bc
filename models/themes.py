"""Theme declarations: a slug, a title, a priority and a watchlist of terms and rules.

A watchlist entry is stored as text in the rule language of ``models.matching`` (a bare term
such as ``Huawei`` is the simplest rule). ``parse_themes_document`` validates the loaded
``themes.yaml`` document and reports every problem at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from models.configdoc import entries
from models.errors import ConfigError

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
PRIORITIES = ("instant", "digest")


@dataclass(frozen=True, slots=True)
class ThemeSpec:
    """A declared theme with its watchlist entries (rule texts)."""

    slug: str
    title: str
    description: str = ""
    priority: str = "instant"
    enabled: bool = True
    rules: tuple[str, ...] = ()


def watchlist_entry_text(entry: Any) -> str:
    """Turn one YAML watchlist entry into rule text.

    A string is taken as written; a list of strings is a term with aliases (any of them).
    """
    if isinstance(entry, str):
        text = entry.strip()
        if not text:
            msg = "an empty entry"
            raise ValueError(msg)
        return text
    if isinstance(entry, list) and entry and all(isinstance(a, str) and a.strip() for a in entry):
        return " OR ".join(quote_term(a.strip()) for a in entry)
    msg = f"an entry must be a string or a list of strings, not {entry!r}"
    raise ValueError(msg)


def quote_term(term: str) -> str:
    """Quote a literal term for the rule language (double quotes, backslash escapes)."""
    escaped = term.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def parse_themes_document(doc: Any, *, where: str = "themes file") -> list[ThemeSpec]:
    """Validate a loaded themes document ``{"themes": [...]}`` into specs."""
    problems: list[str] = []
    specs: list[ThemeSpec] = []
    for label, slug, entry in entries(
        doc,
        "themes",
        key="slug",
        key_pattern=SLUG_RE,
        key_rule="1-48 of a-z 0-9 -",
        allowed={"slug", "title", "description", "priority", "enabled", "watchlist"},
        problems=problems,
        where=where,
    ):
        title = entry.get("title")
        if not isinstance(title, str) or not title.strip():
            problems.append(f"{label}.title: required")
            title = slug
        description = entry.get("description", "") or ""
        if not isinstance(description, str):
            problems.append(f"{label}.description: must be a string")
            description = ""
        priority = entry.get("priority", "instant")
        if priority not in PRIORITIES:
            problems.append(f"{label}.priority: must be instant or digest (got {priority!r})")
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.append(f"{label}.enabled: must be true or false")
        rules: list[str] = []
        watchlist = entry.get("watchlist", []) or []
        if not isinstance(watchlist, list):
            problems.append(f"{label}.watchlist: must be a list")
            watchlist = []
        for rule_index, raw in enumerate(watchlist):
            try:
                text = watchlist_entry_text(raw)
            except ValueError as exc:
                problems.append(f"{label}.watchlist[{rule_index}]: {exc}")
                continue
            if text not in rules:
                rules.append(text)
        specs.append(
            ThemeSpec(
                slug=slug,
                title=title.strip(),
                description=description.strip(),
                priority=str(priority),
                enabled=bool(enabled),
                rules=tuple(rules),
            )
        )
    if problems:
        raise ConfigError(problems, origin=where)
    return specs
