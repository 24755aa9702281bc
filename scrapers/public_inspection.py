"""The Federal Register's public inspection desk (``kind: public_inspection``): documents filed
with the Office of the Federal Register and shown to the public a day or more before they are
printed (``/api/v1/public-inspection-documents/current.json``, the latest inspection issue).

For BIS this is the earliest official signal of a rule: an Entity List rule is on public
inspection the day before the Federal Register publishes it. An item here carries the
document number the published document will have, so ``models.events`` joins the two into one
event: subscribers get the alert from the inspection copy and the publication as its update.

The listing has no abstract (``reference/sources.md`` §1.7; the fields are those of the API's
``PublicInspectionDocumentApiRepresentation``): a title such as "Additions to the Entity List"
says neither who nor where. So for each new document of the watched agencies the poll reads
its text (``raw_text_url``, only on federalregister.gov or the listing's own host) and keeps
the SUMMARY, ACTION and DATES paragraphs and the RIN, as the published document's abstract and
fields would have them.
A text that cannot be read is tried again at the next polls; after three failed reads the item
is stored as listed (``raw_text_error`` says why): it is never lost. The listing holds every
agency's documents (hundreds a day): the ``agencies`` option (slugs, default BIS) and ``types``
(RULE, PRORULE, NOTICE, PRESDOCU; default the first three) choose this source's. Inspection
lists only the issuing sub-agency, so BIS is ``industry-and-security-bureau`` alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from models.entitylist import list_fields
from models.errors import FetchError, ParseError
from models.fields import FederalRegisterFields, item_fields
from models.items import MAX_TITLE, ItemData
from models.localtime import load_zone
from scrapers.base import (
    KnownIds,
    Parsed,
    PollResult,
    SourceState,
    fetch_parsed,
    option_int,
    option_list,
)
from scrapers.charset import decode
from scrapers.federal_register import (
    CORRECTION,
    DEFAULT_AGENCIES,
    DEFAULT_TYPES,
    EASTERN,
    SUMMARY_LIMIT,
    api_results,
    json_date,
    json_str,
    json_strings,
    json_text,
)
from scrapers.http import Fetcher
from scrapers.normalize import canonical_url, plain_text

# The listing's ``type`` is a display name; sources name types by the search codes.
TYPE_NAMES = {
    "RULE": "Rule",
    "PRORULE": "Proposed Rule",
    "NOTICE": "Notice",
    "PRESDOCU": "Presidential Document",
}
TEXT_HOSTS = ("federalregister.gov", "www.federalregister.gov")
TEXT_ACCEPT = "text/plain, text/html;q=0.5, */*;q=0.1"
TEXT_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_TEXTS = 10  # texts read per poll; beyond them new documents wait for the next
DEFAULT_TEXT_SECONDS = 40  # ... and as long as a poll reads texts (sources time out at 120 s)
MAX_TEXT_TRIES = 3  # failed reads of one text before its document is stored as listed
_SECTION = re.compile(
    r"(?<![A-Za-z])(AGENCY|ACTION|SUMMARY|DATES?|ADDRESSES|FOR FURTHER INFORMATION CONTACT"
    r"|SUPPLEMENTARY INFORMATION)\s*:"
)
_RIN = re.compile(r"\bRIN\s+(\d{4}-[A-Z]{2}\d{2})\b")
_DOCKET = re.compile(r"\[\s*(Docket\s+No\.?\s*[\w.-]+)\s*\]")
# "Regu-\nlations" in a PDF's text. One line break only: ``\s*\n\s*`` backtracks
# quadratically over a long run of blank lines.
_HYPHENATED = re.compile(r"(?<=[a-z])-[ \t\r]*\n[ \t\r]*(?=[a-z])")
TEXT_READ = 200_000  # characters of a text read: its head holds every section wanted


@dataclass(frozen=True, slots=True)
class InspectionListing:
    """The watched documents of one inspection listing, and where each one's text is."""

    parsed: Parsed
    texts: Mapping[str, str]  # document number → its raw text URL (on federalregister.gov)


@dataclass(frozen=True, slots=True)
class DocumentText:
    """What a document's text says that its listing does not."""

    summary: str = ""
    action: str = ""
    dates: str = ""
    rins: tuple[str, ...] = ()
    dockets: tuple[str, ...] = ()


def parse_public_inspection(
    body: bytes,
    headers: Mapping[str, str],
    *,
    url: str | None = None,
    source: str = "public_inspection",
    agencies: Sequence[str] = DEFAULT_AGENCIES,
    types: Sequence[str] = DEFAULT_TYPES,
) -> Parsed:
    """The watched agencies' documents of a public inspection listing, as items."""
    listing = read_listing(body, headers, url=url, source=source, agencies=agencies, types=types)
    return listing.parsed


def read_listing(
    body: bytes,
    headers: Mapping[str, str],
    *,
    url: str | None = None,
    source: str = "public_inspection",
    agencies: Sequence[str] = DEFAULT_AGENCIES,
    types: Sequence[str] = DEFAULT_TYPES,
) -> InspectionListing:
    """``parse_public_inspection`` with the text URL of each document kept (``url``: where the
    listing came from; texts are read from its host or federalregister.gov only). Documents of
    other agencies or types are left out; entries without a number or title count skipped."""
    results, _ = api_results(body, headers, source=source)
    listing_host = urlsplit(url).hostname if url else None
    hosts = {*TEXT_HOSTS, *([listing_host] if listing_host else [])}
    wanted_agencies = {a.strip().lower() for a in agencies}
    wanted_types = {TYPE_NAMES.get(t.strip().upper(), t.strip()).lower() for t in types}
    known_types = {name.lower() for name in TYPE_NAMES.values()}
    items: list[ItemData] = []
    texts: dict[str, str] = {}
    skipped = 0
    seen: set[str] = set()
    for raw in results:
        if not isinstance(raw, dict):
            skipped += 1
            continue
        if not wanted_agencies & _agency_keys(raw.get("agencies")):
            continue
        kind = (json_text(raw.get("type")) or "").lower()
        if kind in known_types and kind not in wanted_types:
            continue  # an unknown or missing type is kept: better one too many than one lost
        item = inspection_item(raw)
        if item is None or item.external_id in seen:
            skipped += 1
            continue
        seen.add(item.external_id)
        listed = json_str(raw.get("raw_text_url"))
        if (found := text_url(listed, hosts)) is not None:
            texts[item.external_id] = found
        elif listed is not None:
            item = _listed_only(item, "its text URL is not on federalregister.gov: not read")
        items.append(item)
    return InspectionListing(Parsed(tuple(items), skipped=skipped), texts)


def inspection_item(raw: Mapping[str, Any]) -> ItemData | None:
    """One listed document → an item keyed by the number it will be published under; None
    without number or title. Its time is when it was filed (a real time, not a date)."""
    number = json_str(raw.get("document_number"))
    raw_title = raw.get("title")
    title = plain_text(raw_title if isinstance(raw_title, str) else None, limit=MAX_TITLE)
    if number is None or not title:
        return None
    number = number.strip()
    fields = FederalRegisterFields(document_number=number)
    if kind := json_text(raw.get("type")):
        fields["document_type"] = kind
    filed = _filed_at(raw.get("filed_at"))
    if filed is not None:
        fields["filed_at"] = filed.isoformat()
    if day := json_date(raw.get("publication_date")):
        fields["publishes_on"] = day.isoformat()
    if raw.get("filing_type") == "special":
        fields["special_filing"] = True
    if note := json_text(raw.get("editorial_note")):
        fields["editorial_note"] = note
    if pdf_url := canonical_url(json_str(raw.get("pdf_url"))):
        fields["pdf_url"] = pdf_url
    if dockets := json_strings(raw.get("docket_numbers")):
        fields["docket_ids"] = dockets
    if slugs := sorted(_agency_keys(raw.get("agencies"), slugs_only=True)):
        fields["agencies"] = slugs
    if correction := CORRECTION.match(number):
        fields["correction_of"] = correction.group(1)
    url = canonical_url(json_str(raw.get("html_url")))
    return ItemData(
        external_id=number,
        title=title,
        url=url or f"https://www.federalregister.gov/d/{number}",
        language="en",
        published_at=filed,
        fields=item_fields(fields),
    )


def text_url(value: str | None, hosts: Collection[str] = TEXT_HOSTS) -> str | None:
    """A document text URL worth fetching: http(s) on one of ``hosts`` only (the listing is
    input like any other; it does not get to send the poller elsewhere)."""
    url = canonical_url(value)
    if url is None:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in {"https", "http"} and parts.hostname in hosts else None


def parse_document_text(
    body: bytes, headers: Mapping[str, str], *, source: str = "public_inspection"
) -> DocumentText:
    """The SUMMARY, ACTION and DATES paragraphs, RINs and docket numbers of a document's text
    (plain text as filed, or HTML). A text with none of them is a ParseError."""
    text = decode(body, headers, markup="html")[:TEXT_READ]
    if text.lstrip().startswith("<"):
        text = plain_text(text)  # tags out; the section headings still stand in the text
    text = _HYPHENATED.sub("", text)
    sections: dict[str, tuple[int, int]] = {}
    found = list(_SECTION.finditer(text))
    for index, here in enumerate(found):
        end = found[index + 1].start() if index + 1 < len(found) else len(text)
        name = "DATES" if here.group(1).startswith("DATE") else here.group(1)
        sections.setdefault(name, (here.end(), end))

    def section(name: str, limit: int) -> str:
        start, end = sections.get(name, (0, 0))
        return plain_text(text[start:end], limit=limit, markup=False)

    head = text[:20_000]  # the RIN and docket stand above the SUMMARY
    facts = DocumentText(
        summary=section("SUMMARY", SUMMARY_LIMIT),
        action=section("ACTION", 300),
        dates=section("DATES", 600),
        rins=tuple(dict.fromkeys(_RIN.findall(head))),
        dockets=tuple(dict.fromkeys(" ".join(d.split()) for d in _DOCKET.findall(head))),
    )
    if not (facts.summary or facts.action or facts.rins):
        raise ParseError(source, "no SUMMARY, ACTION or RIN in the document's text")
    return facts


def with_text(item: ItemData, facts: DocumentText) -> ItemData:
    """The listed item with what its text says (the listing's own facts win)."""
    fields = FederalRegisterFields()
    if facts.action:
        fields["action"] = facts.action
    if facts.dates:
        fields["dates"] = facts.dates
    if facts.rins:
        fields["regulation_id_numbers"] = list(facts.rins)
    if facts.dockets:
        fields["docket_ids"] = list(facts.dockets)
    summary = facts.summary or item.summary
    fields |= list_fields(item.title, summary)
    merged = item_fields(fields) | item.fields
    return replace(item, summary=summary, fields=merged)


class PublicInspectionSource:
    """``kind: public_inspection``: the current listing by conditional GET; the text of each new
    watched document. A first poll stores the listing as history without reading texts; later
    polls return new documents only (like ``kind: cac``: one stored with its text is not read
    again).

    A text is worth waiting for (without it "Additions to the Entity List" matches nothing), so
    a document whose text could not be read, or was not reached (at most ``max_texts``, default
    10, and ``text_seconds``, default 40, a poll), is held back rather than stored: the poll
    keeps no validators, so the next one reads the listing again and tries it again. After
    ``MAX_TEXT_TRIES`` failed reads it is stored as listed (``raw_text_error``); nothing is
    lost. The tries are counted in the cursor (``{"tries": {number: n}}``).
    """

    kind: ClassVar[str] = "public_inspection"

    async def poll(
        self, fetcher: Fetcher, state: SourceState, *, now: datetime, known: KnownIds
    ) -> PollResult:
        fetched = await fetch_parsed(
            fetcher,
            state,
            accept="application/json",
            parse=read_listing,
            source=state.name,
            agencies=option_list(state.options, "agencies", DEFAULT_AGENCIES),
            types=option_list(state.options, "types", DEFAULT_TYPES),
        )
        if isinstance(fetched, PollResult):
            return fetched
        result, listing = fetched
        items = list(listing.parsed.items)
        if state.first_poll or not items:
            return PollResult(
                items=tuple(items),
                etag=result.etag,
                last_modified=result.last_modified,
                skipped=listing.parsed.skipped,
            )
        # Only new documents: a stored one read again without its text would look edited.
        already = await known([i.external_id for i in items])
        fresh = [i for i in items if i.external_id not in already]
        reads = _Reads(state, listing.texts)
        stored = [await reads.item(fetcher, item) for item in fresh]
        kept = [item for item in stored if item is not None]
        warnings = []
        if unread := [i.external_id for i in kept if i.fields.get("raw_text_error")]:
            warnings.append(f"stored as listed, without their text: {', '.join(unread)}")
        if reads.held:
            warnings.append(f"held back for their text: {', '.join(reads.held)}")
        return PollResult(
            items=tuple(kept),
            # A document held back must be seen again: no 304 for the next poll.
            etag=None if reads.held else result.etag,
            last_modified=None if reads.held else result.last_modified,
            cursor={"tries": reads.tries},
            skipped=listing.parsed.skipped,
            requests=1 + reads.requests,
            warnings=tuple(warnings),
        )


class _Reads:
    """One poll's reads of document texts, within its budget, and what they left."""

    def __init__(self, state: SourceState, texts: Mapping[str, str]) -> None:
        self.state, self.texts = state, texts
        self.budget = option_int(state.options, "max_texts", DEFAULT_MAX_TEXTS)
        seconds = option_int(state.options, "text_seconds", DEFAULT_TEXT_SECONDS)
        self.deadline = time.monotonic() + seconds
        raw = (state.cursor or {}).get("tries")
        self.before: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        self.tries: dict[str, int] = {}
        self.held: list[str] = []
        self.requests = 0

    async def item(self, fetcher: Fetcher, item: ItemData) -> ItemData | None:
        """The item to store (with its text, or as listed after its last try), or None: held
        back for the next poll."""
        number = item.external_id
        url = self.texts.get(number)
        if url is None:
            return item  # no text to read (or one not on federalregister.gov: said so)
        if self.budget == 0 or time.monotonic() >= self.deadline:
            self._hold(number, self._tries(number))  # not tried: no try spent
            return None
        self.budget -= 1
        self.requests += 1
        try:
            page = await fetcher.get(
                url, source=self.state.name, accept=TEXT_ACCEPT, max_bytes=TEXT_MAX_BYTES
            )
            facts = await fetcher.cpu.run(
                parse_document_text, page.body, dict(page.headers), source=self.state.name
            )
        except (FetchError, ParseError) as exc:
            tries = self._tries(number) + 1
            if tries >= MAX_TEXT_TRIES:
                return _listed_only(item, exc.message)
            self._hold(number, tries)
            return None
        return with_text(item, facts)

    def _tries(self, number: str) -> int:
        value = self.before.get(number, 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def _hold(self, number: str, tries: int) -> None:
        self.held.append(number)
        if tries:
            self.tries[number] = tries


def _listed_only(item: ItemData, why: str) -> ItemData:
    return replace(item, fields={**item.fields, "raw_text_error": why[:300]})


def _agency_keys(value: Any, *, slugs_only: bool = False) -> set[str]:
    """The agencies of a listed document as slugs: the API's ``slug`` and, for an agency it
    lists by name only, the name slugified ("Industry and Security Bureau")."""
    keys: set[str] = set()
    for agency in value if isinstance(value, list) else []:
        if not isinstance(agency, dict):
            continue
        if isinstance(slug := agency.get("slug"), str) and slug.strip():
            keys.add(slug.strip().lower())
        if slugs_only:
            continue
        for name in (agency.get("name"), agency.get("raw_name")):
            if isinstance(name, str) and name.strip():
                keys.add("-".join(re.findall(r"[a-z0-9]+", name.lower())))
    return keys


def _filed_at(value: Any) -> datetime | None:
    """``2025-03-27T08:45:00.000-04:00`` → aware UTC; a time without an offset is Eastern."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=load_zone(EASTERN))
    return when.astimezone(UTC)
