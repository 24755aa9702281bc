"""Rendering alerts, burst summaries and digests as Telegram HTML. Pure.

Every piece of external text (titles, source names, matched terms, facts, URLs) goes through
``html.escape``; only tags written here reach Telegram. Each message is at most 4,096 UTF-16
code units *as HTML* (always at least its visible length); digests are split between items,
never inside a tag. Messages are plain dicts in the outbox payload shape:
``{"text": str, "parse_mode": "HTML" | None, "reply_markup": dict | None}``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from models.digests import Digest, DigestEntry
from models.localtime import load_zone

MAX_MESSAGE = 4096
MAX_CALLBACK_DATA = 64
TITLE_LIMIT = 400
SUMMARY_LIMIT = 300
FACT_LIMIT = 120
TERMS_LIMIT = 8
THEMES_LIMIT = 5
HREF_LIMIT = 1500
BUTTON_THEMES = 2

# Structured facts an item may carry in ``fields``, in display order.
FACTS: tuple[tuple[str, str], ...] = (
    ("document_type", "Type"),
    ("effective_on", "Effective"),
    ("comments_close_on", "Comments close"),
    ("entity_count", "Entities"),
    ("filings_total", "Filed services (total)"),
    ("filings_new", "New filings"),
    ("registrations_total", "Registered apps (total)"),
    ("registrations_new", "New registrations"),
)

Message = dict[str, Any]


def utf16_len(text: str) -> int:
    """Telegram measures text in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def clip(text: str, limit: int) -> str:
    """Plain text cut to ``limit`` characters with an ellipsis (before escaping)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def link(title: str, url: str | None) -> str:
    """An escaped title, linked only when the URL is a reasonable http(s) URL."""
    label = esc(title)
    if url and re.match(r"^https?://\S+$", url, re.IGNORECASE):
        href = esc(url)
        if len(href) <= HREF_LIMIT:
            return f'<a href="{href}">{label}</a>'
    return label


def zone_label(zone_name: str | None) -> str:
    return zone_name if zone_name and isinstance(load_zone(zone_name), ZoneInfo) else "UTC"


def local_time(value: datetime, zone_name: str | None, *, date_only: bool = False) -> str:
    local = value.astimezone(load_zone(zone_name))
    if date_only:
        return local.strftime("%Y-%m-%d")
    return local.strftime("%Y-%m-%d %H:%M %Z")


def message(text: str, reply_markup: Mapping[str, Any] | None = None) -> Message:
    return {
        "text": text,
        "parse_mode": "HTML",
        "reply_markup": dict(reply_markup) if reply_markup else None,
    }


def plain_text(text: str) -> str:
    """HTML as Telegram would show it, for the plain-text fallback: tags dropped, entities read."""
    return html.unescape(re.sub(r"<[^>]*>", "", text))


@dataclass(frozen=True, slots=True)
class ThemeMatch:
    slug: str
    title: str
    terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertView:
    """What an alert shows about one item."""

    title: str
    url: str | None
    source_name: str
    published_at: datetime
    published_at_guessed: bool = False
    summary: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)
    themes: tuple[ThemeMatch, ...] = ()


def facts(fields: Mapping[str, Any], limit: int = FACT_LIMIT) -> list[str]:
    """``Label: value`` lines (escaped) for the known structured facts present in ``fields``."""
    lines = []
    for key, label in FACTS:
        value = fields.get(key)
        if isinstance(value, bool) or value is None or value == "":
            continue
        if isinstance(value, str | int | float):
            lines.append(f"{label}: {esc(clip(str(value), limit))}")
    return lines


def alert_buttons(themes: Sequence[ThemeMatch]) -> dict[str, Any] | None:
    """Mute (switch to digest) and unsubscribe buttons for the first themes of an alert."""
    rows = []
    for theme in themes[:BUTTON_THEMES]:
        row = []
        for action, label in (("mute", "Mute"), ("unsub", "Unsubscribe")):
            data = f"{action}:{theme.slug}"
            if len(data.encode()) <= MAX_CALLBACK_DATA:
                row.append({"text": f"{label} {clip(theme.title, 24)}", "callback_data": data})
        if row:
            rows.append(row)
    return {"inline_keyboard": rows} if rows else None


def render_alert(view: AlertView, zone_name: str | None, *, buttons: bool = True) -> Message:
    """One alert: title (linked), source and date in the subscriber's zone, themes with the
    terms that matched, key facts, a short summary; with mute/unsubscribe buttons."""
    scale = 1.0
    while True:
        text = _alert_text(view, zone_name, scale)
        if utf16_len(text) <= MAX_MESSAGE:
            return message(text, alert_buttons(view.themes) if buttons else None)
        scale /= 2  # hostile text escapes to several times its length: shorten and retry


def _alert_text(view: AlertView, zone_name: str | None, scale: float) -> str:
    def cut(text: str, limit: int) -> str:
        return clip(text, max(8, int(limit * scale)))

    when = local_time(view.published_at, zone_name, date_only=view.published_at_guessed)
    url = view.url if scale >= 0.5 else None
    lines = [
        f"<b>{link(cut(view.title, TITLE_LIMIT) or '(untitled)', url)}</b>",
        f"{esc(cut(view.source_name, 80))} · {esc(when)}",
    ]
    for theme in view.themes[:THEMES_LIMIT]:
        terms = ", ".join(esc(cut(t, 60)) for t in theme.terms[:TERMS_LIMIT])
        why = f" — matched: <i>{terms}</i>" if terms else ""
        lines.append(f"🏷 {esc(cut(theme.title, 80))}{why}")
    lines.extend(facts(view.fields, max(8, int(FACT_LIMIT * scale))))
    if view.summary.strip() and scale >= 0.25:
        lines.append("")
        lines.append(esc(cut(view.summary, SUMMARY_LIMIT)))
    return "\n".join(lines)


def render_fold(views: Sequence[AlertView], zone_name: str | None, window_minutes: int) -> Message:
    """A burst folded into one message: as many titles as fit, then a count of the rest."""
    themes = sorted({t.title for v in views for t in v.themes})
    head = (
        f"<b>{len(views)} more matching items</b> (more than your alert limit within "
        f"{window_minutes} min)\n🏷 {esc(clip(', '.join(themes), 300))}\n"
    )
    lines: list[str] = []
    budget = MAX_MESSAGE - utf16_len(head) - 80
    for index, view in enumerate(views):
        line = f"• {link(clip(view.title, 200), view.url)} — {esc(clip(view.source_name, 40))}"
        if utf16_len(line) + 1 > budget:
            lines.append(f"… and {len(views) - index} more: see /latest")
            break
        lines.append(line)
        budget -= utf16_len(line) + 1
    return message(head + "\n".join(lines))


def _entry_line(entry: DigestEntry, zone_name: str | None) -> str:
    when = local_time(entry.published_at, zone_name, date_only=True)
    return (
        f"• {link(clip(entry.title, TITLE_LIMIT), entry.url)} — "
        f"{esc(clip(entry.source_name, 60))}, {esc(when)}"
    )


def render_digest(digest: Digest, zone_name: str | None, mode: str) -> list[Message]:
    """The digest as one or more messages, split between items (a theme's heading is repeated,
    marked "continued", when its items run over into the next message)."""
    day = local_time(digest.until, zone_name, date_only=True)
    kind = "Weekly" if mode == "weekly" else "Daily"
    header = f"<b>{kind} digest · {esc(day)}</b> ({esc(zone_label(zone_name))})\n"
    if digest.groups:
        header += (
            f"{digest.item_count} item{'s' if digest.item_count != 1 else ''} "
            f"in {len(digest.groups)} theme{'s' if len(digest.groups) != 1 else ''}"
        )
    else:
        header += "Nothing new matched your themes."
    blocks: list[tuple[str | None, str]] = [(None, header)]
    for group in digest.groups:
        heading = f"\n<b>{esc(clip(group.theme_title, 120))}</b> ({len(group.items)})"
        blocks.append((None, heading))
        for entry in group.items:
            blocks.append((heading + " (continued)", _entry_line(entry, zone_name)))
    if digest.upcoming:
        heading = "\n<b>Upcoming (next 7 days)</b>"
        blocks.append((None, heading))
        for up in digest.upcoming:
            line = (
                f"• {esc(up.on.isoformat())} {esc(up.what)}: "
                f"{link(clip(up.entry.title, TITLE_LIMIT), up.entry.url)}"
            )
            blocks.append((heading + " (continued)", line))
    return [message(text) for text in pack(blocks)]


def pack(blocks: Iterable[tuple[str | None, str]], limit: int = MAX_MESSAGE) -> list[str]:
    """Join blocks (each balanced HTML) with newlines into messages of at most ``limit`` UTF-16
    units. A block that starts a new message is preceded by its continuation heading, if any.
    Every block must fit in a message on its own (the renderers clip what they put in)."""
    messages: list[str] = []
    current = ""
    for continued, block in blocks:
        candidate = f"{current}\n{block}" if current else block
        if utf16_len(candidate) <= limit:
            current = candidate
            continue
        if current:
            messages.append(current)
        start = block.lstrip("\n")
        if continued is not None:
            with_heading = f"{continued.lstrip(chr(10))}\n{start}"
            start = with_heading if utf16_len(with_heading) <= limit else start
        assert utf16_len(start) <= limit, "a single block never exceeds a message"
        current = start
    if current:
        messages.append(current)
    return messages
