"""The registry of source kinds: ``kind`` in sources.yaml → the class that fetches and parses it.

Adding a kind takes a module in ``scrapers/``, one line here and golden fixtures in
``tests/data/``. No discovery or registration at import: the mapping is explicit.
"""

from __future__ import annotations

from scrapers.base import SourceKind
from scrapers.cac import CacSource
from scrapers.csl import CslSource
from scrapers.demo import DemoSource
from scrapers.federal_register import FederalRegisterSource
from scrapers.html_list import HtmlListSource
from scrapers.public_inspection import PublicInspectionSource
from scrapers.rss import RssSource

SOURCE_KINDS: dict[str, type[SourceKind]] = {
    "rss": RssSource,
    "federal_register": FederalRegisterSource,
    "public_inspection": PublicInspectionSource,
    "cac": CacSource,
    "html_list": HtmlListSource,
    "csl": CslSource,
    "demo": DemoSource,
}


def source_kinds() -> tuple[str, ...]:
    """The kinds a sources file may name."""
    return tuple(SOURCE_KINDS)


def source_kind(kind: str) -> SourceKind:
    """A poller for ``kind``; raises KeyError naming the known kinds."""
    try:
        return SOURCE_KINDS[kind]()
    except KeyError:
        msg = f"unknown source kind {kind!r} (known: {', '.join(SOURCE_KINDS)})"
        raise KeyError(msg) from None
