"""Pure rendering of command replies as Telegram HTML.

Every piece of outside text (titles, names, errors, user input) goes through ``esc``; replies
are measured and split by ``delivery.telegram_html`` (UTF-16 units, never inside a tag). Times
are in the chat's zone, labelled; documents published on a date show the date only. Facts of
regulatory documents come from ``delivery.render.fact_lines``, as in alerts and digests.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from bot.commands import ADMIN, COMMANDS, EDITOR
from delivery.render import SourceLine, also_text, fact_lines, local_time, published_when
from delivery.telegram_html import clip, esc, fit, link, paginate
from models.csl import country_name, fr_citation_url
from models.digests import DIGEST_MODES
from models.localtime import parse_quiet_hours, zone_name
from models.matching import scope_body
from models.orgnames import EditorsNames
from models.timeutil import describe_duration
from models.views import (
    Deadline,
    DryRunResult,
    EntityRecord,
    EventView,
    ItemRow,
    SourceView,
    Stats,
    SubscriptionView,
    WatchedOrgView,
)
from pipeline.entities import EntityAnswer
from pipeline.polling import Trial

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def counted(n: int, noun: str) -> str:
    """``1 item``, ``2 items``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def when(value: datetime | None, zone: str) -> str:
    """A time in ``zone`` for a reply that names the zone in its heading."""
    return "never" if value is None else local_time(value, zone, abbreviation=False)


def event_suffix(row: ItemRow, event: EventView | None, zone: str) -> str:
    """The other sources of the event an item belongs to, and how to see its timeline."""
    if event is None:
        return ""
    others = [
        SourceLine.of(member)
        for member in _member_rows(event)
        if member.id != row.id and member.source_name != row.source_name
    ]
    also = f"➕ also: {also_text(others, zone, 4)} · " if others else ""
    return f"\n  {also}<code>/event {event.id}</code>"


def _member_rows(event: EventView) -> list[ItemRow]:
    return [
        ItemRow(
            id=m.item_id,
            title=m.title,
            url=m.url,
            source_name=m.source_name,
            source_kind=m.source_kind,
            published_at=m.published_at,
            date_only=m.date_only,
            fields=m.fields,
        )
        for m in event.members
    ]


def item_line(row: ItemRow, zone: str) -> str:
    head = link(clip(row.title, 200), row.url)
    head = head if row.url else f"<b>{head}</b>"
    shown = published_when(
        row.published_at, row.fields, zone, date_only=row.date_only, abbreviation=False
    )
    meta = [esc(row.source_name), esc(shown)]
    if row.themes:
        meta.append(" ".join(f"#{esc(t.replace('-', '_'))}" for t in row.themes))
    return f"• {head}\n  <i>{' · '.join(meta)}</i>"


def policy_line(row: ItemRow, zone: str) -> str:
    return "\n".join([item_line(row, zone), *(f"  {fact}" for fact in fact_lines(row.fields))])


Listed = Sequence[tuple[ItemRow, EventView | None]]


def items_reply(heading: str, rows: Listed, empty: str, zone: str) -> str:
    """Events, one line each (by the item shown), with the event's other sources."""
    if not rows:
        return empty
    lines = [item_line(r, zone) + event_suffix(r, e, zone) for r, e in rows]
    return fit([f"<b>{esc(heading)}</b> ({esc(zone_name(zone))})", *lines])


def policy_reply(heading: str, rows: Listed, zone: str) -> str:
    if not rows:
        return "No regulatory documents stored yet."
    lines = [policy_line(r, zone) + event_suffix(r, e, zone) for r, e in rows]
    return fit([f"<b>{esc(heading)}</b> ({esc(zone_name(zone))})", *lines])


def event_reply(event: EventView, zone: str) -> list[str]:
    """An event's timeline: every item, oldest first, with why it belongs (what an editor
    checks before merging or splitting)."""
    members = len(event.members)
    sources = len(event.sources)
    lines = [
        f"<b>Event {event.id}</b>: {esc(clip(event.title, 200))}",
        f"{members} item{'s' if members != 1 else ''} from {sources} "
        f"source{'s' if sources != 1 else ''} ({esc(zone_name(zone))})",
    ]
    for member in event.members:
        shown = published_when(
            member.published_at, member.fields, zone, date_only=member.date_only, abbreviation=False
        )
        why = "placed by an editor" if member.manual else member.reason
        lines.append(
            f"• {esc(shown)} · {esc(clip(member.source_name, 40))} — "
            f"{link(clip(member.title, 160), member.url)}\n  <i>{esc(clip(why, 120))}</i> "
            f"<code>item {member.item_id}</code>"
        )
    return paginate(lines)


def upcoming_reply(deadlines: Sequence[Deadline], days: int) -> str:
    if not deadlines:
        return f"No effective dates or comment deadlines in the next {days} days."
    lines = [f"<b>The next {days} days</b>"]
    for d in deadlines:
        title = link(clip(d.item.title, 160), d.item.url)
        lines.append(f"• {d.on.isoformat()} — {esc(d.what)}: {title}")
    return fit(lines)


def digest_off_hint(digest_mode: str) -> str:
    """What a subscriber to a digest theme must hear when the digest is off: nothing of it
    would ever reach them."""
    if digest_mode != "off":
        return ""
    return (
        "\nThe digest is off, so nothing of this theme would reach you: "
        "turn it on with /digest daily 08:00."
    )


def trial_summary(trial: Trial, zone: str) -> str:
    """What one try of a new source found, for ``/source add``."""
    if not trial.items:
        return "it answered, with no items yet."
    found = f"{trial.items} item{'s' if trial.items != 1 else ''}"
    if trial.newest_title is None:
        return f"{found}."
    when = f" ({esc(when_local(trial.newest_at, zone))})" if trial.newest_at else ""
    return f"{found}; the newest: “{esc(clip(trial.newest_title, 120))}”{when}."


def when_local(value: datetime | None, zone: str) -> str:
    """A time in ``zone``, labelled with the zone."""
    return "never" if value is None else f"{when(value, zone)} {zone_name(zone)}"


def help_reply() -> str:
    lines = ["<b>PolicyWatch commands</b>"]
    for cmd in COMMANDS:
        mark = {EDITOR: " <i>(editors)</i>", ADMIN: " <i>(admins)</i>"}.get(cmd.access, "")
        lines.append(f"{esc(cmd.usage)} — {esc(cmd.description)}{mark}")
    return fit(lines)


def themes_reply(themes: Sequence[tuple[str, str, str, str | None]]) -> str:
    """``themes``: (slug, title, description, the chat's subscription mode or None)."""
    if not themes:
        return "No themes are tracked yet."
    lines = ["<b>Themes</b>"]
    for slug, title, description, mode in themes:
        state = f"✅ subscribed ({mode})" if mode else "not subscribed"
        lines.append(f"• <b>{esc(title)}</b> <code>{esc(slug)}</code> — {state}")
        if description:
            lines.append(f"  {esc(clip(description, 300))}")
    lines.append("\n/subscribe &lt;theme&gt; or /unsubscribe &lt;theme&gt;")
    return fit(lines)


INSTANT_SETTING = {
    "all": "every match",
    "sure": "sure matches only (the others in the digest)",
}


def instant_alerts_reply(which: str, digest_mode: str) -> str:
    """What /alerts all|sure did, and what it means with this chat's digest."""
    if which == "all":
        return "Every match alerts you at once again."
    said = (
        "Instant alerts only for sure matches: where the watchlist and the learned model agree. "
        "The others wait for your digest."
    )
    if digest_mode not in DIGEST_MODES:
        said += (
            " Your digest is off, so until you turn it on (/digest daily 08:00) every match "
            "still alerts you: nothing is dropped."
        )
    return said


def quiet_hours_text(window: str | None, subscriptions: Sequence[SubscriptionView] = ()) -> str:
    """``22:00–07:00, alerts wait until they end`` (and which themes come at any hour) or
    ``none``; a stored window the planner would not read (``models.localtime``) is none too,
    as it acts."""
    hours = parse_quiet_hours(window)
    if hours is None:
        return "none"
    through = ", ".join(esc(s.slug) for s in subscriptions if s.through_quiet)
    also = f" ({through}: at any hour)" if through else ""
    return f"{hours[0]:%H:%M}–{hours[1]:%H:%M}, alerts wait until they end{also}"


def settings_reply(
    *,
    timezone: str,
    digest_mode: str,
    digest_time: str | None,
    digest_weekday: int | None,
    muted_until: datetime | None,
    now: datetime,
    subscriptions: Sequence[SubscriptionView],
    instant_alerts: str = "all",
    quiet_hours: str | None = None,
    digest_topic: int | None = None,
    heading: str = "Your settings",
) -> str:
    if digest_mode == "daily":
        digest = f"daily at {esc(digest_time)}"
    elif digest_mode == "weekly" and digest_weekday is not None:
        digest = f"weekly on {WEEKDAYS[digest_weekday]} at {esc(digest_time)}"
    else:
        digest = "off"
    if digest != "off" and digest_topic is not None:
        digest += f", in topic {digest_topic}"
    muted = (
        f"until {esc(when(muted_until, timezone))}"
        if muted_until is not None and muted_until > now
        else "no"
    )
    subs = (
        ", ".join(
            f"{esc(s.slug)} ({esc(s.mode)}"
            + (f", in topic {s.topic_id})" if s.topic_id is not None else ")")
            for s in subscriptions
        )
        or "none"
    )
    return "\n".join(
        [
            f"<b>{esc(heading)}</b>",
            f"Time zone: {esc(timezone)}",
            f"Digest: {digest}",
            f"Muted: {muted}",
            f"Quiet hours: {quiet_hours_text(quiet_hours, subscriptions)}",
            f"Instant alerts: {INSTANT_SETTING[instant_alerts]}",
            f"Themes: {subs}",
        ]
    )


def sources_reply(rows: Sequence[SourceView], zone: str, *, detailed: bool = False) -> str:
    if not rows:
        return "No sources are configured."
    lines = [f"<b>Sources</b> ({esc(zone_name(zone))})"]
    for s in rows:
        if not s.enabled:
            state = "⏸ paused"
        elif s.failing:
            state = f"❌ failing ({s.consecutive_failures}×)"
        elif s.quiet_since is not None:
            state = "💤 quiet: nothing new" + (
                f" for over {describe_duration(s.expected_within)}" if s.expected_within else ""
            )
        else:
            state = "✅ ok"
        digest = " · to digests only" if s.alerts == "digest" else ""
        if s.digest_themes and s.alerts != "digest":
            digest = f" · {esc(', '.join(s.digest_themes))} to digests only"
        if s.trusted_themes:
            digest += f" · {esc(', '.join(s.trusted_themes))} trusted"
        lines.append(f"• <b>{esc(s.name)}</b> — {state}{digest}")
        lines.append(
            f"  last success {esc(when(s.last_success_at, zone))}, "
            f"last new item {esc(when(s.last_new_item_at, zone))}"
        )
        if detailed:
            expects = (
                f"new items expected within {describe_duration(s.expected_within)}"
                if s.expected_within
                else "never reported quiet"
            )
            lines.append(f"  {esc(s.kind)} · {esc(s.origin)} · {expects} · {esc(clip(s.url, 200))}")
        if s.failing and s.last_error:
            lines.append(f"  <i>{esc(clip(s.last_error, 200))}</i>")
    return fit(lines)


def watch_list_reply(rules: dict[str, list[str]]) -> list[str]:
    """Every entry, over as many messages as it takes: an editor removes by the exact text."""
    if not rules:
        return ["No watchlist entries."]
    lines = []
    for slug, entries in rules.items():
        lines.append(f"<b>{esc(slug)}</b> ({len(entries)})")
        lines.extend(f"• <code>{esc(rule)}</code>" for rule in entries)
    return paginate(lines)


def scope_note(slug: str) -> str:
    """What a scope entry (``SCOPE: ...``, ``models.matching``) does, told when it is added or
    tried: it matches nothing itself."""
    return (
        f"A scope entry: it matches nothing itself. The learned model may match <b>{esc(slug)}"
        "</b> alone only in items some scope entry finds (the theme's rules are not affected)."
    )


def disambiguation_note(slug: str, name: str) -> str:
    """What a rule that starts with a single name and has a NOT part also does
    (``models.matching.disambiguation``): the editor should not learn it from a missed alert."""
    return (
        f"Read as a disambiguation of <code>{esc(name)}</code>: an item that names "
        f"{esc(name)} together with a word of its NOT part is kept out of <b>{esc(slug)}</b>, "
        "even when the learned model would match it. To only narrow this rule, start it with "
        "an OR group of words instead of a single name."
    )


def dry_run_reply(
    slug: str, rule: str, result: DryRunResult, days: int, note: str | None = None
) -> str:
    if scope_body(rule) is None:
        counted = f"would match <b>{result.matched}</b> of {result.items} items"
        today = "not matched by the theme today"
    else:  # a scope entry matches nothing: say what it keeps within the model's reach
        counted = f"finds <b>{result.matched}</b> of {result.items} items"
        today = "of them not matched by the theme today"
    lines = [
        f"<code>{esc(rule)}</code> in <b>{esc(slug)}</b> {counted} from the last {days} days "
        f"({result.new_to_theme} {today})."
    ]
    if note:
        lines.append(note)
    lines.extend(
        f"• {esc(clip(example.title, 200))} <i>({esc(', '.join(example.terms))})</i>"
        if example.terms
        else f"• {esc(clip(example.title, 200))}"
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


def entity_block(record: EntityRecord, zone: str) -> list[str]:
    """One screening-list entry: list, since when, notices, aliases, addresses, licence."""
    entry = record.entry
    lines = [f"<b>{esc(clip(entry.name, 200))}</b>"]
    listed = entry.list_name
    if entry.start_date:
        listed += f", since {entry.start_date}"
    if record.removed_at is not None:
        listed += (
            f" — removed from the list (seen {local_time(record.removed_at, zone, date_only=True)})"
        )
    lines.append(f"📋 {esc(listed)}")
    notices = [
        link(c, url) if (url := fr_citation_url(c)) else esc(c) for c in entry.citations
    ] or ([esc(clip(entry.federal_register_notice, 160))] if entry.federal_register_notice else [])
    if notices:
        lines.append("📜 " + ", ".join(notices))
    if entry.alt_names:
        lines.append("Also: " + esc(clip("; ".join(entry.alt_names), 400)))
    for address in entry.addresses[:3]:
        lines.append("📍 " + esc(clip(address, 200)))
    if len(entry.addresses) > 3:
        lines.append(f"📍 … {len(entry.addresses) - 3} more addresses")
    if entry.countries:
        lines.append("Country: " + esc(", ".join(country_name(c) for c in entry.countries)))
    if entry.license_requirement:
        lines.append("Licence requirement: " + esc(clip(entry.license_requirement, 300)))
    if entry.license_policy:
        lines.append("Review policy: " + esc(clip(entry.license_policy, 300)))
    if entry.programs:
        lines.append("Programs: " + esc(", ".join(entry.programs)))
    return lines


def entity_reply(query: str, answer: EntityAnswer, zone: str) -> list[str]:
    if answer.empty:
        return [
            "No screening list is stored yet: an admin adds the Consolidated Screening List "
            "as a source of kind <code>csl</code>."
        ]
    shown = esc(clip(query, 100))
    if not answer.records:
        text = f"No entry on the US screening lists matches <b>{shown}</b>."
        if answer.closest:
            text += "\nClosest names:\n" + "\n".join(
                f"• {esc(clip(n, 160))}" for n in answer.closest
            )
        return [text]
    lines = [f"<b>{shown}</b> on the US screening lists ({len(answer.records)}):"]
    if len(answer.queried) > 1:
        lines.append(
            "<i>Also looked for: " + esc(clip("; ".join(answer.queried[1:]), 300)) + "</i>"
        )
    for record in answer.records:
        lines.append("")
        lines.extend(entity_block(record, zone))
    return paginate(lines)


def watched_orgs_reply(
    mine: Sequence[WatchedOrgView], themes: Sequence[WatchedOrgView], *, whose: str = "Your"
) -> list[str]:
    """A chat's own watched organisations (``whose``: "Your", or "This chat's" in a group) and
    the themes'."""

    def line(org: WatchedOrgView) -> str:
        also = f" — also {esc('; '.join(org.aliases))}" if org.aliases else ""
        return f"• <b>{esc(org.name)}</b>{also}"

    lines = [f"<b>{esc(whose)} watched organisations</b> ({len(mine)})"]
    lines.extend(line(o) for o in mine)
    if not mine:
        lines.append("None yet: /watch org add &lt;name&gt;; &lt;alias&gt;…")
    by_theme: dict[str, list[WatchedOrgView]] = {}
    for org in themes:
        by_theme.setdefault(org.theme_slug or "?", []).append(org)
    for slug, orgs in sorted(by_theme.items()):
        lines.append(f"\n<b>Theme {esc(slug)}</b> ({len(orgs)})")
        lines.extend(line(o) for o in orgs)
    return paginate(lines)


def known_names_reply(
    query: str,
    organisations: Sequence[Sequence[str]],
    added: Collection[str],
    *,
    added_now: bool = False,
) -> str:
    """``/names``: the names of the organisations ``query`` names; ``added``: names editors
    added (marked ✎), the rest ship with PolicyWatch."""
    if not organisations:
        return (
            f"PolicyWatch knows no other names of <code>{esc(query)}</code>. Editors can add "
            "some: /names add &lt;name&gt;; &lt;other name&gt;…"
        )
    lines = [f"Added. {esc(query)} is known as:" if added_now else f"{esc(query)} is known as:"]
    for names in organisations:
        lines.append("• " + " · ".join(f"{esc(n)}{' ✎' if n in added else ''}" for n in names))
    lines.append(
        "These names find each other in /entity, watched organisations and list changes "
        "(✎: added by an editor)."
        if any(n in added for names in organisations for n in names)
        else "These names find each other in /entity, watched organisations and list changes."
    )
    return fit(lines)


def added_names_reply(edits: EditorsNames) -> list[str]:
    """``/names added``: every group of names editors added, oldest first, and the names they
    dropped."""
    if not edits.groups and not edits.dropped:
        return ["Editors have added no names yet: /names add &lt;name&gt;; &lt;other name&gt;…"]
    lines = [f"<b>Names editors added</b> ({len(edits.groups)})"]
    lines.extend("• " + " · ".join(esc(n) for n in group) for group in edits.groups)
    if edits.dropped:
        lines.append(f"<b>Names editors dropped</b> ({len(edits.dropped)})")
        lines.extend(f"• {esc(n)}" for n in edits.dropped)
    return paginate(lines)
