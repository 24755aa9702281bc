"""Pure rendering of command replies as Telegram HTML.

Every piece of external text (titles, names, errors, user input) goes through ``html.escape``;
``fit`` keeps a reply within Telegram's 4,096 characters by dropping whole lines and saying so.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.commands import ADMIN, COMMANDS, EDITOR
from bot.ports import DryRunResult
from models.db.queries import Deadline, ItemRow, SourceHealth, Stats

MAX_TEXT = 4096
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def fit(lines: Sequence[str], limit: int = MAX_TEXT) -> str:
    """Join ``lines``, dropping trailing lines (never cutting one) to fit ``limit``."""
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        more = f"… and {len(lines) - index} more lines"
        if size + len(line) + 1 + len(more) + 1 > limit:
            kept.append(more)
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)[:limit]


def pages(lines: Sequence[str], limit: int = MAX_TEXT) -> list[str]:
    """Join ``lines`` into as few messages of at most ``limit`` characters as it takes, breaking
    only between lines (a single line longer than ``limit`` is cut). For listings a user must
    see whole, such as a watchlist an editor is about to edit."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = line[:limit]
        if current and size + 1 + len(line) > limit:
            out.append("\n".join(current))
            current, size = [], 0
        size += len(line) + (1 if current else 0)
        current.append(line)
    if current or not out:
        out.append("\n".join(current))
    return out


def short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(value: datetime | None, zone: str = "UTC") -> str:
    if value is None:
        return "never"
    try:
        tz = ZoneInfo(zone)
    except (ValueError, KeyError):
        tz = ZoneInfo("UTC")
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def item_line(row: ItemRow, zone: str = "UTC") -> str:
    title = esc(short(row.title))
    head = f'<a href="{esc(row.url)}">{title}</a>' if row.url else f"<b>{title}</b>"
    meta = [esc(row.source_name), when(row.published_at, zone)]
    if row.themes:
        meta.append(" ".join(f"#{esc(t.replace('-', '_'))}" for t in row.themes))
    return f"• {head}\n  <i>{' · '.join(meta)}</i>"


def policy_line(row: ItemRow, zone: str = "UTC") -> str:
    parts = [item_line(row, zone)]
    facts = []
    if row.document_type:
        facts.append(f"type: {esc(row.document_type)}")
    if row.effective_on:
        facts.append(f"effective: {esc(row.effective_on)}")
    if row.comments_close_on:
        facts.append(f"comments close: {esc(row.comments_close_on)}")
    if facts:
        parts.append("  " + "; ".join(facts))
    return "\n".join(parts)


def items_reply(heading: str, rows: Sequence[ItemRow], empty: str, zone: str = "UTC") -> str:
    if not rows:
        return empty
    return fit([f"<b>{esc(heading)}</b>", *(item_line(r, zone) for r in rows)])


def policy_reply(heading: str, rows: Sequence[ItemRow], zone: str = "UTC") -> str:
    if not rows:
        return "No regulatory documents stored yet."
    return fit([f"<b>{esc(heading)}</b>", *(policy_line(r, zone) for r in rows)])


def upcoming_reply(deadlines: Sequence[Deadline], days: int) -> str:
    if not deadlines:
        return f"No effective dates or comment deadlines in the next {days} days."
    lines = [f"<b>The next {days} days</b>"]
    for d in deadlines:
        title = esc(short(d.item.title, 160))
        link = f'<a href="{esc(d.item.url)}">{title}</a>' if d.item.url else title
        lines.append(f"• {d.on.isoformat()} — {esc(d.what)}: {link}")
    return fit(lines)


def help_reply() -> str:
    lines = ["<b>PolicyWatch commands</b>"]
    for cmd in COMMANDS:
        mark = {EDITOR: " <i>(editors)</i>", ADMIN: " <i>(admins)</i>"}.get(cmd.access, "")
        lines.append(f"{esc(cmd.usage)} — {esc(cmd.description)}{mark}")
    return fit(lines)


def themes_reply(themes: Sequence[tuple[str, str, str, str | None]]) -> str:
    """``themes``: (slug, title, description, your subscription mode or None)."""
    if not themes:
        return "No themes are tracked yet."
    lines = ["<b>Themes</b>"]
    for slug, title, description, mode in themes:
        state = f"✅ subscribed ({mode})" if mode else "not subscribed"
        lines.append(f"• <b>{esc(title)}</b> <code>{esc(slug)}</code> — {state}")
        if description:
            lines.append(f"  {esc(short(description, 300))}")
    lines.append("\n/subscribe &lt;theme&gt; or /unsubscribe &lt;theme&gt;")
    return fit(lines)


def settings_reply(
    *,
    timezone: str,
    digest_mode: str,
    digest_time: str | None,
    digest_weekday: int | None,
    muted_until: datetime | None,
    now: datetime,
    subscriptions: Sequence[tuple[str, str]],
) -> str:
    if digest_mode == "daily":
        digest = f"daily at {esc(digest_time)}"
    elif digest_mode == "weekly" and digest_weekday is not None:
        digest = f"weekly on {WEEKDAYS[digest_weekday]} at {esc(digest_time)}"
    else:
        digest = "off"
    muted = (
        f"until {when(muted_until, timezone)}"
        if muted_until is not None and muted_until > now
        else "no"
    )
    subs = ", ".join(f"{esc(slug)} ({esc(mode)})" for slug, mode in subscriptions) or "none"
    return "\n".join(
        [
            "<b>Your settings</b>",
            f"Time zone: {esc(timezone)}",
            f"Digest: {digest}",
            f"Muted: {muted}",
            f"Themes: {subs}",
        ]
    )


def sources_reply(rows: Sequence[SourceHealth], *, detailed: bool = False) -> str:
    if not rows:
        return "No sources are configured."
    lines = ["<b>Sources</b>"]
    for s in rows:
        if not s.enabled:
            state = "⏸ paused"
        elif s.failing:
            state = f"❌ failing ({s.consecutive_failures}×)"
        else:
            state = "✅ ok"
        lines.append(f"• <b>{esc(s.name)}</b> — {state}")
        lines.append(
            f"  last success {when(s.last_success_at)}, last new item {when(s.last_new_item_at)}"
        )
        if detailed:
            lines.append(f"  {esc(s.kind)} · {esc(s.origin)} · {esc(short(s.url, 200))}")
        if s.failing and s.last_error:
            lines.append(f"  <i>{esc(short(s.last_error, 200))}</i>")
    return fit(lines)


def watch_list_reply(rules: dict[str, list[str]]) -> list[str]:
    """Every entry, over as many messages as it takes: an editor removes by the exact text."""
    if not rules:
        return ["No watchlist entries."]
    lines = []
    for slug, entries in rules.items():
        lines.append(f"<b>{esc(slug)}</b> ({len(entries)})")
        lines.extend(f"• <code>{esc(rule)}</code>" for rule in entries)
    return pages(lines)


def dry_run_reply(slug: str, rule: str, result: DryRunResult, days: int) -> str:
    lines = [
        f"<code>{esc(rule)}</code> in <b>{esc(slug)}</b> would match "
        f"<b>{result.matched}</b> of {result.items} items from the last {days} days "
        f"({result.new_to_theme} not matched by the theme today)."
    ]
    lines.extend(
        f"• {esc(short(example.title, 200))} <i>({esc(', '.join(example.terms))})</i>"
        if example.terms
        else f"• {esc(short(example.title, 200))}"
        for example in result.examples
    )
    return fit(lines)


def stats_reply(s: Stats) -> str:
    deliveries = ", ".join(f"{esc(k)} {v}" for k, v in s.deliveries.items()) or "none"
    return "\n".join(
        [
            "<b>Statistics</b>",
            f"Items: {s.items} ({s.items_last_day} in the last day)",
            f"Matches: {s.matches}",
            f"Deliveries: {deliveries}",
            f"Subscribers: {s.subscribers_active} active, {s.subscribers_inactive} inactive; "
            f"{s.subscriptions} subscriptions",
            f"Sources: {s.sources_enabled} enabled, {s.sources_failing} failing",
        ]
    )
