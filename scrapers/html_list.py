"""A generic list page described by CSS selectors in the sources file, so an admin can add a
press-release or policy list (BIS, MIIT, gov.cn) without code.

``options.selectors``: ``item`` (each entry, required), ``title`` (required), ``link``
(default: the title selector; its ``href``), ``date`` (optional), ``date_format`` (strptime,
optional: otherwise the common formats are tried), ``summary`` (optional).
``options.timezone``: the zone of dates that carry none. Zero items is a ``ParseError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar

from selectolax.lexbor import LexborHTMLParser, LexborNode

from models.errors import ParseError
from models.fields import FeedFields, item_fields
from models.items import MAX_TITLE, ItemData
from models.localtime import load_zone
from scrapers.base import KnownIds, Parsed, PollResult, SourceState, option_str, poll_one_page
from scrapers.charset import decode
from scrapers.http import Fetcher
from scrapers.normalize import (
    canonical_url,
    detect_language,
    external_id,
    local_midnight,
    parse_datetime,
    parse_day,
    plain_text,
    previous_external_ids,
)

HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
SELECTOR_KEYS = frozenset({"item", "title", "link", "date", "date_format", "summary"})


def check_selectors(selectors: Any) -> dict[str, str]:
    """Validate ``options.selectors``; raises ValueError naming each problem."""
    if not isinstance(selectors, Mapping):
        msg = "selectors must be a mapping with at least 'item' and 'title'"
        raise ValueError(msg)
    problems = [f"unknown selector key {k!r}" for k in selectors if k not in SELECTOR_KEYS]
    problems += [f"selectors.{k} is required" for k in ("item", "title") if not selectors.get(k)]
    problems += [
        f"selectors.{k} must be a string" for k, v in selectors.items() if not isinstance(v, str)
    ]
    if problems:
        raise ValueError("; ".join(problems))
    return {str(k): str(v) for k, v in selectors.items()}


def parse_html_list(
    body: bytes,
    headers: Mapping[str, str],
    *,
    url: str,
    selectors: Mapping[str, Any],
    timezone: str | None = None,
    source: str = "html_list",
) -> Parsed:
    """Parse a list page with the given selectors into items."""
    try:
        chosen = check_selectors(selectors)
    except ValueError as exc:
        raise ParseError(source, str(exc)) from exc
    default_zone = load_zone(timezone, strict=True)
    tree = LexborHTMLParser(decode(body, headers, markup="html"))
    items: list[ItemData] = []
    skipped = 0
    for node in tree.css(chosen["item"]):
        title_node = _first(node, chosen["title"])
        link_node = _first(node, chosen.get("link") or chosen["title"])
        title = ""
        if title_node is not None:
            title = plain_text(title_node.text(), limit=MAX_TITLE, markup=False) or plain_text(
                title_node.attributes.get("title"), limit=MAX_TITLE, markup=False
            )
        href = canonical_url(link_node.attributes.get("href"), url) if link_node else None
        if not title:
            skipped += 1
            continue
        published, assumed, date_only = _date(node, chosen, default_zone)
        summary_node = _first(node, chosen["summary"]) if chosen.get("summary") else None
        summary = plain_text(summary_node.html, limit=1000) if summary_node else ""
        fields = FeedFields()
        if published is not None and date_only:
            fields["publication_date"] = published.astimezone(default_zone).date().isoformat()
        if published is not None and assumed:
            fields["date_zone_assumed"] = timezone or "UTC"
        items.append(
            ItemData(
                external_id=external_id(guid=None, url=href, title=title, published=published),
                previous_ids=previous_external_ids(guid=None, url=href),
                title=title,
                url=href,
                summary=summary,
                language=detect_language(title, summary),
                published_at=published,
                published_at_guessed=published is None,
                date_only=date_only,
                fields=item_fields(fields),
            )
        )
    if not items:
        msg = f"the selectors found zero items (item: {chosen['item']!r}; layout changed?)"
        raise ParseError(source, msg)
    return Parsed(tuple(items), skipped=skipped)


def _first(node: LexborNode, selector: str) -> LexborNode | None:
    return node.css_first(selector)


def _date(
    node: LexborNode, selectors: Mapping[str, str], default_zone: tzinfo
) -> tuple[datetime | None, bool, bool]:
    """``(when, zone assumed, a date without a time)`` of an entry's date, if any."""
    selector = selectors.get("date")
    date_node = _first(node, selector) if selector else None
    if date_node is None:
        return None, False, False
    raw = date_node.attributes.get("datetime") or date_node.text()
    raw = (raw or "").strip()
    date_format = selectors.get("date_format")
    if date_format and raw:
        try:
            parsed = datetime.strptime(raw, date_format)  # noqa: DTZ007 - the zone is attached below
        except ValueError:
            pass
        else:
            date_only = not any(code in date_format for code in ("%H", "%I", "%M"))
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=default_zone).astimezone(UTC), True, date_only
            return parsed.astimezone(UTC), False, date_only
    day = parse_day(raw)
    if day is not None:
        return local_midnight(day, default_zone), False, True
    when, assumed = parse_datetime(raw, default_zone=default_zone)
    return when, assumed, False


class HtmlListSource:
    """``kind: html_list``: one conditional GET, then ``parse_html_list``."""

    kind: ClassVar[str] = "html_list"

    async def poll(
        self, fetcher: Fetcher, state: SourceState, *, now: datetime, known: KnownIds
    ) -> PollResult:
        return await poll_one_page(
            fetcher,
            state,
            accept=HTML_ACCEPT,
            parse=parse_html_list,
            selectors=state.options.get("selectors") or {},
            timezone=option_str(state.options, "timezone"),
            source=state.name,
        )
