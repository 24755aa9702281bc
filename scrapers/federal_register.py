"""The Federal Register documents API (``documents.json``), filtered by agency and type.

Polling reads a publication-date window behind a watermark (the newest ``publication_date``
seen, minus ``lookback_days``) instead of paging deep: the API caps ``total_pages`` at 50.
``next_page_url`` is followed as given, only on the same host, with a loop guard and a page cap.
The empty answer (``{"description": ..., "count": 0}``, no ``results`` key) is a valid empty
poll. Structured fields are kept; ``C1-…`` corrections link to the document they correct; GPO
markup such as ``<INF>`` is stripped from abstracts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from models.entitylist import list_fields
from models.errors import ParseError
from models.fields import FederalRegisterFields, item_fields
from models.items import MAX_TITLE, ItemData
from models.localtime import load_zone
from scrapers.base import KnownIds, Parsed, PollResult, SourceState, option_int, option_list
from scrapers.charset import decode
from scrapers.http import Fetcher
from scrapers.normalize import canonical_url, local_midnight, plain_text

DEFAULT_AGENCIES = ("industry-and-security-bureau",)
DEFAULT_TYPES = ("RULE", "PRORULE", "NOTICE")
FIELDS = (
    "abstract",
    "action",
    "agencies",
    "cfr_references",
    "citation",
    "comments_close_on",
    "correction_of",
    "dates",
    "docket_ids",
    "document_number",
    "effective_on",
    "html_url",
    "pdf_url",
    "publication_date",
    "regulation_id_numbers",
    "significant",
    "title",
    "type",
)
SUMMARY_LIMIT = 1500
CORRECTION = re.compile(r"^C\d+-(\d{4}-\d+)$")
EASTERN = "America/New_York"


def parse_documents(
    body: bytes, headers: Mapping[str, str], *, source: str = "federal_register"
) -> Parsed:
    """Parse a ``documents.json`` page (or a bare JSON array of documents) into items."""
    results, next_page = api_results(body, headers, source=source)
    items: list[ItemData] = []
    skipped = 0
    for raw in results:
        item = document_item(raw) if isinstance(raw, dict) else None
        if item is None:
            skipped += 1
        else:
            items.append(item)
    return Parsed(tuple(items), skipped=skipped, next_page=next_page)


def api_results(
    body: bytes, headers: Mapping[str, str], *, source: str
) -> tuple[list[Any], str | None]:
    """The ``results`` of a federalregister.gov API answer (a bare JSON array too) and its
    ``next_page_url``; an error answer, HTML or anything else is a ParseError saying which."""
    text = decode(body, headers, markup="xml").strip()
    if text.startswith("<"):
        raise ParseError(source, "an HTML/XML page where the Federal Register JSON was expected")
    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        raise ParseError(source, f"not JSON: {exc}") from exc
    next_page: str | None = None
    if isinstance(document, list):
        results: Any = document
    elif isinstance(document, dict):
        if "errors" in document:
            raise ParseError(source, f"the API refused the search: {document['errors']}")
        if "results" not in document and isinstance(document.get("message"), str):
            status = document.get("status")
            code = f" ({status})" if isinstance(status, int | str) and str(status) else ""
            message = plain_text(document["message"], limit=300, markup=False)
            raise ParseError(source, f"the API answered with an error{code}: {message}")
        if "results" not in document and "count" not in document:
            raise ParseError(source, "neither 'results' nor 'count' in the answer")
        results = document.get("results", [])
        raw_next = document.get("next_page_url")
        next_page = raw_next if isinstance(raw_next, str) and raw_next else None
    else:
        raise ParseError(source, "the answer is neither an object nor a list")
    if not isinstance(results, list):
        raise ParseError(source, "'results' is not a list")
    return results, next_page


def document_item(raw: Mapping[str, Any]) -> ItemData | None:
    """One document → an item keyed by its document number; None without number or title."""
    number = raw.get("document_number")
    raw_title = raw.get("title")
    title = plain_text(raw_title if isinstance(raw_title, str) else None, limit=MAX_TITLE)
    if not isinstance(number, str) or not number.strip() or not title:
        return None
    number = number.strip()
    published_on = json_date(raw.get("publication_date"))
    url = canonical_url(json_str(raw.get("html_url"))) or (
        f"https://www.federalregister.gov/d/{number}"
    )
    fields = FederalRegisterFields(document_number=number)
    if kind := json_text(raw.get("type")):
        fields["document_type"] = kind
    if action := json_text(raw.get("action")):
        fields["action"] = action
    if citation := json_text(raw.get("citation")):
        fields["citation"] = citation
    if dates := json_text(raw.get("dates")):
        fields["dates"] = dates
    if pdf_url := canonical_url(json_str(raw.get("pdf_url"))):
        fields["pdf_url"] = pdf_url
    if day := json_date(raw.get("publication_date")):
        fields["publication_date"] = day.isoformat()
    if day := json_date(raw.get("effective_on")):
        fields["effective_on"] = day.isoformat()
    if day := json_date(raw.get("comments_close_on")):
        fields["comments_close_on"] = day.isoformat()
    if isinstance(raw.get("significant"), bool):
        fields["significant"] = raw["significant"]
    if rins := json_strings(raw.get("regulation_id_numbers")):
        fields["regulation_id_numbers"] = rins
    if dockets := json_strings(raw.get("docket_ids")):
        fields["docket_ids"] = dockets
    if cfr := _cfr(raw.get("cfr_references")):
        fields["cfr_references"] = cfr
    agencies = [
        a["slug"]
        for a in raw.get("agencies") or []
        if isinstance(a, dict) and isinstance(a.get("slug"), str)
    ]
    if agencies:
        fields["agencies"] = agencies
    correction = CORRECTION.match(number)
    if correction:
        fields["correction_of"] = correction.group(1)
    elif correction_of := json_str(raw.get("correction_of")):
        fields["correction_of"] = correction_of.strip()
    summary = plain_text(json_str(raw.get("abstract")), limit=SUMMARY_LIMIT)
    fields |= list_fields(title, summary)
    return ItemData(
        external_id=number,
        title=title,
        url=url,
        summary=summary,
        language="en",
        published_at=local_midnight(published_on, load_zone(EASTERN)) if published_on else None,
        date_only=True,
        fields=item_fields(fields),
    )


def search_url(base: str, options: Mapping[str, Any], since: date) -> str:
    """The ``documents.json`` search for the source's agencies and types since ``since``."""
    params: list[tuple[str, str]] = [
        ("conditions[agencies][]", a) for a in option_list(options, "agencies", DEFAULT_AGENCIES)
    ]
    params += [("conditions[type][]", t) for t in option_list(options, "types", DEFAULT_TYPES)]
    params.append(("conditions[publication_date][gte]", since.isoformat()))
    params += [("fields[]", f) for f in FIELDS]
    params += [
        ("order", "newest"),
        ("per_page", str(min(option_int(options, "per_page", 100), 100))),
    ]
    separator = "&" if urlsplit(base).query else "?"
    return f"{base}{separator}{urlencode(params)}"


class FederalRegisterSource:
    """``kind: federal_register``. Cursor: ``{"watermark": "YYYY-MM-DD"}``."""

    kind: ClassVar[str] = "federal_register"

    async def poll(
        self, fetcher: Fetcher, state: SourceState, *, now: datetime, known: KnownIds
    ) -> PollResult:
        options = state.options
        today = now.date()
        watermark = json_date((state.cursor or {}).get("watermark"))
        if watermark is not None and watermark > today:  # stored by a release without the cap
            watermark = today
        if watermark is None:
            since = today - timedelta(days=option_int(options, "initial_days", 30))
        else:
            since = watermark - timedelta(days=option_int(options, "lookback_days", 3))
        url: str | None = search_url(state.url, options, since)
        host = urlsplit(state.url).hostname
        seen_urls: set[str] = set()
        items: dict[str, ItemData] = {}
        skipped = requests = 0
        warnings: list[str] = []
        max_pages = option_int(options, "max_pages", 10)
        while url is not None:
            if url in seen_urls:
                warnings.append("next_page_url repeats a page (loop stopped)")
                break
            if len(seen_urls) >= max_pages:
                warnings.append(f"stopped after {max_pages} pages")
                break
            seen_urls.add(url)
            result = await fetcher.get(url, source=state.name, accept="application/json")
            requests += 1
            parsed = await fetcher.cpu.run(
                parse_documents, result.body, dict(result.headers), source=state.name
            )
            skipped += parsed.skipped
            for item in parsed.items:
                items.setdefault(item.external_id, item)
            url = parsed.next_page
            if url is not None and urlsplit(url).hostname != host:
                warnings.append(f"next_page_url on another host not followed: {url}")
                url = None
        dates = [d for i in items.values() if (d := json_date(i.fields.get("publication_date")))]
        if future := [d for d in dates if d > today]:
            # A mistyped date ("2062-10-01") must not move the search past every real document.
            warnings.append(
                f"publication dates after today ignored for the watermark: {max(future)}"
            )
        newest = max((d for d in dates if d <= today), default=None)
        if watermark is not None and (newest is None or newest < watermark):
            newest = watermark
        cursor = {"watermark": newest.isoformat()} if newest else dict(state.cursor or {})
        return PollResult(
            items=tuple(items.values()),
            cursor=cursor or None,
            skipped=skipped,
            requests=requests,
            warnings=tuple(warnings),
        )


def json_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def json_text(value: Any) -> str | None:
    """A string value as plain text (GPO markup and entities gone), or None."""
    return plain_text(value) or None if isinstance(value, str) else None


def json_strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v.strip() for v in value if isinstance(v, str) and v.strip()]


def json_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _cfr(value: Any) -> list[str]:
    refs: list[str] = []
    if not isinstance(value, list):
        return refs
    for ref in value:
        if not isinstance(ref, dict) or not _cfr_number(ref.get("title")):
            continue
        title, part, chapter = (_cfr_number(ref.get(key)) for key in ("title", "part", "chapter"))
        if part:
            refs.append(f"{title} CFR {part}")
        elif chapter:
            refs.append(f"{title} CFR chapter {chapter}")
        else:
            refs.append(f"{title} CFR")
    return refs


def _cfr_number(value: Any) -> str | None:
    """A CFR title, part or chapter as printed; 0, empty and non-numbers are none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value > 0 else None
    if isinstance(value, str) and value.strip() and value.strip() not in {"0", "None"}:
        return plain_text(value, limit=20, markup=False)
    return None
