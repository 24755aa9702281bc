"""RSS 0.9x/2.0, Atom and RDF feeds, parsed by feedparser from bytes and headers.

Before feedparser sees a document: XML entity declarations anywhere in the prolog, however
long, are refused (entity expansion, "billion laughs"); the text is decoded by
``scrapers.charset`` (so a gb2312 prolog reads as gb18030) and handed over as UTF-8; junk
before the XML declaration is dropped; and the root element must be a feed: an HTML page (an
error page served with 200) is a ``ParseError``, not an empty feed. A document cut off in
transfer loses the entry it ends in (counted as skipped; a ``ParseError`` when that is the
first), while feeds malformed before their end are read leniently. A guid that repeats within
the document identifies none of its entries (their links do). Dates without a zone are
read in the source's ``timezone`` option (else Asia/Shanghai for a Chinese feed, else UTC) and
flagged; a missing date is left to the store (first-seen time, ``published_at_guessed``), as is
one more than a day after the poll (``models.items.dated``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from xml.parsers import expat

import feedparser

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
    language_zone,
    parse_datetime,
    plain_text,
    previous_external_ids,
)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
SUMMARY_LIMIT = 1000
TITLE_LIMIT = MAX_TITLE
_CHAR_REF = re.compile(r"&#([xX][0-9a-fA-F]{1,8}|[0-9]{1,10});")
_ENTITY_DECL = re.compile(r"<!ENTITY", re.IGNORECASE)
# What a harmless internal subset holds: external parameter entities (the XHTML entity sets
# Drupal declares: <!ENTITY % HTMLlat1 PUBLIC "..." "...">), their references and comments.
_HARMLESS_DECL = re.compile(
    r"<!ENTITY\s+%\s*[\w.-]+\s+(?:PUBLIC\s+(?:\"[^\"]*\"|'[^']*')\s*)?"
    r"(?:SYSTEM\s+)?(?:\"[^\"]*\"|'[^']*')\s*>|%[\w.-]+;|<!--.*?-->|\s+",
    re.DOTALL | re.IGNORECASE,
)
_XML_DECL = re.compile(r"<\?xml\s")  # not <?xml-stylesheet, not <?xml:namespace
_XML_DECL_ENCODING = re.compile(r"^(<\?xml[^>]*?encoding\s*=\s*)([\"'])[\w.:-]+\2", re.IGNORECASE)
_ROOT = re.compile(r"<([A-Za-z_][\w:.-]*)")
_QUOTED = r"\"[^\"]*+\"|'[^']*+'"
# What may come before the root element, read as XML reads it: processing instructions,
# comments, and a DOCTYPE whose external id (quoted strings may hold ">" or "[") and internal
# subset (declarations, comments and PIs may hold "]" and ">") run to its real end, however
# long. Possessive and atomic throughout: hostile input cannot make it backtrack.
_PROLOG_PART = re.compile(
    r"\s*+(?:(?><\?.*?\?>)|(?><!--.*?-->)|(?P<doctype><!DOCTYPE"
    rf"(?:{_QUOTED}|[^\"'\[>]++)*+"
    rf"(?:\[(?P<subset>(?:{_QUOTED}|(?><!--.*?-->)|(?><\?.*?\?>)|<(?!!--|\?)|[^\]\"'<]++)*+)\])?"
    r"\s*+>))",
    re.DOTALL,
)
_UNREAD_DECLARATION = re.compile(r"\s*+<!")
FEED_ROOTS = frozenset({"rss", "feed", "rdf:rdf", "rdf", "channel"})
ENTRY_ELEMENTS = frozenset({"item", "entry"})  # local names, as feedparser reads entries
# The start tag of a feed's root element (any prefix): what comes after it is content.
_FEED_START = re.compile(
    rf"<(?:[\w.-]+:)?(?:{'|'.join(sorted({r.split(':')[-1] for r in FEED_ROOTS}))})[\s/>]",
    re.IGNORECASE,
)


def parse_feed(
    body: bytes,
    headers: Mapping[str, str],
    *,
    url: str | None = None,
    timezone: str | None = None,
    source: str = "feed",
) -> Parsed:
    """Parse a feed document into items (see the module docstring for the rules)."""
    text = _clean_references(_clean_prolog(decode(body, headers, markup="xml")))
    prolog = _read_prolog(text)
    if _ENTITY_DECL.search(text, 0, prolog.end):
        text = _without_harmless_doctype(text, prolog)
        prolog = _read_prolog(text)
        if _ENTITY_DECL.search(text, 0, prolog.end):
            msg = "the document declares XML entities (refused: entity expansion)"
            raise ParseError(source, msg)
    root = prolog.root
    if root is None:
        raise ParseError(source, "not a feed: no XML element found")
    if root.lower() == "html":
        raise ParseError(source, "an HTML page where a feed was expected (an error page?)")
    if root.lower() not in FEED_ROOTS and root.split(":")[-1].lower() not in FEED_ROOTS:
        raise ParseError(source, f"not a feed: the root element is <{root}>")
    text = _XML_DECL_ENCODING.sub(r"\1\2utf-8\2", text, count=1)
    response_headers = {"content-type": "application/xml; charset=utf-8"}
    if url:
        response_headers["content-location"] = url
    data = text.encode("utf-8")
    parsed: Any = feedparser.parse(io.BytesIO(data), response_headers=response_headers)
    entries = list(parsed.entries)
    complete = _entries_before_cut(data) if parsed.get("bozo") else None
    if complete == 0:
        raise ParseError(source, "the feed ends inside its first entry (cut off in transfer?)")
    cut = len(entries) - len(entries[:complete])  # complete None: nothing was cut
    entries = entries[:complete]
    if not entries and parsed.get("bozo"):
        problem = parsed.get("bozo_exception")
        # An HTML entity XML does not define (&aacute;) is read by feedparser's lenient
        # parser: an empty feed, not a broken one. Anything else unreadable is an error.
        if not (parsed.get("version") and "undefined entity" in str(problem)):
            raise ParseError(source, f"unreadable feed: {problem}")
    feed_language = str(parsed.feed.get("language") or "")
    titles = " ".join(str(e.get("title", "")) for e in entries[:20])
    zone_name = timezone or language_zone(feed_language) or language_zone(detect_language(titles))
    default_zone = load_zone(zone_name, strict=True) if zone_name else UTC
    zone_name = zone_name or "UTC"
    # A guid that several entries with different links carry (a CMS putting its site URL in
    # every <guid>) identifies none of them: they are told apart by their links, as without a
    # guid. One story listed twice (same guid, same link) is one entry, the store keeps it once.
    links: dict[str | None, set[str]] = {}
    for entry in entries:
        links.setdefault(_guid(entry), set()).add(str(entry.get("link") or ""))
    items: list[ItemData] = []
    skipped = cut  # the entry a cut document ends in: the next poll reads it whole
    for entry in entries:
        guid = _guid(entry)
        shared = guid is not None and len(links[guid]) > 1
        try:
            item = _item(
                entry,
                guid=None if shared else guid,
                shared_guid=guid if shared else None,
                base=url,
                default_zone=default_zone,
                zone_name=zone_name,
            )
        except (ValueError, TypeError, KeyError, OverflowError):  # one odd entry, not the feed
            item = None
        if item is None:
            skipped += 1
        else:
            items.append(item)
    return Parsed(tuple(items), skipped=skipped)


def _guid(entry: Any) -> str | None:
    """The entry's guid (Atom's id) as it identifies the entry, if it has one."""
    guid = str(entry.get("id") or "").strip()
    return guid or None


def _item(
    entry: Any,
    *,
    guid: str | None,
    shared_guid: str | None = None,
    base: str | None,
    default_zone: Any,
    zone_name: str,
) -> ItemData | None:
    """The entry as an item, identified by ``guid`` when given (else by its link). A
    ``shared_guid`` (one other entries carry too) is kept as a previous id: the article stored
    under it before may be adopted by the entry that is that article (the store checks); so is
    the link of an entry with a guid, for the poll where its guid was shared."""
    link = canonical_url(entry.get("link"), base)
    summary = plain_text(
        entry.get("summary") or entry.get("description"),
        limit=SUMMARY_LIMIT,
        markup=_is_markup(entry.get("summary_detail")),
    )
    title = plain_text(
        entry.get("title"), limit=TITLE_LIMIT, markup=_is_markup(entry.get("title_detail"))
    ) or plain_text(summary, limit=120, markup=False)
    if not title and not link:
        return None
    raw_date = entry.get("published") or entry.get("updated") or entry.get("created")
    published, assumed = parse_datetime(raw_date, default_zone=default_zone)
    if published is None:
        struct = entry.get("published_parsed") or entry.get("updated_parsed")
        if struct is not None:
            year, month, day, hour, minute, second = (int(v) for v in struct[:6])
            published = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    fields = FeedFields()
    author = plain_text(entry.get("author"))
    if author:
        fields["author"] = author
    if published is not None and assumed:
        fields["date_zone_assumed"] = zone_name
    previous = list(previous_external_ids(guid=guid, url=link))
    if shared_guid:
        previous.append(external_id(guid=shared_guid, url=None, title="", published=None))
    if guid and link:  # stored under its link while its guid was shared with another story
        previous.append(external_id(guid=None, url=link, title="", published=None))
    return ItemData(
        external_id=external_id(guid=guid, url=link, title=title, published=published),
        previous_ids=tuple(previous),
        title=title,
        url=link,
        summary=summary,
        language=detect_language(title, summary),
        published_at=published,
        published_at_guessed=published is None,
        fields=item_fields(fields),
    )


def _entries_before_cut(data: bytes) -> int | None:
    """When ``data`` is well-formed as far as it goes but ends inside an entry, the number of
    entries complete before it; otherwise (well-formed, broken before its end, or ending
    between entries) None. A download cut off (a proxy or CDN serving part of the feed) is read
    leniently by feedparser, last entry included: its first fields were stored under its link,
    undated, and the next poll stored the whole entry again under its guid."""
    parser = expat.ParserCreate()
    open_entries = complete = 0

    def start(name: str, attributes: object) -> None:
        nonlocal open_entries
        if name.rpartition(":")[2] in ENTRY_ELEMENTS:
            open_entries += 1

    def end(name: str) -> None:
        nonlocal open_entries, complete
        if name.rpartition(":")[2] in ENTRY_ELEMENTS and open_entries:
            open_entries -= 1
            if not open_entries:
                complete += 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, False)  # a token left open at the end is kept for more, not an error
    except expat.ExpatError:
        return None  # broken before its end: a real-world malformed feed, read leniently
    try:
        parser.Parse(b"", True)
    except expat.ExpatError:
        return complete if open_entries else None
    return None


def _without_harmless_doctype(text: str, prolog: _Prolog) -> str:
    """``text`` without its DOCTYPE when the internal subset only refers to external entity
    sets (never fetched, never expanded here); otherwise unchanged (and refused)."""
    doctype = prolog.doctype
    subset = doctype.group("subset") if doctype else None
    if doctype is None or subset is None or _HARMLESS_DECL.sub("", subset):
        return text
    return text[: doctype.start("doctype")] + text[doctype.end("doctype") :]


def _is_markup(detail: Any) -> bool:
    """Whether feedparser says a text construct is HTML (``text/plain`` is shown as is: a
    title "History of the <blink> tag" keeps its tag)."""
    kind = detail.get("type") if isinstance(detail, dict) else None
    return kind is None or "html" in str(kind)


def _invalid_reference(match: re.Match[str]) -> str:
    digits = match.group(1)
    try:
        code = int(digits[1:], 16) if digits[:1] in "xX" else int(digits)
    except ValueError:
        return "\ufffd"
    if code in (0x9, 0xA, 0xD) or (0x20 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF):
        return match.group()
    return "\ufffd"  # a surrogate, a control or out of range: no character to refer to


def _clean_references(text: str) -> str:
    """References to code points XML cannot hold (``&#xD800;``, ``&#0;``) become U+FFFD before
    feedparser sees them (its lenient parser crashed on them, losing the whole feed)."""
    return _CHAR_REF.sub(_invalid_reference, text) if "&#" in text else text


def _clean_prolog(text: str) -> str:
    """``text`` from its XML declaration on (junk before it dropped: a PHP warning, blank lines),
    else from its first tag. The declaration is the ``<?xml …?>`` before the feed's root
    element: ``<?xml-stylesheet …?>``, or MS Word's ``<?xml:namespace …>`` in an item of a feed
    without a declaration, is not one (cutting there lost the whole feed)."""
    text = text.lstrip("\ufeff")
    declaration = _XML_DECL.search(text)
    start = declaration.start() if declaration is not None else 0
    if start > 0 and _FEED_START.search(text, 0, start) is None:
        return text[start:]
    stripped = text.lstrip()
    first = stripped.find("<")
    return stripped[first:] if first > 0 else stripped


@dataclass(frozen=True, slots=True)
class _Prolog:
    """What comes before the root element. ``end``: where the prolog ends, at the root
    element's ``<``; the whole text when a declaration could not be read to its end (the XML
    parser might read it further, so all of it is looked at). ``doctype``: the DOCTYPE read."""

    end: int
    root: str | None
    doctype: re.Match[str] | None


def _read_prolog(text: str) -> _Prolog:
    """The prolog of ``text`` and its root element, however long the prolog (entity
    declarations after 64 KB of comment were once not looked at, and expanded)."""
    position = 0
    doctype: re.Match[str] | None = None
    while (part := _PROLOG_PART.match(text, position)) is not None and part.end() > position:
        if doctype is None and part.group("doctype") is not None:
            doctype = part
        position = part.end()
    root = _ROOT.search(text, position)
    unread = _UNREAD_DECLARATION.match(text, position) is not None
    end = root.start() if root is not None and not unread else len(text)
    return _Prolog(end, root.group(1) if root else None, doctype)


class RssSource:
    """``kind: rss``: one conditional GET of the feed URL, then ``parse_feed``."""

    kind: ClassVar[str] = "rss"

    async def poll(
        self, fetcher: Fetcher, state: SourceState, *, now: datetime, known: KnownIds
    ) -> PollResult:
        return await poll_one_page(
            fetcher,
            state,
            accept=FEED_ACCEPT,
            parse=parse_feed,
            timezone=option_str(state.options, "timezone"),
            source=state.name,
        )
