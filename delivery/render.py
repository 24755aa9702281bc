"""Rendering alerts, burst summaries and digests as Telegram HTML. Pure.

Every piece of outside text (titles, source names, matched terms, facts, URLs) goes through
``esc``; only tags written here reach Telegram. Each message is at most 4,096 UTF-16 code units
*as HTML* (always at least its visible length); digests are split between items, never inside a
tag. Times are shown in the subscriber's zone, labelled; documents published on a date (Federal
Register, CAC lists) show the date only.

``fact_lines`` is the one place that turns an item's structured facts (``models.fields``) into
text: alerts, digests and the bot's ``/policy`` all show them through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from delivery.feedback import JudgedEntry, digest_feedback_rows, feedback_rows
from delivery.telegram_html import MAX_MESSAGE, clip, esc, link, pack_indexed, utf16_len
from models.csl import fr_citation_url
from models.digests import Digest, DigestEntry
from models.entitylist import counts_text
from models.fields import ItemFields, on_inspection
from models.items import StoredItem
from models.localtime import load_zone, zone_name
from models.outbox import InlineButton, InlineKeyboard, OutgoingMessage, html_message
from models.views import ItemRow

MAX_CALLBACK_DATA = 64
TITLE_LIMIT = 400
SUMMARY_LIMIT = 300
FACT_LIMIT = 160
TERMS_LIMIT = 8
THEMES_LIMIT = 5
BUTTON_THEMES = 2
ATTACHMENTS_LIMIT = 3
SIMILAR_TO = "learned model, similar to"  # what explains a match of the model alone


def local_time(
    value: datetime, zone: str | None, *, date_only: bool = False, abbreviation: bool = True
) -> str:
    """``value`` in the zone called ``zone``: ``2026-01-09 18:30 CST`` (without the zone's
    abbreviation when the reply names the zone itself), or the date alone."""
    local = value.astimezone(load_zone(zone))
    if date_only:
        return local.strftime("%Y-%m-%d")
    return local.strftime("%Y-%m-%d %H:%M %Z" if abbreviation else "%Y-%m-%d %H:%M")


def published_when(
    value: datetime,
    fields: ItemFields,
    zone: str | None,
    *,
    date_only: bool,
    abbreviation: bool = True,
) -> str:
    """When an item was published, as a subscriber in ``zone`` sees it: a document published
    on a date shows that date as its source gave it (``publication_date``; converting the
    source's midnight to the subscriber's zone would show the day before west of it), any
    other time is shown in ``zone``."""
    if date_only and (day := fields.get("publication_date")):
        return day
    return local_time(value, zone, date_only=date_only, abbreviation=abbreviation)


def _count(total: int | None, new: int | None) -> str | None:
    if total is None and new is None:
        return None
    if total is None:
        return f"{new} new"
    return f"{total}" + (f" ({new} new)" if new is not None else "")


def cfr_parts(references: Sequence[str]) -> str:
    """``["15 CFR 734", "15 CFR 740"]`` → ``15 CFR 734, 740`` (parts grouped by title)."""
    parts: dict[str, list[str]] = {}
    for ref in references:
        title, sep, part = ref.partition(" CFR ")
        parts.setdefault(f"{title} CFR" if sep else ref, []).extend([part] if part else [])
    return "; ".join(f"{title} {', '.join(p)}".strip() for title, p in parts.items())


def fact_lines(fields: ItemFields, limit: int = FACT_LIMIT) -> list[str]:
    """The structured facts an item carries, as escaped HTML lines, most useful first."""
    lines: list[str] = []
    kind = " · ".join(
        clip(v, limit) for v in (fields.get("document_type"), fields.get("action")) if v
    )
    if kind:
        lines.append(esc(kind))
    if on_inspection(fields):
        stage = ["⏳ Before publication: on public inspection"]
        if fields.get("special_filing"):
            stage.append("special filing")
        if publishes_on := fields.get("publishes_on"):
            stage.append(f"to be published {publishes_on}")
        lines.append(esc(" · ".join(stage)))
    counted = counts_text(fields)
    if counted or fields.get("destinations"):
        listed = fields.get("destinations", [])
        where = ", ".join(listed[:8]) + (f" and {len(listed) - 8} more" if len(listed) > 8 else "")
        text = "Entity List: " + (counted or "entries changed")
        lines.append(esc(clip(text + (f" · {where}" if where else ""), limit)))
    if note := fields.get("editorial_note"):
        lines.append(esc(clip(f"Editorial note: {note}", limit)))
    dates = []
    if effective := fields.get("effective_on"):
        dates.append(f"Effective {effective}")
    if comments := fields.get("comments_close_on"):
        dates.append(f"Comments close {comments}")
    if dates:
        lines.append(esc(" · ".join(dates)))
    refs = []
    if (citation := fields.get("citation")) and not fields.get("change"):
        refs.append(citation)  # a list change links its citation below
    if cfr := fields.get("cfr_references"):
        refs.append(cfr_parts(cfr))
    if rins := fields.get("regulation_id_numbers"):
        refs.append("RIN " + ", ".join(rins[:3]))
    if correction := fields.get("correction_of"):
        refs.append(f"corrects {correction}")
    if refs:
        lines.append(esc(clip(" · ".join(refs), limit)))
    filed = _count(fields.get("services_filed_total"), fields.get("services_filed_new"))
    registered = _count(fields.get("apps_registered_total"), fields.get("apps_registered_new"))
    if filed or registered:
        counts = []
        if filed:
            counts.append(f"GenAI services filed: {filed}")
        if registered:
            counts.append(f"apps registered: {registered}")
        as_of = fields.get("as_of")
        lines.append(esc(" · ".join(counts) + (f" (as of {as_of})" if as_of else "")))
    if (batch := fields.get("batch")) is not None:
        what = {"deep_synthesis": "Deep-synthesis algorithm filings", "blockchain": "Blockchain"}
        label = what.get(fields.get("filing_kind", ""), "Filing")
        lines.append(esc(f"{label}: batch {batch}"))
    for attachment in fields.get("attachments", [])[:ATTACHMENTS_LIMIT]:
        lines.append("📎 " + link(clip(attachment["title"] or "attachment", 80), attachment["url"]))
    if pdf := fields.get("pdf_url"):
        # The inspection copy is what was filed; the legal text is the one printed later.
        label = "Filed copy (PDF)" if on_inspection(fields) else "Legal text (PDF)"
        lines.append("📄 " + link(label, pdf))
    lines.extend(_list_change_lines(fields, limit))
    return lines


LIST_ENTITIES_SHOWN = 8
_CHANGE_VERBS = {"added": "added", "removed": "removed", "changed": "revised"}


def _list_change_lines(fields: ItemFields, limit: int) -> list[str]:
    """The facts of a screening-list change (``models.fields.CslFields``)."""
    change = fields.get("change")
    if change not in _CHANGE_VERBS:
        return []
    head = [
        fields.get("list_name", "Screening list"),
        f"{fields.get('entity_count', 0)} {_CHANGE_VERBS[change]}",
    ]
    if countries := fields.get("countries"):
        head.append(", ".join(countries[:5]))
    if start := fields.get("start_date"):
        head.append(f"listed from {start}")
    lines = [esc(clip(" · ".join(head), limit))]
    if policy := fields.get("license_policy"):
        lines.append(esc(clip(f"Licence review policy: {policy}", limit)))
    citation = fields.get("citation")
    if citation and (url := fr_citation_url(citation)):
        number, title = fields.get("fr_document_number"), fields.get("fr_title")
        label = f"Federal Register {citation}" + (f" ({number})" if number else "")
        lines.append("📜 " + link(label, url) + (f" — {esc(clip(title, limit))}" if title else ""))
    entities = fields.get("entities", [])
    for entity in entities[:LIST_ENTITIES_SHOWN]:
        text = entity["name"]
        if entity["countries"]:
            text += f" ({', '.join(entity['countries'])})"
        if entity["changed"]:
            text += f": {', '.join(entity['changed'])} changed"
        lines.append("• " + esc(clip(text, limit)))
    more = fields.get("entity_count", len(entities)) - min(len(entities), LIST_ENTITIES_SHOWN)
    if more > 0:
        lines.append(esc(f"… and {more} more"))
    return lines


@dataclass(frozen=True, slots=True)
class SourceLine:
    """A further source of an event: who reported it, and (for a document) when."""

    source_name: str
    url: str | None
    published_at: datetime
    date_only: bool = False
    fields: ItemFields = field(default_factory=ItemFields)

    @classmethod
    def of(cls, item: StoredItem | ItemRow) -> SourceLine:
        shown = item.shown_as_date if isinstance(item, StoredItem) else item.date_only
        return cls(item.source_name, item.url, item.published_at, shown, item.fields)


def also_text(sources: Sequence[SourceLine], zone: str | None, limit: int = 8) -> str:
    """``Reuters, 新华社 · Federal Register (BIS) published 2025-01-15``: each source once,
    linked; a document with its publication date."""
    names: list[str] = []
    documents: list[str] = []
    seen: set[str] = set()
    for source in sources:
        if source.source_name in seen:
            continue
        seen.add(source.source_name)
        named = link(clip(source.source_name, 40), source.url)
        if source.fields.get("document_number"):
            day = published_when(source.published_at, source.fields, zone, date_only=True)
            done = "on public inspection" if on_inspection(source.fields) else "published"
            documents.append(f"{named} {done} {esc(day)}")
        else:
            names.append(named)
    parts = names[:limit] + documents[:limit]
    more = len(names) + len(documents) - len(parts)
    text = ", ".join(names[:limit])
    if documents:
        text = " · ".join(p for p in (text, ", ".join(documents[:limit])) if p)
    return text + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True, slots=True)
class ThemeMatch:
    slug: str
    title: str
    terms: tuple[str, ...] = ()
    similar_to: str | None = None  # the learned model alone matched: its nearest example
    id: int | None = None  # the theme's id where the alert's feedback buttons judge it


@dataclass(frozen=True, slots=True)
class AlertView:
    """What an alert shows about one item."""

    title: str
    url: str | None
    source_name: str
    published_at: datetime
    date_only: bool = False
    summary: str = ""
    fields: ItemFields = field(default_factory=ItemFields)
    themes: tuple[ThemeMatch, ...] = ()
    also: tuple[SourceLine, ...] = ()  # other sources of the same event
    event_id: int | None = None
    item_id: int | None = None  # for the feedback buttons


def alert_view(
    item: StoredItem,
    themes: tuple[ThemeMatch, ...],
    also: Sequence[StoredItem] = (),
    event_id: int | None = None,
) -> AlertView:
    """What an alert shows of a stored item matched by ``themes`` (``also``: the other new
    items of its event)."""
    return AlertView(
        title=item.title,
        url=item.url,
        source_name=item.source_name,
        published_at=item.published_at,
        date_only=item.shown_as_date,
        summary=item.summary,
        fields=item.fields,
        themes=themes,
        also=tuple(SourceLine.of(i) for i in also),
        event_id=event_id,
        item_id=item.id,
    )


def alert_buttons(
    themes: Sequence[ThemeMatch], item_id: int | None = None
) -> InlineKeyboard | None:
    """Mute (switch to digest) and unsubscribe buttons for the first themes of an alert, and
    the feedback buttons (``delivery.feedback``) when the item is known and the alert names a
    theme for them to judge (a chat's own watches are none)."""
    rows: list[list[InlineButton]] = []
    if item_id is not None and any(t.id is not None for t in themes):
        rows.extend(feedback_rows(item_id, [(t.id, t.title) for t in themes]))
    for theme in [t for t in themes if t.slug][:BUTTON_THEMES]:  # a chat's own watches: none
        row: list[InlineButton] = []
        for action, label in (("mute", "Mute"), ("unsub", "Unsubscribe")):
            data = f"{action}:{theme.slug}"
            if len(data.encode()) <= MAX_CALLBACK_DATA:
                row.append({"text": f"{label} {clip(theme.title, 24)}", "callback_data": data})
        if row:
            rows.append(row)
    return {"inline_keyboard": rows} if rows else None


def most_specific(terms: Sequence[str]) -> list[str]:
    """The matched terms worth showing: a term inside a longer one that matched too says nothing
    more ("人工智能" beside "生成式人工智能"; "Entity List" beside "Entity List additions").
    Case-insensitive; the first spelling of a repeated term is kept, the order is kept."""
    folded = [t.casefold() for t in terms]
    out: list[str] = []
    for i, term in enumerate(terms):
        inside = any(
            folded[i] in other and (len(other) > len(folded[i]) or j < i)
            for j, other in enumerate(folded)
            if j != i
        )
        if not inside:
            out.append(term)
    return out


def render_alert(view: AlertView, zone: str | None, *, buttons: bool = True) -> OutgoingMessage:
    """One alert: title (linked), source and date in the subscriber's zone, themes with the
    terms that matched, the item's facts, a short summary; with mute/unsubscribe buttons."""
    scale = 1.0
    while True:
        text = _alert_text(view, zone, scale)
        if utf16_len(text) <= MAX_MESSAGE:
            keyboard = alert_buttons(view.themes, view.item_id) if buttons else None
            return html_message(text, keyboard)
        scale /= 2  # hostile text escapes to several times its length: shorten and retry


def _alert_text(view: AlertView, zone: str | None, scale: float) -> str:
    def short(text: str, limit: int) -> str:
        return clip(text, max(8, int(limit * scale)))

    when = published_when(view.published_at, view.fields, zone, date_only=view.date_only)
    url = view.url if scale >= 0.5 else None
    lines = [
        f"<b>{link(short(view.title, TITLE_LIMIT) or '(untitled)', url)}</b>",
        f"{esc(short(view.source_name, 80))} · {esc(when)}",
    ]
    if view.also and scale >= 0.25:
        lines.append(f"➕ also: {also_text(view.also, zone, max(1, int(8 * scale)))}")
    for theme in view.themes[:THEMES_LIMIT]:
        terms = ", ".join(esc(short(t, 60)) for t in most_specific(theme.terms)[:TERMS_LIMIT])
        why = f" — matched: <i>{terms}</i>" if terms else ""
        if not terms and theme.similar_to:
            why = f" — {SIMILAR_TO}: <i>{esc(short(theme.similar_to, 120))}</i>"
        lines.append(f"🏷 {esc(short(theme.title, 80))}{why}")
    if scale >= 0.25:
        lines.extend(fact_lines(view.fields, max(8, int(FACT_LIMIT * scale))))
    if view.summary.strip() and scale >= 0.25:
        lines.append("")
        lines.append(esc(short(view.summary, SUMMARY_LIMIT)))
    return "\n".join(lines)


def render_fold(
    views: Sequence[AlertView], zone: str | None, window_minutes: int, *, released: bool = False
) -> OutgoingMessage:
    """A burst folded into one message: an event a line, as many as fit, then a count.
    ``released``: what quiet hours held, going out at once when they end."""
    why = (
        "held by your quiet hours: more than your alert limit at once"
        if released
        else f"more than your alert limit within {window_minutes} min"
    )
    head = f"<b>{len(views)} more matching events</b> ({why})"
    return html_message(_event_list(head, views, zone))


def render_held(views: Sequence[AlertView], zone: str | None) -> OutgoingMessage:
    """What a muted chat missed, when its mute ends: an event a line."""
    head = (
        f"<b>While you were muted: {len(views)} matching event{'s' if len(views) != 1 else ''}</b>"
    )
    return html_message(_event_list(head, views, zone))


def _event_list(head: str, views: Sequence[AlertView], zone: str | None) -> str:
    themes = sorted({t.title for v in views for t in v.themes})
    text = f"{head}\n🏷 {esc(clip(', '.join(themes), 300))}\n"
    lines: list[str] = []
    budget = MAX_MESSAGE - utf16_len(text) - 80
    for index, view in enumerate(views):
        others = len({s.source_name for s in view.also} - {view.source_name})
        more = f" (+{others} more source{'s' if others != 1 else ''})" if others else ""
        line = (
            f"• {link(clip(view.title, 200), view.url)} — {esc(clip(view.source_name, 40))}{more}"
        )
        if utf16_len(line) + 1 > budget:
            lines.append(f"… and {len(views) - index} more: see /latest")
            break
        lines.append(line)
        budget -= utf16_len(line) + 1
    return text + "\n".join(lines)


def render_update(sources: Sequence[SourceLine], zone: str | None) -> OutgoingMessage:
    """New sources of an event the chat was alerted to (sent as a reply to that alert)."""
    return html_message(f"➕ also: {also_text(sources, zone)}")


UNSURE_MARK = "❔"
JUDGED_PER_MESSAGE = 20  # numbered entries in one digest message: 40 buttons
UNSURE_LEGEND = (
    f"{UNSURE_MARK} only the watchlist or only the learned model matched it: "
    "👍 / 👎 with its number below say whether it belongs"
)


def _entry_block(
    entry: DigestEntry,
    others: Sequence[DigestEntry],
    zone: str | None,
    *,
    unsure: int | None = None,
) -> str:
    """One digest entry; an unsure one is marked with its number (``unsure``), which its
    feedback buttons name."""
    item = entry.item
    when = published_when(item.published_at, item.fields, zone, date_only=True)
    mark = "" if unsure is None else f"{UNSURE_MARK}{unsure} "
    line = (
        f"• {mark}{link(clip(item.title, TITLE_LIMIT), item.url)} — "
        f"{esc(clip(item.source_name, 60))}, {esc(when)}"
    )
    if unsure is not None and entry.similar_to:
        line += f"\n  {SIMILAR_TO}: <i>{esc(clip(entry.similar_to, 120))}</i>"
    more = [SourceLine.of(o.item) for o in others if o.item.source_name != item.source_name]
    if more:
        line += f"\n  ➕ also: {also_text(more, zone, 4)}"
    return "\n".join([line, *(f"  {fact}" for fact in fact_lines(item.fields))])


def render_digest(digest: Digest, zone: str | None, mode: str) -> list[OutgoingMessage]:
    """The digest as one or more messages, split between items (a theme's heading is repeated,
    marked "continued", when its items run over into the next message). Unsure entries are
    numbered, and each message has 👍 / 👎 buttons for the numbered entries it holds, judging
    the entry's item for the entry's theme (``delivery.feedback.digest_feedback_rows``)."""
    day = local_time(digest.until, zone, date_only=True)
    kind = "Weekly" if mode == "weekly" else "Daily"
    header = f"<b>{kind} digest · {esc(day)}</b> ({esc(zone_name(zone))})\n"
    if digest.groups:
        header += (
            f"{digest.event_count} event{'s' if digest.event_count != 1 else ''} "
            f"in {len(digest.groups)} theme{'s' if len(digest.groups) != 1 else ''}"
        )
    else:
        header += "Nothing new matched your themes."
    if any(group.unsure for group in digest.groups):
        header += f"\n{UNSURE_LEGEND}"
    blocks: list[tuple[str | None, str]] = [(None, header)]
    judged: dict[int, JudgedEntry] = {}  # block index -> the unsure entry it shows
    for group in digest.groups:
        heading = f"\n<b>{esc(clip(group.theme_title, 120))}</b> ({len(group.items)})"
        blocks.append((None, heading))
        for entry in group.items:
            others = group.others.get(entry.item_id, ())
            number = None
            if entry.item_id in group.unsure:
                number = len(judged) + 1
                judged[len(blocks)] = JudgedEntry(number, entry.item_id, group.theme_id)
            block = _entry_block(entry, others, zone, unsure=number)
            blocks.append((heading + " (continued)", block))
    if digest.upcoming:
        heading = "\n<b>Upcoming (next 7 days)</b>"
        blocks.append((None, heading))
        for up in digest.upcoming:
            line = (
                f"• {esc(up.on.isoformat())} {esc(up.what)}: "
                f"{link(clip(up.entry.item.title, TITLE_LIMIT), up.entry.item.url)}"
            )
            blocks.append((heading + " (continued)", line))
    messages: list[OutgoingMessage] = []
    for text, held in pack_indexed(blocks, counted=judged, max_counted=JUDGED_PER_MESSAGE):
        rows = digest_feedback_rows([judged[i] for i in held if i in judged])
        messages.append(html_message(text, {"inline_keyboard": rows} if rows else None))
    return messages
