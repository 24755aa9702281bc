"""Which character encoding a response body is in.

Order: a BOM → the HTTP ``Content-Type`` charset → the XML declaration (feeds) or the HTML
``<meta charset>`` / ``http-equiv`` (pages) in the first 4 KB → charset-normalizer → UTF-8.
A BOM is the bytes' own statement and wins over the header, for pages as for feeds (the HTML
standard's order; a UTF-8 page with a BOM served as iso-8859-1 read as mojibake).
gb2312 and gbk are read as gb18030 (a superset: pages labelled gb2312 routinely contain GBK
characters). A declared charset that does not decode the bytes is not trusted: detection decides.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping

import charset_normalizer

_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "cp936": "gb18030",
    "csgb2312": "gb18030",
}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)[\"']", re.IGNORECASE)
_META = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)


def canonical_charset(name: str | None) -> str | None:
    """The Python codec for a declared charset name, or None if it is unknown."""
    if not name:
        return None
    lowered = name.strip().strip("\"'").lower()
    lowered = _ALIASES.get(lowered, lowered)
    try:
        return codecs.lookup(lowered).name
    except LookupError:
        return None


def header_charset(headers: Mapping[str, str]) -> str | None:
    content_type = _header(headers, "content-type")
    match = _HEADER_CHARSET.search(content_type or "")
    return canonical_charset(match.group(1)) if match else None


def bom_charset(body: bytes) -> str | None:
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    return None


def declared_charset(body: bytes, *, markup: str) -> str | None:
    """The charset the document declares about itself (``markup`` is "xml" or "html")."""
    head = body[:4096]
    pattern = _XML_DECL if markup == "xml" else _META
    match = pattern.search(head.lstrip(codecs.BOM_UTF8))
    return canonical_charset(match.group(1).decode("ascii", "replace")) if match else None


def detect_charset(body: bytes, headers: Mapping[str, str], *, markup: str = "xml") -> str:
    """The codec to decode ``body`` with (see the module docstring for the order)."""
    for candidate in (
        bom_charset(body),
        header_charset(headers),
        declared_charset(body, markup=markup),
    ):
        if candidate and _decodes(body, candidate):
            return candidate
    best = charset_normalizer.from_bytes(body[:65536]).best()
    if best is not None and best.encoding:
        detected = canonical_charset(best.encoding)
        if detected and _decodes(body, detected):
            return detected
    return "utf-8"


def decode(body: bytes, headers: Mapping[str, str], *, markup: str = "xml") -> str:
    """Decode ``body`` to text (undecodable bytes become U+FFFD); a BOM is dropped."""
    charset = detect_charset(body, headers, markup=markup)
    text = body.decode(charset, errors="replace")
    return text.removeprefix("\ufeff")


def _decodes(body: bytes, charset: str) -> bool:
    try:
        body.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
