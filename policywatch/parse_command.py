"""``policywatch parse``: parse a saved response with a kind's pure parser, print JSON Lines
(one item per line; for ``csl``, one screening-list entry per line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from models.errors import ParseError
from models.items import ItemData
from scrapers.cac import parse_cac_article, parse_cac_list
from scrapers.csl import parse_csl
from scrapers.federal_register import parse_documents
from scrapers.html_list import parse_html_list
from scrapers.public_inspection import parse_public_inspection
from scrapers.rss import parse_feed

PARSE_KINDS = (
    "rss",
    "federal_register",
    "public_inspection",
    "cac_list",
    "cac_article",
    "html_list",
    "csl",
)
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def item_json(item: ItemData) -> dict[str, Any]:
    """The JSON Lines shape of an item (also the golden-file shape)."""
    return {
        "external_id": item.external_id,
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "published_at": item.published_at.isoformat() if item.published_at else None,
        "published_at_guessed": item.published_at is None or item.published_at_guessed,
        "date_only": item.date_only,
        "language": item.language,
        "fields": dict(item.fields),
    }


def parse_file(
    body: bytes,
    *,
    kind: str,
    url: str | None,
    timezone: str | None = None,
    selectors: Any = None,
) -> list[ItemData]:
    """Parse ``body`` as ``kind``; raises ParseError or ValueError with a clear message."""
    headers: dict[str, str] = {}
    if kind == "rss":
        return list(parse_feed(body, headers, url=url, timezone=timezone, source="file").items)
    if kind == "federal_register":
        return list(parse_documents(body, headers, source="file").items)
    if kind == "public_inspection":  # BIS's documents (the source's default agencies)
        return list(parse_public_inspection(body, headers, source="file").items)
    page_url = url or "https://www.cac.gov.cn/"
    if kind == "cac_list":
        return list(parse_cac_list(body, headers, url=page_url, source="file").items)
    if kind == "cac_article":
        return [parse_cac_article(body, headers, url=page_url, source="file")]
    if kind == "html_list":
        if not url:
            msg = "html_list needs --url (links on the page are relative to it)"
            raise ValueError(msg)
        return list(
            parse_html_list(
                body, headers, url=url, selectors=selectors or {}, timezone=timezone, source="file"
            ).items
        )
    msg = f"unknown kind {kind!r} (one of: {', '.join(PARSE_KINDS)})"
    raise ValueError(msg)


def run_parse(
    *,
    path: str,
    kind: str,
    url: str | None,
    timezone: str | None,
    selectors: str | None,
    out: TextIO,
    err: TextIO,
) -> int:
    try:
        body = Path(path).read_bytes()
    except OSError as exc:
        print(f"policywatch parse: cannot read {path}: {exc.strerror}", file=err)
        return EXIT_USAGE
    try:
        chosen = json.loads(selectors) if selectors else None
    except ValueError as exc:
        print(f"policywatch parse: --selectors is not JSON: {exc}", file=err)
        return EXIT_USAGE
    try:
        if kind == "csl":
            lines = [e.to_json() for e in parse_csl(body, {}, source="file").entries]
        else:
            items = parse_file(body, kind=kind, url=url, timezone=timezone, selectors=chosen)
            lines = [item_json(item) for item in items]
    except ValueError as exc:
        print(f"policywatch parse: {exc}", file=err)
        return EXIT_USAGE
    except ParseError as exc:
        print(f"policywatch parse: {exc.message}", file=err)
        return EXIT_FAILURE
    for line in lines:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return EXIT_OK
