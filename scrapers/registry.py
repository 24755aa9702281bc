"""The registry of source kinds: ``kind`` in sources.yaml → the class that fetches and parses it."""

from __future__ import annotations

SOURCE_KIND_NAMES: tuple[str, ...] = ("rss", "federal_register", "cac", "html_list")


def source_kinds() -> tuple[str, ...]:
    """The kinds a sources file may name."""
    return SOURCE_KIND_NAMES
