"""Telegram HTML: the one escaper, the one way to measure a message, and the one splitter.

Telegram limits a message to 4,096 characters as it counts them: UTF-16 code units of the text
after entities are parsed. Measuring the HTML source in UTF-16 units is therefore always safe
(the source is never shorter than what it shows). Everything here is pure.

- ``esc``: every piece of outside text (titles, names, user input, errors) goes through it; only
  tags written by PolicyWatch reach Telegram.
- ``paginate``: lines (each balanced HTML) into as few messages as it takes, breaking only
  between lines; a single line longer than a message is cut by ``cut``, never inside a tag or an
  entity, with its open tags closed.
- ``fit``: the same, kept to one message that says how many lines did not fit.
- ``pack``: blocks with continuation headings (a digest's theme heading repeats, "continued").
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Iterable, Sequence

MAX_MESSAGE = 4096
ELLIPSIS = "…"
_TOKEN = re.compile(r"<[^>]*>|&#?\w+;|[^<&]+|[<&]")
_TAG = re.compile(r"^<\s*(/?)\s*([a-zA-Z][a-zA-Z0-9-]*)[^>]*?(/?)\s*>$")
_HREF = re.compile(r"^https?://\S+$", re.IGNORECASE)
HREF_LIMIT = 1500


def esc(text: object) -> str:
    """``text`` escaped for Telegram HTML (``<``, ``>``, ``&`` and quotes)."""
    return html.escape(str(text), quote=True)


def utf16_len(text: str) -> int:
    """Telegram measures text in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """Plain text with its whitespace collapsed, cut to ``limit`` characters with an ellipsis
    (before escaping)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def link(label: str, url: str | None) -> str:
    """An escaped label, linked only when ``url`` is a reasonable http(s) URL."""
    text = esc(label)
    if url and _HREF.match(url):
        href = esc(url)
        if len(href) <= HREF_LIMIT:
            return f'<a href="{href}">{text}</a>'
    return text


def plain_text(text: str) -> str:
    """HTML as Telegram would show it, for the plain-text fallback: tags dropped, entities read."""
    return html.unescape(re.sub(r"<[^>]*>", "", text))


def cut(text: str, limit: int) -> str:
    """Balanced HTML cut to at most ``limit`` UTF-16 units: never inside a tag, an entity or a
    character; the tags left open are closed and an ellipsis marks the cut."""
    if utf16_len(text) <= limit:
        return text
    out: list[str] = []
    size = 0
    open_tags: list[str] = []
    budget = limit - utf16_len(ELLIPSIS)

    def closing() -> int:
        return sum(len(name) + 3 for name in open_tags)

    for token in _TOKEN.findall(text):
        tag = _TAG.match(token) if token.startswith("<") and len(token) > 1 else None
        cost = utf16_len(token)
        if tag is not None and tag.group(1):  # a closing tag: its room was reserved
            if open_tags and open_tags[-1] == tag.group(2).lower():
                open_tags.pop()
            out.append(token)
            size += cost
            continue
        opened = tag.group(2).lower() if tag is not None and not tag.group(3) else None
        reserve = len(opened) + 3 if opened else 0  # room for its closing tag
        if size + cost + reserve + closing() <= budget:
            out.append(token)
            size += cost
            if opened:
                open_tags.append(opened)
            continue
        if tag is None and not token.startswith("&"):  # text: keep what fits, char by char
            for char in token:
                width = utf16_len(char)
                if size + width + closing() > budget:
                    break
                out.append(char)
                size += width
        break
    out.append(ELLIPSIS)
    out.extend(f"</{name}>" for name in reversed(open_tags))
    return "".join(out)


def paginate(lines: Iterable[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Join ``lines`` into as few messages of at most ``limit`` UTF-16 units as it takes,
    breaking only between lines (a line longer than a message is ``cut``). For listings a user
    must see whole, such as a watchlist an editor is about to edit. Never returns no page."""
    pages: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = cut(line, limit)
        width = utf16_len(line)
        if current and size + 1 + width > limit:
            pages.append("\n".join(current))
            current, size = [], 0
        size += width + (1 if current else 0)
        current.append(line)
    if current or not pages:
        pages.append("\n".join(current))
    return pages


def fit(lines: Sequence[str], limit: int = MAX_MESSAGE) -> str:
    """``lines`` as one message of at most ``limit`` UTF-16 units: the lines that fit, then a
    line saying how many more there were (whole lines are dropped, never cut)."""
    first = paginate(lines, limit)
    if len(first) == 1:
        return first[0]
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        more = f"{ELLIPSIS} and {len(lines) - index} more lines"
        width = utf16_len(cut(line, limit))
        if size + width + 1 + utf16_len(more) > limit:
            kept.append(more)
            break
        kept.append(cut(line, limit))
        size += width + 1
    return "\n".join(kept)


def pack(blocks: Iterable[tuple[str | None, str]], limit: int = MAX_MESSAGE) -> list[str]:
    """Join blocks (each balanced HTML) with newlines into messages of at most ``limit`` UTF-16
    units. A block that starts a new message is preceded by its continuation heading, if any;
    a block too long for a message on its own is ``cut``."""
    return [text for text, _ in pack_indexed(blocks, limit)]


def pack_indexed(
    blocks: Iterable[tuple[str | None, str]],
    limit: int = MAX_MESSAGE,
    *,
    counted: Collection[int] = (),
    max_counted: int | None = None,
) -> list[tuple[str, list[int]]]:
    """``pack``, with the indexes of the blocks each message holds; a message holds at most
    ``max_counted`` of the blocks whose indexes are ``counted`` (those that bring buttons:
    Telegram refuses a keyboard of about a hundred)."""
    messages: list[tuple[str, list[int]]] = []
    current, held, tally = "", list[int](), 0
    for index, (continued, block) in enumerate(blocks):
        block = cut(block, limit)
        candidate = f"{current}\n{block}" if current else block
        count = index in counted
        full = count and max_counted is not None and tally >= max_counted
        if utf16_len(candidate) <= limit and not full:
            current = candidate
            held.append(index)
            tally += count
            continue
        if current:
            messages.append((current, held))
        start = block.lstrip("\n")
        if continued is not None:
            with_heading = f"{continued.lstrip(chr(10))}\n{start}"
            start = with_heading if utf16_len(with_heading) <= limit else start
        current, held, tally = start, [index], int(count)
    if current:
        messages.append((current, held))
    return messages
