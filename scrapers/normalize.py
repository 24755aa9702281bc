"""Normalization shared by every source kind: canonical URLs, plain text, dates, language, ids.

All functions are pure. Text from sources is hostile by default: markup is stripped (never
rendered), entities are decoded (twice when a source double-escaped them) and whitespace is
collapsed.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, date, datetime, time, tzinfo
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, unquote_plus, urlencode, urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

from models.items import bounded_id, clean_text

TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "yclid", "mc_cid", "mc_eid", "igshid", "_ga", "ref_src"}
)
_TAG = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>")
# Character references, numeric ones with or without their ";" (HTML reads ``&#233`` as é).
_ENTITY = re.compile(r"&(?:#\d{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[a-zA-Z][a-zA-Z0-9]{1,31};)")
MAX_RAW_TEXT = 65_536  # characters of one field looked at (an 8.6 MB title was seen)
_SPACE = re.compile(r"\s+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u309f\u30a0-\u30ff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_BARE_INT = re.compile(r"^\s*\d{1,12}\s*$")


def canonical_url(href: str | None, base: str | None = None) -> str | None:
    """An absolute http(s) URL with lower-case scheme and host and no default port; its query
    and fragment are kept exactly as published (``?rss`` stays ``?rss``, ``a/b`` is not
    encoded), less the tracking parameters (``utm_*``, ``fbclid``, ...). Anything else gives
    None."""
    if not href:
        return None
    href = href.strip()
    if not href:
        return None
    try:
        absolute = urljoin(base, href) if base else href
        if absolute.startswith("//"):
            absolute = "https:" + absolute
        parts = urlsplit(absolute)
        scheme = parts.scheme.lower()
        if scheme not in {"http", "https"} or not parts.hostname:
            return None
        host = parts.hostname.lower()
        port = parts.port
    except ValueError:
        return None
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    if ":" in (parts.hostname or "") and not host.startswith("["):  # IPv6 literal
        host = f"[{host}]"
    query = "&".join(pair for pair in parts.query.split("&") if pair and not _tracking(pair))
    return urlunsplit((scheme, host, parts.path or "/", query, parts.fragment))


def _tracking(pair: str) -> bool:
    key = unquote_plus(pair.split("=", 1)[0]).strip().lower()
    return key.startswith("utm_") or key in TRACKING_PARAMS


def plain_text(value: str | None, *, limit: int | None = None, markup: bool = True) -> str:
    """Text as a reader sees it: with ``markup`` (HTML content) the tags are stripped once;
    character references are decoded (a second pass for double-escaped ones such as
    ``&amp;#39;``), but what they decode to is text, never markup again (``&lt;DVD版&gt;`` stays
    ``<DVD版>``); characters that cannot be stored are cleaned (``models.items.clean_text``);
    whitespace is collapsed; cut at ``limit`` characters with an ellipsis. ``markup=False`` is
    for text that is already plain (a feed's ``text/plain`` title, a node's text)."""
    if not value:
        return ""
    # A field shown cut to ``limit`` needs only its start (an 8.6 MB title stalled the
    # pipeline); a whole document (a CAC article's facts) is read to the fetch limit.
    text = clean_text(value[: max(MAX_RAW_TEXT, limit * 8)] if limit is not None else value)
    if markup and _TAG.search(text):
        text = _HTML_TAG.sub(_tag_space, _strip_tags(text))
    for _ in range(2):
        if not _ENTITY.search(text):
            break
        text = _ENTITY.sub(lambda m: html.unescape(m.group()), text)
        if markup:  # escaped HTML in HTML content (a CMS that escaped its own markup)
            text = _HTML_TAG.sub(_tag_space, text)
    text = _SPACE.sub(" ", clean_text(text).replace("\u00a0", " ")).strip()
    return clean_text(text, limit)


# Tags of real HTML elements only: decoded text such as "<DVD版>" or "<Ctrl>" is text.
_HTML_TAG = re.compile(
    r"<\s*/?\s*(?:a|b|i|u|s|em|strong|small|big|sub|sup|span|font|code|pre|p|br|hr|div|li|ul|"
    r"ol|h[1-6]|table|tr|td|th|img|blockquote|section|article|figure|figcaption)\b[^<>]*>",
    re.IGNORECASE,
)


def _tag_space(match: re.Match[str]) -> str:
    return " " if _BLOCK.match(match.group()) else ""


_BLOCK = re.compile(
    r"<\s*/?\s*(?:br|p|div|li|ul|ol|tr|td|th|h[1-6]|table|section|article|blockquote)\b[^>]*>",
    re.IGNORECASE,
)


def _strip_tags(markup: str) -> str:
    # Block-level tags separate words; inline ones (<b>, <sub>, GPO's <INF>) do not.
    tree = LexborHTMLParser(f"<div>{_BLOCK.sub(' ', markup)}</div>")
    for node in tree.css("script, style"):
        node.decompose()
    root = tree.body
    return root.text(separator="") if root is not None else _TAG.sub(" ", markup)


def detect_language(*texts: str) -> str | None:
    """ "zh" when Chinese characters carry the text, "ja" when they come with kana (Japanese
    writes with kanji too, never Chinese with kana), "en" for Latin script, None for
    neither."""
    joined = " ".join(texts)
    cjk = len(_CJK.findall(joined))
    kana = len(_KANA.findall(joined))
    words = len(_LATIN_WORD.findall(joined))
    if cjk == 0 and kana == 0 and words == 0:
        return None
    # One Chinese character carries about as much as one English word does in a headline.
    if cjk + kana < words:
        return "en"
    return "ja" if kana >= 2 or kana * 10 >= cjk + kana else "zh"


LANGUAGE_ZONES = {"zh": "Asia/Shanghai", "ja": "Asia/Tokyo"}


def language_zone(language: str | None) -> str | None:
    """Where dates without a zone are read for a feed in ``language`` (a tag such as
    ``zh-cn`` or ``ja``), if the language says: China time for Chinese, Japan time for
    Japanese."""
    if not language:
        return None
    return LANGUAGE_ZONES.get(language.strip().lower().replace("_", "-").split("-")[0])


def previous_external_ids(*, guid: str | None, url: str | None) -> tuple[str, ...]:
    """The id PolicyWatch derived before issue 12 for an entry with this guid or canonical URL
    (URL guids and links canonicalized with their fragment dropped and their query
    re-encoded), when it differs from today's; the store adopts rows stored under it."""
    if guid and guid.strip() and not _BARE_INT.match(guid):
        value = guid.strip()
        if not value.lower().startswith(("http://", "https://")):
            return ()
        old = bounded_id(_legacy_canonical_url(value) or value)
        return (old,) if old != bounded_id(value) else ()
    if url:
        old = bounded_id(_legacy_canonical_url(url) or url)
        return (old,) if old != bounded_id(url) else ()
    return ()


def _legacy_canonical_url(url: str) -> str | None:
    """``canonical_url`` as it was before issue 12 (kept only for ``previous_external_ids``)."""
    try:
        parts = urlsplit(url)
        query = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
        ]
        return urlunsplit(
            (parts.scheme, parts.netloc, parts.path or "/", urlencode(query, doseq=True), "")
        )
    except ValueError:
        return None


def external_id(
    *, guid: str | None, url: str | None, title: str, published: datetime | None
) -> str:
    """A stable identity within one source: the guid exactly as given (a ``#fragment`` or a
    query tells entries apart) unless it is a bare integer, else the canonical URL, else a hash
    of title and date."""
    if guid and guid.strip() and not _BARE_INT.match(guid):
        return bounded_id(guid.strip())
    if url:
        return bounded_id(url)
    stamp = published.isoformat() if published else ""
    digest = hashlib.sha256(f"{title}\x00{stamp}".encode()).hexdigest()
    return f"sha256:{digest}"


_CN_DATETIME = re.compile(
    r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日(?:\s*(\d{1,2})\s*[:：]\s*(\d{2})(?:\s*[:：]\s*(\d{2}))?)?"
)
_NUMERIC = re.compile(
    r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?)?\s*$"
)


def parse_datetime(text: str | None, *, default_zone: tzinfo) -> tuple[datetime | None, bool]:
    """Parse RFC 822, ISO 8601, ``YYYY-MM-DD HH:MM[:SS]`` or ``YYYY年MM月DD日 HH:MM`` into UTC.

    Returns ``(when, zone_assumed)``: a time without an offset (or RFC 822's ``-0000``, "zone
    unknown") is read in ``default_zone`` and flagged, never silently taken as UTC. Unreadable
    text gives ``(None, False)``.
    """
    if not text or not text.strip():
        return None, False
    value = text.strip()
    parsed: datetime | None = None
    match = _CN_DATETIME.search(value)
    if match:
        y, mo, d, h, mi, s = match.groups()
        try:
            parsed = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))  # noqa: DTZ001 - the zone is attached below
        except ValueError:
            return None, False
    elif (numeric := _NUMERIC.match(value)) is not None:
        y, mo, d, h, mi, s = numeric.groups()
        try:
            parsed = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))  # noqa: DTZ001 - the zone is attached below
        except ValueError:
            return None, False
    else:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None, False
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=default_zone).astimezone(UTC), True
    return parsed.astimezone(UTC), False


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH_DAY_YEAR = re.compile(r"^\s*([A-Za-z]{3,9})\.?\s+(\d{1,2}),?\s+(\d{4})\s*$")
_DAY_MONTH_YEAR = re.compile(r"^\s*(\d{1,2})\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})\s*$")
_NUMERIC_DAY = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\s*$")
_CN_DAY = re.compile(r"^\s*(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日\s*$")


def parse_day(text: str | None) -> date | None:
    """A date written without a time: ``May 13, 2025``, ``13 May 2025``, ``2025-05-13``,
    ``2025/5/13`` or ``2025年5月13日``; anything else (a time included) gives None."""
    if not text:
        return None
    if match := _MONTH_DAY_YEAR.match(text):
        month, day, year = _MONTHS.get(match.group(1).lower()), match.group(2), match.group(3)
    elif match := _DAY_MONTH_YEAR.match(text):
        day, month, year = match.group(1), _MONTHS.get(match.group(2).lower()), match.group(3)
    elif match := _NUMERIC_DAY.match(text) or _CN_DAY.match(text):
        year, month, day = match.group(1), int(match.group(2)), match.group(3)
    else:
        return None
    if month is None:
        return None
    try:
        return date(int(year), month, int(day))
    except ValueError:
        return None


def local_midnight(day: date, zone_info: tzinfo) -> datetime:
    """Midnight of ``day`` in ``zone_info``, in UTC (for sources that publish dates only)."""
    return datetime.combine(day, time(0, 0), tzinfo=zone_info).astimezone(UTC)
