"""Commands everyone may use: registering, themes and subscriptions, reading what was found,
and the chat's own settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta, tzinfo

from bot import replies
from bot.handlers.base import (
    EVENT_ROWS,
    Call,
    Document,
    RefusedError,
    Reply,
    UsageError,
    by_event,
    forum_topic,
    parse_count,
    theme_or_error,
)
from bot.handlers.buttons import theme_keyboard
from delivery.calendar import deadlines_ics
from delivery.exports import items_csv
from delivery.telegram_html import esc
from models.alerts import INSTANT_CHOICES
from models.db.queries import REGULATORY_KINDS
from models.localtime import load_zone, parse_quiet_hours, quiet_hours_end, zone_name
from models.matching import script_variants
from models.timeutil import parse_duration
from models.views import SubscriberView, ThemeView

MAX_SEARCH = 200
EXPORT_DAYS = 7
MAX_EXPORT_DAYS = 90
MAX_EXPORT_ROWS = 5000
MAX_LATEST = 20
DEFAULT_LATEST = 5
MAX_MUTE_DAYS = 365
UPCOMING_DAYS = 30
CALENDAR_DAYS = 180
DAY_NAMES = {
    name: index
    for index, names in enumerate(
        [
            ("mon", "monday"),
            ("tue", "tues", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thur", "thurs", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
            ("sun", "sunday"),
        ]
    )
    for name in names
}
_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_ZONE_RE = re.compile(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$")
_EXCEPT_RE = re.compile(r"\s*\b(except)\b\s*", re.IGNORECASE)
MAX_QUIET_EXCEPTIONS = 20


async def cmd_start(call: Call) -> Reply:
    sub = await call.subscriber()
    keyboard = await theme_keyboard(call.uow, sub.id)
    text = (
        "<b>Welcome to PolicyWatch.</b>\n"
        "I alert you to US export-control actions and China's AI policy as they are published.\n"
        + (
            "Tap a theme to follow it; /help lists every command."
            if keyboard
            else "No themes are tracked yet; /help lists every command."
        )
    )
    return Reply(text, keyboard)


async def cmd_help(call: Call) -> Reply:
    return Reply(replies.help_reply())


async def cmd_themes(call: Call) -> Reply:
    sub = await call.subscriber()
    modes = {s.slug: s.mode for s in await call.uow.subscribers.subscriptions(sub.id)}
    themes = await call.uow.themes.enabled()
    return Reply(
        replies.themes_reply([(t.slug, t.title, t.description, modes.get(t.slug)) for t in themes])
    )


async def _keyboard(call: Call, subscriber_id: int, prompt: str) -> Reply:
    """No theme named: a keyboard of the themes to tap instead."""
    if len(call.args) > 1:
        raise UsageError("Give one theme at a time.")
    keyboard = await theme_keyboard(call.uow, subscriber_id)
    return Reply(prompt if keyboard else "No themes yet.", keyboard)


async def cmd_subscribe(call: Call) -> Reply:
    await call.require_chat_admin()
    sub = await call.subscriber()
    if len(call.args) != 1:
        return await _keyboard(call, sub.id, "Tap a theme to follow it.")
    theme = await theme_or_error(call.uow, call.args[0])
    title = f"<b>{esc(theme.title)}</b>"
    # In a forum, a theme's alerts go to the topic it is subscribed from (models.alerts rule 9)
    topic = forum_topic(call.message)
    subscribers = call.uow.subscribers
    if not await subscribers.subscribe(sub.id, theme.id, theme.priority, call.now, topic_id=topic):
        if call.chat.is_forum and await subscribers.route(sub.id, theme.id, topic):
            where = "this topic" if topic is not None else "the General topic"
            return Reply(f"Alerts of {title} now come to {where}.")
        return Reply(
            call.say(f"You already follow {title}.", f"This chat already follows {title}.")
        )
    done = call.say(f"You now follow {title}", f"This chat now follows {title}")
    here = ", in this topic" if topic is not None else ""
    if theme.priority != "digest":
        return Reply(f"{done} ({esc(theme.priority)} alerts{here}).")
    return Reply(f"{done} (in the digest).{replies.digest_off_hint(sub.digest_mode)}")


async def cmd_unsubscribe(call: Call) -> Reply:
    await call.require_chat_admin()
    sub = await call.subscriber()
    if len(call.args) != 1:
        return await _keyboard(call, sub.id, "Tap a theme to change it.")
    theme = await theme_or_error(call.uow, call.args[0], enabled_only=False)
    title = f"<b>{esc(theme.title)}</b>"
    if not await call.uow.subscribers.unsubscribe(sub.id, theme.id, call.now):
        return Reply(call.say(f"You do not follow {title}.", f"This chat does not follow {title}."))
    return Reply(
        call.say(f"You no longer follow {title}.", f"This chat no longer follows {title}.")
    )


@dataclass(frozen=True, slots=True)
class _Asked:
    """What ``/latest`` or ``/export`` is about: the themes, how to name them, and a count."""

    slugs: list[str]
    label: str  # "your themes", "export-controls"...
    count: int


def _word_and_count(args: list[str]) -> tuple[str | None, str | None]:
    """``[word] [n]``, in either order (``/latest 5 china-ai`` as ``/latest china-ai 5``): the
    word (a theme, a region) and the count's text. What looks like a number is the count
    (``parse_count`` says why it is not one); after the word, one count at most."""
    if len(args) == 2 and args[0].isdigit() and not args[1].isdigit():
        args = [args[1], args[0]]
    word = args[0] if args and not args[0].isdigit() else None
    rest = args[1:] if word is not None else args
    if len(rest) > 1:
        raise UsageError("Too many arguments.")
    return word, (rest[0] if rest else None)


async def _themes_asked(call: Call, sub: SubscriberView, default: int, maximum: int) -> _Asked:
    """``[theme] [n]``: one theme, or the chat's (in a forum topic: those routed to it)."""
    slug, count = _word_and_count(call.args)
    n = default if count is None else parse_count(count, maximum)
    if slug is not None:
        theme = await theme_or_error(call.uow, slug)
        return _Asked([theme.slug], theme.title, n)
    followed = await call.uow.subscribers.subscriptions(sub.id)
    if not followed:
        command = call.message.text.split()[0] if call.message.text else "/latest"
        raise RefusedError(
            call.say("You follow no themes yet", "This chat follows no themes yet")
            + f": /subscribe, or {esc(command)} &lt;theme&gt;."
        )
    topic = forum_topic(call.message)
    here = [s.slug for s in followed if topic is not None and s.topic_id == topic]
    if here:  # asked in a forum topic: the themes routed to it
        return _Asked(here, "this topic's themes", n)
    return _Asked([s.slug for s in followed], call.say("your themes", "this chat's themes"), n)


async def cmd_latest(call: Call) -> Reply:
    sub = await call.subscriber()
    asked = await _themes_asked(call, sub, DEFAULT_LATEST, MAX_LATEST)
    rows = await call.uow.queries.latest_items(asked.slugs, asked.count * EVENT_ROWS)
    listed = await by_event(call.uow, rows, asked.count)
    heading = f"Latest in {asked.label}"
    return Reply(replies.items_reply(heading, listed, "Nothing matched yet.", sub.timezone))


async def cmd_export(call: Call) -> Reply:
    """``/export [theme] [days]``: the matched items of the last days as a CSV file."""
    sub = await call.subscriber()
    asked = await _themes_asked(call, sub, EXPORT_DAYS, MAX_EXPORT_DAYS)
    since = call.now - timedelta(days=asked.count)
    rows = await call.uow.queries.latest_items(asked.slugs, MAX_EXPORT_ROWS + 1, since=since)
    days = f"{asked.count} day{'s' if asked.count != 1 else ''}"
    if not rows:
        return Reply(f"Nothing in {esc(asked.label)} matched in the last {days}.")
    cut = len(rows) > MAX_EXPORT_ROWS
    rows = rows[:MAX_EXPORT_ROWS]
    events = await call.uow.events.of_items([r.id for r in rows])
    event_count = len({events.get(r.id, -r.id) for r in rows})  # an item alone is its own
    name = asked.slugs[0] if len(asked.slugs) == 1 else "themes"
    day = call.now.astimezone(load_zone(sub.timezone))
    caption = (
        f"📄 {replies.counted(len(rows), 'item')} of {replies.counted(event_count, 'event')} in "
        f"{esc(asked.label)}, the last {days}"
    )
    if cut:
        caption += f" (the newest {MAX_EXPORT_ROWS}: ask for fewer days for the rest)"
    document = Document(
        f"policywatch-{name}-{day:%Y-%m-%d}.csv", items_csv(rows, events, sub.timezone), caption
    )
    said = f"{replies.counted(len(rows), 'item')}, newest first; times in {esc(sub.timezone)}."
    return Reply(said, documents=(document,))


async def cmd_policy(call: Call) -> Reply:
    region, count = _word_and_count([a.lower() for a in call.args])
    if region is not None and region not in REGULATORY_KINDS:
        raise UsageError(f"<code>{esc(region[:20])}</code> is neither us, cn nor a number.")
    n = DEFAULT_LATEST if count is None else parse_count(count, MAX_LATEST)
    rows = await by_event(
        call.uow, await call.uow.queries.policy_documents(region, n * EVENT_ROWS), n
    )
    heading = {"us": "US regulatory documents", "cn": "China regulatory documents"}.get(
        region or "", "Regulatory documents"
    )
    return Reply(replies.policy_reply(heading, rows, await call.zone()))


async def cmd_search(call: Call) -> Reply:
    if not call.rest:
        raise UsageError("What should I search for?")
    if len(call.rest) > MAX_SEARCH:
        msg = f"That search is too long ({len(call.rest)} characters; at most {MAX_SEARCH})."
        raise UsageError(msg)
    words = call.args[:10]
    found = await call.uow.queries.search_items([script_variants(w) for w in words], 40)
    rows = await by_event(call.uow, found, 10)
    return Reply(
        replies.items_reply(
            f"Results for {' '.join(words)}",
            rows,
            f"Nothing stored matches <code>{esc(' '.join(words))}</code>.",
            await call.zone(),
        )
    )


async def cmd_upcoming(call: Call) -> Reply:
    if call.args:
        raise UsageError("/upcoming takes no arguments.")
    today = call.now.astimezone(load_zone(await call.zone())).date()
    deadlines = await call.uow.queries.upcoming_deadlines(today, UPCOMING_DAYS)
    calendar = await call.uow.queries.upcoming_deadlines(today, CALENDAR_DAYS)
    if not calendar:
        return Reply(replies.upcoming_reply(deadlines, UPCOMING_DAYS))
    ics = Document(
        "policywatch-deadlines.ics",
        deadlines_ics(calendar, now=call.now),
        f"📅 {len(calendar)} dates of the next {CALENDAR_DAYS} days, with reminders 7 days and "
        "1 day before: open it to add them to your calendar.",
    )
    return Reply(replies.upcoming_reply(deadlines, UPCOMING_DAYS), documents=(ics,))


def parse_time(text: str) -> str:
    match = _TIME_RE.match(text)
    if match is None:
        msg = f"<code>{esc(text[:20])}</code> is not a time; use HH:MM, e.g. 08:30."
        raise UsageError(msg)
    return f"{int(match.group(1)):02d}:{match.group(2)}"


async def cmd_digest(call: Call) -> Reply:
    await call.require_chat_admin()
    args = [a.lower() for a in call.args]
    sub = await call.subscriber()
    if not args:
        raise UsageError("Choose off, daily or weekly.")
    mode = args[0]
    digests = call.uow.subscribers
    topic = forum_topic(call.message)  # in a forum, the digest goes where it was asked for
    here = " in this topic" if topic is not None else ""
    if mode == "off" and len(args) == 1:
        await digests.set_digest(sub.id, mode="off", digest_time=None, weekday=None, now=call.now)
        return Reply("Digest turned off.")
    if mode == "daily" and len(args) == 2:
        at = parse_time(args[1])
        await digests.set_digest(
            sub.id, mode="daily", digest_time=at, weekday=None, now=call.now, topic_id=topic
        )
        return Reply(f"Daily digest at {at} ({esc(sub.timezone)}){here}.")
    if mode == "weekly" and len(args) == 3:
        day = DAY_NAMES.get(args[1])
        if day is None:
            msg = f"<code>{esc(args[1][:20])}</code> is not a day; use mon, tue, … sun."
            raise UsageError(msg)
        at = parse_time(args[2])
        await digests.set_digest(
            sub.id, mode="weekly", digest_time=at, weekday=day, now=call.now, topic_id=topic
        )
        day_name = replies.WEEKDAYS[day]
        return Reply(f"Weekly digest on {day_name} at {at} ({esc(sub.timezone)}){here}.")
    raise UsageError(f"<code>{esc(call.rest[:40])}</code> is not a digest schedule.")


async def cmd_timezone(call: Call) -> Reply:
    await call.require_chat_admin()
    if len(call.args) != 1:
        raise UsageError("Give one time zone name.")
    name = call.args[0]
    zone: tzinfo | None = None
    if len(name) <= 64 and _ZONE_RE.match(name):
        try:
            zone = load_zone(name, strict=True)
        except ValueError:
            zone = None
    if zone is None:
        raise UsageError(f"Unknown time zone <code>{esc(name[:64])}</code>.")
    key = zone_name(name)
    sub = await call.subscriber()
    after = await call.uow.subscribers.set_timezone(sub.id, key, call.now)
    await move_quiet_held(call, sub, after)
    local = call.now.astimezone(zone).strftime("%H:%M")
    return Reply(f"Time zone set to {esc(key)} (it is {local} there now).")


async def cmd_mute(call: Call) -> Reply:
    await call.require_chat_admin()
    if len(call.args) != 1:
        raise UsageError("Give a duration such as 8h or 2d, or off.")
    sub = await call.subscriber()
    if call.args[0].lower() == "off":
        await call.uow.subscribers.set_muted_until(sub.id, None, call.now)
        if await call.uow.deliveries.reschedule_held(sub.id, call.now, call.now):
            return Reply("Alerts are on again. What matched while muted follows now.")
        return Reply("Alerts are on again.")
    try:
        duration = parse_duration(call.args[0])
    except ValueError:
        raise UsageError(f"<code>{esc(call.args[0][:20])}</code> is not a duration.") from None
    if duration > timedelta(days=MAX_MUTE_DAYS):
        raise UsageError(f"Mute for at most {MAX_MUTE_DAYS} days.")
    updated = await call.uow.subscribers.set_muted_until(sub.id, call.now + duration, call.now)
    await call.uow.deliveries.reschedule_held(sub.id, call.now + duration, call.now)
    until = replies.when(updated.muted_until, sub.timezone)
    return Reply(f"Alerts muted until {esc(until)} ({esc(sub.timezone)}).")


async def cmd_quiet(call: Call) -> Reply:
    """Quiet hours: what is planned inside them waits until they end (``models.alerts``
    rule 7), except the alerts of the themes named after ``except``; what already waits for
    the old hours' end moves with the change."""
    await call.require_chat_admin()
    parts = _EXCEPT_RE.split(call.rest.strip(), maxsplit=1)  # [hours, "except", themes]
    hours_text, except_text = parts[0], parts[2] if len(parts) == 3 else ""
    if len(parts) == 3 and not except_text:
        raise UsageError("Name the themes after except, e.g. except export-controls.")
    given = "".join(hours_text.split())
    if given.lower() == "off" and not except_text:
        window = None
    else:
        hours = parse_quiet_hours(given) if len(given) <= 11 else None
        if hours is None:
            msg = (
                f"<code>{esc(hours_text[:20])}</code> is not a span of hours; use HH:MM-HH:MM, "
                "e.g. 22:00-07:00, or off."
                if given
                else "Give the hours, e.g. 22:00-07:00, or off."
            )
            raise UsageError(msg)
        window = f"{hours[0]:%H:%M}-{hours[1]:%H:%M}"
    before = await call.subscriber()
    through = await _followed_themes(call, before.id, except_text)
    after = await call.uow.subscribers.set_quiet_hours(before.id, window, call.now)
    await call.uow.subscribers.let_through_quiet(before.id, [t.id for t in through])
    moved = await move_quiet_held(call, before, after)
    held_until = quiet_hours_end(window, after.timezone, call.now)
    if held_until is not None:  # what waits for this end and may come through now goes now
        await call.uow.deliveries.release_quiet(
            before.id, held_until, [t.id for t in through], call.now
        )
    zone = esc(after.timezone)
    if window is None:
        said = "Quiet hours are off."
        return Reply(said + (" What waited for them to end follows now." if moved else ""))
    start, end = window.split("-")
    said = f"Quiet hours {start}–{end} ({zone}): alerts that come in then wait until {end}"
    if through:
        titles = ", ".join(f"<b>{esc(t.title)}</b>" for t in through)
        said += f", except those of {titles}, which come at any hour"
    said += "."
    if held_until is not None:
        said += f" It is quiet now, until {esc(replies.when(held_until, after.timezone))}."
    return Reply(said)


async def _followed_themes(call: Call, subscriber_id: int, text: str) -> list[ThemeView]:
    """The themes ``text`` names (slugs, by spaces or commas), each one the chat follows."""
    slugs = list(dict.fromkeys(s for s in re.split(r"[\s,]+", text.lower()) if s))
    if len(slugs) > MAX_QUIET_EXCEPTIONS:
        raise UsageError(f"Name at most {MAX_QUIET_EXCEPTIONS} themes after except.")
    followed = await call.uow.subscribers.subscribed_theme_ids(subscriber_id)
    themes = []
    for slug in slugs:
        theme = await theme_or_error(call.uow, slug)
        if theme.id not in followed:
            said = call.say("You do not follow", "This chat does not follow")
            raise UsageError(f"{said} <b>{esc(theme.title)}</b>: /subscribe {esc(slug)} first.")
        themes.append(theme)
    return themes


async def move_quiet_held(call: Call, before: SubscriberView, after: SubscriberView) -> int:
    """After a change of a chat's quiet hours or time zone, what waits for the end of the old
    quiet hours waits for the new ones' end, or goes now."""
    old_end = quiet_hours_end(before.quiet_hours, before.timezone, call.now)
    if old_end is None:
        return 0
    new_end = quiet_hours_end(after.quiet_hours, after.timezone, call.now)
    if new_end == old_end:
        return 0
    return await call.uow.deliveries.reschedule_quiet(
        after.id, old_end, new_end or call.now, call.now
    )


async def cmd_alerts(call: Call) -> Reply:
    await call.require_chat_admin()
    choice = call.args[0].lower() if len(call.args) == 1 else ""
    if choice not in INSTANT_CHOICES:
        raise UsageError("Choose all (every match alerts at once) or sure.")
    sub = await call.subscriber()
    await call.uow.subscribers.set_instant_alerts(sub.id, choice, call.now)
    return Reply(replies.instant_alerts_reply(choice, sub.digest_mode))


async def cmd_settings(call: Call) -> Reply:
    if call.args:
        raise UsageError("/settings takes no arguments.")
    sub = await call.subscriber()
    return Reply(
        replies.settings_reply(
            timezone=sub.timezone,
            digest_mode=sub.digest_mode,
            digest_time=sub.digest_time,
            digest_weekday=sub.digest_weekday,
            muted_until=sub.muted_until,
            quiet_hours=sub.quiet_hours,
            digest_topic=sub.digest_topic_id,
            now=call.now,
            subscriptions=await call.uow.subscribers.subscriptions(sub.id),
            instant_alerts=sub.instant_alerts,
            heading=call.say("Your settings", "This chat's settings"),
        )
    )


async def cmd_sources(call: Call) -> Reply:
    rows = await call.uow.sources.all()
    return Reply(replies.sources_reply([r for r in rows if r.enabled], await call.zone()))
