"""The bot's handlers: every command, the subscribe buttons and chat-membership changes.

Each command is a function ``(Call) -> Reply`` run inside one database transaction; a
``UsageError`` rolls the transaction back and answers with the message and the command's usage,
so bad input never changes anything. Replies go straight back through PTB; broadcasts and admin
notices go through the outbox (``bot.notices``). Every administrative edit writes ``audit_log``.
"""

from __future__ import annotations

import asyncio
import html
import re
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import (
    Chat,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    filters,
)

from bot import replies
from bot.app import Services
from bot.commands import ADMIN, COMMANDS, EDITOR, EVERYONE, Command, command
from bot.logs import get_logger
from bot.notices import enqueue_broadcast, notify_admins
from models.db import queries
from models.db.repositories import AuditRepository, SubscriberRepository
from models.db.tables import Source, Subscriber, Subscription, Theme, ThemeRule
from models.netcheck import address_problem, host_problem, is_ip_literal
from models.sources import NAME_RE, ORIGIN_CHAT, check_http_url
from models.themes import PRIORITIES, SLUG_RE
from models.timeutil import parse_duration
from scrapers.registry import source_kinds

log = get_logger(__name__)

MAX_COMMAND_TEXT = 1000  # a whole command message, except /broadcast
MAX_BROADCAST_TEXT = 3500
MAX_RULE = 500  # theme_rules.rule is VARCHAR(500)
MAX_TITLE = 200
MAX_SEARCH = 200
MAX_LATEST = 20
DEFAULT_LATEST = 5
MAX_MUTE = timedelta(days=365)
DRY_RUN_DAYS = 30
DEFAULT_SOURCE_INTERVAL = 900
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
_CALLBACK_RE = re.compile(r"^(sub|unsub|mute):([a-z0-9][a-z0-9-]{0,47})$")

Resolver = Callable[[str], Awaitable[list[str]]]


class UsageError(Exception):
    """Bad input: the message is shown to the user with the command's usage."""


class RefusedError(Exception):
    """The user may not do this: the message is shown as is."""


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    markup: InlineKeyboardMarkup | None = None
    more: tuple[str, ...] = ()  # follow-up messages, sent in order after ``text``


@dataclass(slots=True)
class Call:
    """One command invocation: who, where, the argument text, and the open transaction."""

    services: Services
    session: AsyncSession
    now: datetime
    chat: Chat
    user: User | None
    message: Message
    rest: str  # the text after the command, stripped
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def args(self) -> list[str]:
        return self.rest.split()

    async def subscriber(self) -> Subscriber:
        return await ensure_subscriber(self.session, self.chat, self.user, self.now)

    async def audit(
        self,
        action: str,
        entity_type: str,
        entity_key: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        await AuditRepository(self.session).record(
            now=self.now,
            action=action,
            entity_type=entity_type,
            entity_key=entity_key,
            actor_user_id=self.user.id if self.user else None,
            actor_chat_id=self.chat.id,
            before=before,
            after=after,
        )


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def split_rest(rest: str, parts: int) -> list[str]:
    """Split off ``parts - 1`` leading words; the last element is the remaining text."""
    pieces = rest.split(maxsplit=parts - 1)
    return pieces + [""] * (parts - len(pieces))


async def ensure_subscriber(
    session: AsyncSession, chat: Chat, user: User | None, now: datetime
) -> Subscriber:
    """The chat's subscriber row, registering (or re-activating) it on first use."""
    row = await session.scalar(select(Subscriber).where(Subscriber.chat_id == chat.id))
    if row is not None and row.active:
        return row
    title = chat.title or chat.username or chat.first_name
    return await SubscriberRepository(session).register(
        chat_id=chat.id,
        chat_type=chat.type,
        user_id=user.id if user and chat.type == Chat.PRIVATE else None,
        title=title[:255] if title else None,
        now=now,
    )


async def role_of(services: Services, session: AsyncSession, user: User | None) -> str:
    """``admin`` (from settings), ``editor`` (granted in chat) or ``subscriber``."""
    if user is None:
        return "subscriber"
    if user.id in services.settings.admin_ids:
        return ADMIN
    role = await session.scalar(
        select(Subscriber.role).where(
            Subscriber.chat_id == user.id, Subscriber.chat_type == Chat.PRIVATE
        )
    )
    return EDITOR if role in (EDITOR, ADMIN) else "subscriber"


def allowed(role: str, access: str) -> bool:
    if access == EVERYONE:
        return True
    if access == EDITOR:
        return role in (EDITOR, ADMIN)
    return role == ADMIN


async def theme_or_error(session: AsyncSession, slug: str, *, enabled_only: bool = True) -> Theme:
    theme = await session.scalar(select(Theme).where(Theme.slug == slug.lower()))
    if theme is None or (enabled_only and not theme.enabled):
        known = (
            await session.scalars(
                select(Theme.slug).where(Theme.enabled.is_(True)).order_by(Theme.slug)
            )
        ).all()
        choices = ", ".join(known) or "none yet"
        msg = f"Unknown theme <code>{esc(slug[:60])}</code>. Themes: {esc(choices)}."
        raise UsageError(msg)
    return theme


async def source_or_error(session: AsyncSession, name: str) -> Source:
    source = await session.scalar(select(Source).where(Source.name == name))
    if source is None:
        known = (await session.scalars(select(Source.name).order_by(Source.name))).all()
        msg = (
            f"Unknown source <code>{esc(name[:70])}</code>. "
            f"Sources: {esc(', '.join(known) or 'none')}."
        )
        raise UsageError(msg)
    return source


def parse_count(text: str, default: int, maximum: int) -> int:
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        msg = f"<code>{esc(text[:20])}</code> is not a number from 1 to {maximum}."
        raise UsageError(msg)
    return int(text) if text else default


# ---------------------------------------------------------------- keyboards


async def theme_keyboard(session: AsyncSession, subscriber_id: int) -> InlineKeyboardMarkup | None:
    themes = (
        await session.scalars(select(Theme).where(Theme.enabled.is_(True)).order_by(Theme.slug))
    ).all()
    if not themes:
        return None
    subscribed = set(
        (
            await session.scalars(
                select(Subscription.theme_id).where(Subscription.subscriber_id == subscriber_id)
            )
        ).all()
    )
    rows = []
    for theme in themes:
        on = theme.id in subscribed
        label = f"{'✅' if on else '➕'} {theme.title}"[:64]
        data = f"{'unsub' if on else 'sub'}:{theme.slug}"
        rows.append([InlineKeyboardButton(label, callback_data=data)])
    return InlineKeyboardMarkup(rows)


async def subscriptions_of(session: AsyncSession, subscriber_id: int) -> list[tuple[str, str]]:
    result = await session.execute(
        select(Theme.slug, Subscription.mode)
        .join(Theme, Theme.id == Subscription.theme_id)
        .where(Subscription.subscriber_id == subscriber_id)
        .order_by(Theme.slug)
    )
    return [(slug, mode) for slug, mode in result.all()]


async def subscribe(
    session: AsyncSession, subscriber: Subscriber, theme: Theme, now: datetime
) -> bool:
    existing = await session.scalar(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber.id, Subscription.theme_id == theme.id
        )
    )
    if existing is not None:
        return False
    session.add(
        Subscription(
            subscriber_id=subscriber.id, theme_id=theme.id, mode=theme.priority, created_at=now
        )
    )
    await session.flush()
    return True


async def unsubscribe(session: AsyncSession, subscriber: Subscriber, theme: Theme) -> bool:
    result = await session.execute(
        delete(Subscription)
        .where(Subscription.subscriber_id == subscriber.id, Subscription.theme_id == theme.id)
        .returning(Subscription.id)
    )
    return bool(result.scalars().all())


# ---------------------------------------------------------------- subscriber commands


async def cmd_start(call: Call) -> Reply:
    sub = await call.subscriber()
    keyboard = await theme_keyboard(call.session, sub.id)
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
    modes = dict(await subscriptions_of(call.session, sub.id))
    themes = (
        await call.session.scalars(
            select(Theme).where(Theme.enabled.is_(True)).order_by(Theme.slug)
        )
    ).all()
    return Reply(
        replies.themes_reply([(t.slug, t.title, t.description, modes.get(t.slug)) for t in themes])
    )


async def cmd_subscribe(call: Call) -> Reply:
    sub = await call.subscriber()
    if not call.args:
        keyboard = await theme_keyboard(call.session, sub.id)
        return Reply("Tap a theme to follow it." if keyboard else "No themes yet.", keyboard)
    if len(call.args) > 1:
        raise UsageError("Give one theme at a time.")
    theme = await theme_or_error(call.session, call.args[0])
    if not await subscribe(call.session, sub, theme, call.now):
        return Reply(f"You already follow <b>{esc(theme.title)}</b>.")
    return Reply(f"You now follow <b>{esc(theme.title)}</b> ({esc(theme.priority)} alerts).")


async def cmd_unsubscribe(call: Call) -> Reply:
    sub = await call.subscriber()
    if not call.args:
        keyboard = await theme_keyboard(call.session, sub.id)
        return Reply("Tap a theme to change it." if keyboard else "No themes yet.", keyboard)
    if len(call.args) > 1:
        raise UsageError("Give one theme at a time.")
    theme = await theme_or_error(call.session, call.args[0], enabled_only=False)
    if not await unsubscribe(call.session, sub, theme):
        return Reply(f"You do not follow <b>{esc(theme.title)}</b>.")
    return Reply(f"You no longer follow <b>{esc(theme.title)}</b>.")


async def cmd_latest(call: Call) -> Reply:
    sub = await call.subscriber()
    args = call.args
    if len(args) > 2:
        raise UsageError("Too many arguments.")
    slug: str | None = None
    n = DEFAULT_LATEST
    if args and not args[0].isdigit():
        slug = args.pop(0)
    if args:
        n = parse_count(args[0], DEFAULT_LATEST, MAX_LATEST)
    if slug is not None:
        theme = await theme_or_error(call.session, slug)
        slugs = [theme.slug]
        heading = f"Latest in {theme.title}"
    else:
        slugs = [s for s, _ in await subscriptions_of(call.session, sub.id)]
        if not slugs:
            return Reply("You follow no themes yet: /subscribe, or /latest &lt;theme&gt;.")
        heading = "Latest in your themes"
    rows = await queries.latest_items(call.session, slugs, n)
    return Reply(replies.items_reply(heading, rows, "Nothing matched yet.", sub.timezone))


async def cmd_policy(call: Call) -> Reply:
    args = [a.lower() for a in call.args]
    if len(args) > 2:
        raise UsageError("Too many arguments.")
    region: str | None = None
    n = DEFAULT_LATEST
    if args and args[0] in queries.REGULATORY_KINDS:
        region = args.pop(0)
    if args:
        if not args[0].isdigit():
            msg = f"<code>{esc(args[0][:20])}</code> is neither us, cn nor a number."
            raise UsageError(msg)
        n = parse_count(args[0], DEFAULT_LATEST, MAX_LATEST)
    rows = await queries.policy_documents(call.session, region, n)
    heading = {"us": "US regulatory documents", "cn": "China regulatory documents"}.get(
        region or "", "Regulatory documents"
    )
    return Reply(replies.policy_reply(heading, rows))


async def cmd_search(call: Call) -> Reply:
    if not call.rest:
        raise UsageError("What should I search for?")
    if len(call.rest) > MAX_SEARCH:
        msg = f"That search is too long ({len(call.rest)} characters; at most {MAX_SEARCH})."
        raise UsageError(msg)
    words = call.args[:10]
    rows = await queries.search_items(call.session, words, 10)
    return Reply(
        replies.items_reply(
            f"Results for {' '.join(words)}",
            rows,
            f"Nothing stored matches <code>{esc(' '.join(words))}</code>.",
        )
    )


async def cmd_upcoming(call: Call) -> Reply:
    if call.args:
        raise UsageError("/upcoming takes no arguments.")
    row = await call.session.scalar(select(Subscriber).where(Subscriber.chat_id == call.chat.id))
    zone = row.timezone if row is not None else "UTC"
    try:
        today = call.now.astimezone(ZoneInfo(zone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        today = call.now.date()
    deadlines = await queries.upcoming_deadlines(call.session, today, 30)
    return Reply(replies.upcoming_reply(deadlines, 30))


def parse_time(text: str) -> str:
    match = _TIME_RE.match(text)
    if match is None:
        msg = f"<code>{esc(text[:20])}</code> is not a time; use HH:MM, e.g. 08:30."
        raise UsageError(msg)
    return f"{int(match.group(1)):02d}:{match.group(2)}"


async def cmd_digest(call: Call) -> Reply:
    args = [a.lower() for a in call.args]
    sub = await call.subscriber()
    if not args:
        raise UsageError("Choose off, daily or weekly.")
    mode = args[0]
    if mode == "off" and len(args) == 1:
        sub.digest_mode, sub.digest_time, sub.digest_weekday = "off", None, None
        text = "Digest turned off."
    elif mode == "daily" and len(args) == 2:
        sub.digest_mode, sub.digest_time, sub.digest_weekday = "daily", parse_time(args[1]), None
        text = f"Daily digest at {sub.digest_time} ({esc(sub.timezone)})."
    elif mode == "weekly" and len(args) == 3:
        day = DAY_NAMES.get(args[1])
        if day is None:
            msg = f"<code>{esc(args[1][:20])}</code> is not a day; use mon, tue, … sun."
            raise UsageError(msg)
        sub.digest_mode, sub.digest_time, sub.digest_weekday = "weekly", parse_time(args[2]), day
        text = (
            f"Weekly digest on {replies.WEEKDAYS[day]} at {sub.digest_time} ({esc(sub.timezone)})."
        )
    else:
        raise UsageError(f"<code>{esc(call.rest[:40])}</code> is not a digest schedule.")
    sub.next_digest_at = None  # the digest tick recomputes it
    sub.updated_at = call.now
    return Reply(text)


async def cmd_timezone(call: Call) -> Reply:
    if len(call.args) != 1:
        raise UsageError("Give one time zone name.")
    name = call.args[0]
    zone: ZoneInfo | None = None
    if len(name) <= 64 and re.match(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$", name):
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
    if zone is None:
        raise UsageError(f"Unknown time zone <code>{esc(name[:64])}</code>.")
    sub = await call.subscriber()
    sub.timezone = str(zone.key)
    sub.next_digest_at = None
    sub.updated_at = call.now
    local = call.now.astimezone(zone).strftime("%H:%M")
    return Reply(f"Time zone set to {esc(zone.key)} (it is {local} there now).")


async def cmd_mute(call: Call) -> Reply:
    if len(call.args) != 1:
        raise UsageError("Give a duration such as 8h or 2d, or off.")
    sub = await call.subscriber()
    if call.args[0].lower() == "off":
        sub.muted_until = None
        sub.updated_at = call.now
        return Reply("Alerts are on again.")
    try:
        duration = parse_duration(call.args[0])
    except ValueError:
        raise UsageError(f"<code>{esc(call.args[0][:20])}</code> is not a duration.") from None
    if duration > MAX_MUTE:
        raise UsageError("Mute for at most 365 days.")
    sub.muted_until = call.now + duration
    sub.updated_at = call.now
    return Reply(
        f"Alerts muted until {replies.when(sub.muted_until, sub.timezone)} ({esc(sub.timezone)})."
    )


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
            now=call.now,
            subscriptions=await subscriptions_of(call.session, sub.id),
        )
    )


async def cmd_sources(call: Call) -> Reply:
    rows = await queries.source_health(call.session)
    return Reply(replies.sources_reply([r for r in rows if r.enabled]))


# ---------------------------------------------------------------- editors: /watch, /theme


async def _enabled_rules(session: AsyncSession, theme_id: int) -> list[ThemeRule]:
    return list(
        (
            await session.scalars(
                select(ThemeRule)
                .where(ThemeRule.theme_id == theme_id, ThemeRule.enabled.is_(True))
                .order_by(ThemeRule.id)
            )
        ).all()
    )


def _check_rule_text(call: Call, rule: str) -> None:
    if not rule:
        raise UsageError("Give a term or rule.")
    if len(rule) > MAX_RULE:
        msg = f"That rule is too long ({len(rule)} characters; at most {MAX_RULE})."
        raise UsageError(msg)
    checker = call.services.check_rule
    if checker is None:
        raise RefusedError("Rule checking is not available yet, so watchlists cannot be edited.")
    problem = checker(rule)
    if problem:
        raise UsageError(f"That rule does not parse: {esc(problem)}")


async def cmd_watch(call: Call) -> Reply:
    sub, slug, rule = split_rest(call.rest, 3)
    sub = sub.lower()
    rule = rule.strip()
    if sub == "list":
        if rule:
            raise UsageError("/watch list takes at most one theme.")
        if slug:
            themes = [await theme_or_error(call.session, slug)]
        else:
            themes = list(
                (
                    await call.session.scalars(
                        select(Theme).where(Theme.enabled.is_(True)).order_by(Theme.slug)
                    )
                ).all()
            )
        listing = {
            t.slug: [r.rule for r in await _enabled_rules(call.session, t.id)] for t in themes
        }
        first, *rest = replies.watch_list_reply(listing)
        return Reply(first, more=tuple(rest))
    if sub not in {"add", "remove", "test"}:
        raise UsageError("Choose list, add, remove or test.")
    if not slug:
        raise UsageError("Name a theme.")
    theme = await theme_or_error(call.session, slug)
    if sub == "remove":
        if not rule:
            raise UsageError("Give the term or rule to remove.")
        rows = await _enabled_rules(call.session, theme.id)
        target = next((r for r in rows if r.rule == rule), None)
        if target is None:
            target = next((r for r in rows if r.rule.strip('"').lower() == rule.lower()), None)
        if target is None:
            msg = (
                f"<code>{esc(rule[:100])}</code> is not on the {esc(theme.slug)} watchlist; "
                f"see /watch list {esc(theme.slug)}."
            )
            raise UsageError(msg)
        before = {"rule": target.rule, "enabled": True, "origin": target.origin}
        target.enabled = False  # a tombstone: re-seeding does not bring it back
        target.origin = ORIGIN_CHAT
        await call.audit(
            "watch.remove",
            "theme_rule",
            f"{theme.slug}:{target.rule}",
            before,
            {"rule": target.rule, "enabled": False, "origin": ORIGIN_CHAT},
        )
        return Reply(f"Removed <code>{esc(target.rule)}</code> from <b>{esc(theme.slug)}</b>.")
    _check_rule_text(call, rule)
    if sub == "test":
        dry_run = call.services.dry_run
        if dry_run is None:
            raise RefusedError("Dry runs are not available yet.")
        result = await dry_run(call.session, theme.slug, rule, call.now, DRY_RUN_DAYS, 5)
        return Reply(replies.dry_run_reply(theme.slug, rule, result, DRY_RUN_DAYS))
    existing = await call.session.scalar(
        select(ThemeRule).where(ThemeRule.theme_id == theme.id, ThemeRule.rule == rule)
    )
    if existing is not None and existing.enabled:
        return Reply(f"<code>{esc(rule)}</code> is already on the {esc(theme.slug)} watchlist.")
    if existing is not None:
        existing.enabled, existing.origin = True, ORIGIN_CHAT
        existing.created_by = call.user.id if call.user else None
    else:
        call.session.add(
            ThemeRule(
                theme_id=theme.id,
                rule=rule,
                origin=ORIGIN_CHAT,
                enabled=True,
                created_by=call.user.id if call.user else None,
                created_at=call.now,
            )
        )
    theme.updated_at = call.now
    await call.session.flush()
    await call.audit(
        "watch.add",
        "theme_rule",
        f"{theme.slug}:{rule}",
        {"rule": rule, "enabled": False} if existing is not None else None,
        {"rule": rule, "enabled": True, "origin": ORIGIN_CHAT},
    )
    return Reply(f"Added <code>{esc(rule)}</code> to <b>{esc(theme.slug)}</b>.")


def _theme_state(theme: Theme) -> dict[str, Any]:
    return {
        "title": theme.title,
        "priority": theme.priority,
        "enabled": theme.enabled,
        "origin": theme.origin,
    }


async def cmd_theme(call: Call) -> Reply:
    sub, slug, rest = split_rest(call.rest, 3)
    sub, slug, rest = sub.lower(), slug.lower(), rest.strip()
    if sub not in {"add", "remove", "priority"}:
        raise UsageError("Choose add, remove or priority.")
    if not slug:
        raise UsageError("Name a theme.")
    if sub == "add":
        if not SLUG_RE.match(slug):
            msg = f"<code>{esc(slug[:60])}</code> is not a slug (1-48 of a-z, 0-9 and -)."
            raise UsageError(msg)
        if not rest:
            raise UsageError("Give the theme a title.")
        if len(rest) > MAX_TITLE:
            msg = f"That title is too long ({len(rest)} characters; at most {MAX_TITLE})."
            raise UsageError(msg)
        theme = await call.session.scalar(select(Theme).where(Theme.slug == slug))
        if theme is not None and theme.enabled:
            raise UsageError(f"The theme <code>{esc(slug)}</code> already exists.")
        before = _theme_state(theme) if theme is not None else None
        if theme is None:
            theme = Theme(slug=slug, title=rest, origin=ORIGIN_CHAT, created_at=call.now)
            call.session.add(theme)
        theme.title, theme.enabled, theme.origin, theme.updated_at = (
            rest,
            True,
            ORIGIN_CHAT,
            call.now,
        )
        theme.priority = theme.priority or "instant"
        await call.session.flush()
        await call.audit("theme.add", "theme", slug, before, _theme_state(theme))
        return Reply(
            f"Theme <b>{esc(rest)}</b> (<code>{esc(slug)}</code>) added; "
            f"add terms with /watch add {esc(slug)} &lt;term&gt;."
        )
    theme = await theme_or_error(call.session, slug)
    before = _theme_state(theme)
    if sub == "remove":
        if rest:
            raise UsageError("/theme remove takes only the slug.")
        theme.enabled, theme.origin, theme.updated_at = False, ORIGIN_CHAT, call.now
        await call.audit("theme.remove", "theme", slug, before, _theme_state(theme))
        return Reply(f"Theme <b>{esc(theme.title)}</b> removed (its items and history are kept).")
    if rest not in PRIORITIES:
        raise UsageError(f"<code>{esc(rest[:20])}</code> is not instant or digest.")
    theme.priority, theme.origin, theme.updated_at = rest, ORIGIN_CHAT, call.now
    await call.audit("theme.priority", "theme", slug, before, _theme_state(theme))
    return Reply(f"<b>{esc(theme.title)}</b> is now {esc(rest)}.")


# ---------------------------------------------------------------- admins


async def default_resolver(host: str) -> list[str]:
    """The addresses ``host`` resolves to (empty when it does not resolve within 3 s)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout=3
        )
    except (OSError, TimeoutError):
        return []
    return sorted({str(info[4][0]) for info in infos})


async def url_problem(url: str, *, allow_private: bool, resolver: Resolver) -> str | None:
    """Why a chat user may not add ``url`` as a source, or None."""
    problem = check_http_url(url)
    if problem:
        return problem
    host = urlsplit(url).hostname or ""
    if allow_private:
        return None
    problem = host_problem(host)
    if problem:
        return problem
    if not is_ip_literal(host):
        for address in await resolver(host):
            problem = address_problem(address)
            if problem:
                return f"{host} resolves to {problem}"
    return None


def default_source_name(url: str) -> str:
    host = (urlsplit(url).hostname or "source").lower()
    name = re.sub(r"[^a-z0-9_.-]+", "-", host.removeprefix("www.")).strip("-._")
    return (name or "source")[:56]


async def cmd_source(call: Call) -> Reply:
    args = call.args
    sub = args[0].lower() if args else ""
    if sub == "list" and len(args) == 1:
        return Reply(
            replies.sources_reply(await queries.source_health(call.session), detailed=True)
        )
    if sub == "add" and len(args) in (3, 4):
        return await _source_add(call, args[1], args[2], args[3] if len(args) == 4 else None)
    if sub in {"pause", "resume"} and len(args) == 2:
        source = await source_or_error(call.session, args[1])
        before = {"enabled": source.enabled, "origin": source.origin}
        source.enabled = sub == "resume"
        source.origin = ORIGIN_CHAT  # a chat edit: re-seeding leaves it alone
        source.updated_at = call.now
        if source.enabled:
            source.next_check_at = call.now
        await call.audit(
            f"source.{sub}",
            "source",
            source.name,
            before,
            {"enabled": source.enabled, "origin": ORIGIN_CHAT},
        )
        return Reply(
            f"Source <b>{esc(source.name)}</b> {'resumed' if source.enabled else 'paused'}."
        )
    raise UsageError("Choose list, add, pause or resume, with their arguments.")


async def _source_add(call: Call, kind: str, url: str, name: str | None) -> Reply:
    kinds = source_kinds()
    if kind not in kinds:
        msg = f"Unknown kind <code>{esc(kind[:32])}</code>. Kinds: {esc(', '.join(kinds))}."
        raise UsageError(msg)
    if len(url) > 2000:
        raise UsageError("That URL is too long (at most 2,000 characters).")
    resolver: Resolver = call.extra.get("resolver") or default_resolver
    problem = await url_problem(
        url, allow_private=call.services.settings.allow_private_sources, resolver=resolver
    )
    if problem:
        raise UsageError(f"That URL is refused: {esc(problem)}.")
    if name is None:
        base = default_source_name(url)
        name = base
        taken = set(
            (
                await call.session.scalars(select(Source.name).where(Source.name.like(f"{base}%")))
            ).all()
        )
        suffix = 2
        while name in taken:
            name = f"{base}-{suffix}"
            suffix += 1
    elif not NAME_RE.match(name):
        msg = f"<code>{esc(name[:70])}</code> is not a source name (1-64 of a-z 0-9 _ . -)."
        raise UsageError(msg)
    if await call.session.scalar(select(Source.id).where(Source.name == name)) is not None:
        raise UsageError(f"A source named <code>{esc(name)}</code> already exists.")
    call.session.add(
        Source(
            name=name,
            kind=kind,
            url=url,
            options={},
            enabled=True,
            interval_seconds=DEFAULT_SOURCE_INTERVAL,
            origin=ORIGIN_CHAT,
            next_check_at=call.now,
            created_at=call.now,
            updated_at=call.now,
        )
    )
    await call.session.flush()
    await call.audit(
        "source.add", "source", name, None, {"kind": kind, "url": url, "enabled": True}
    )
    return Reply(
        f"Source <b>{esc(name)}</b> added ({esc(kind)}); it will be polled now and every "
        f"{DEFAULT_SOURCE_INTERVAL // 60} minutes."
    )


async def cmd_admin(call: Call) -> Reply:
    args = [a.lower() for a in call.args]
    if not args or args[0] not in {"grant", "revoke"}:
        raise UsageError("Choose grant or revoke.")
    if len(args) < 2 or not args[1].isdigit() or len(args[1]) > 15:
        raise UsageError("Give a numeric Telegram user id.")
    user_id = int(args[1])
    if args[0] == "grant":
        if len(args) != 3 or args[2] != EDITOR:
            raise UsageError("Only the editor role can be granted.")
        row = await call.session.scalar(select(Subscriber).where(Subscriber.chat_id == user_id))
        if row is None:
            row = Subscriber(
                chat_id=user_id,
                chat_type=Chat.PRIVATE,
                user_id=user_id,
                role=EDITOR,
                active=False,
                deactivated_reason="has not started the bot yet",
                created_at=call.now,
                updated_at=call.now,
            )
            call.session.add(row)
            before = None
        else:
            before = {"role": row.role}
            row.role, row.updated_at = EDITOR, call.now
        await call.session.flush()
        await call.audit("role.grant", "subscriber", str(user_id), before, {"role": EDITOR})
        return Reply(f"User {user_id} is now an editor.")
    if len(args) != 2:
        raise UsageError("/admin revoke takes only the user id.")
    row = await call.session.scalar(select(Subscriber).where(Subscriber.chat_id == user_id))
    if row is None or row.role == "subscriber":
        return Reply(f"User {user_id} is not an editor.")
    before = {"role": row.role}
    row.role, row.updated_at = "subscriber", call.now
    await call.audit("role.revoke", "subscriber", str(user_id), before, {"role": "subscriber"})
    return Reply(f"User {user_id} is no longer an editor.")


async def cmd_stats(call: Call) -> Reply:
    return Reply(replies.stats_reply(await queries.stats(call.session, call.now)))


async def cmd_broadcast(call: Call) -> Reply:
    text = call.rest
    if not text:
        raise UsageError("What should I send?")
    if len(text) > MAX_BROADCAST_TEXT:
        msg = f"That message is too long ({len(text)} characters; at most {MAX_BROADCAST_TEXT})."
        raise UsageError(msg)
    # The message identity makes a repeat impossible even if Telegram redelivers the update.
    key = f"broadcast:{call.chat.id}:{call.message.message_id}"
    ids = await enqueue_broadcast(call.session, f"📢 {esc(text)}", key, call.now)
    await call.audit("broadcast", "broadcast", key, None, {"text": text, "recipients": len(ids)})
    return Reply(f"Broadcast queued for {len(ids)} chats.")


HANDLERS: dict[str, Callable[[Call], Awaitable[Reply]]] = {
    "start": cmd_start,
    "help": cmd_help,
    "themes": cmd_themes,
    "subscribe": cmd_subscribe,
    "unsubscribe": cmd_unsubscribe,
    "latest": cmd_latest,
    "policy": cmd_policy,
    "search": cmd_search,
    "upcoming": cmd_upcoming,
    "digest": cmd_digest,
    "timezone": cmd_timezone,
    "mute": cmd_mute,
    "settings": cmd_settings,
    "sources": cmd_sources,
    "watch": cmd_watch,
    "theme": cmd_theme,
    "source": cmd_source,
    "admin": cmd_admin,
    "stats": cmd_stats,
    "broadcast": cmd_broadcast,
}


# ---------------------------------------------------------------- PTB glue


def _rest_of(message: Message) -> str:
    text = message.text or ""
    parts = text.split(maxsplit=1)
    return parts[1].strip() if len(parts) == 2 else ""


async def send_reply(message: Message, reply: Reply) -> None:
    for index, text in enumerate((reply.text, *reply.more)):
        await message.reply_text(
            text,
            parse_mode=ParseMode.HTML,
            reply_markup=reply.markup if index == 0 else None,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            do_quote=False,
        )


def make_command_callback(
    services: Services, cmd: Command, extra: dict[str, Any] | None = None
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]:
    fn = HANDLERS[cmd.name]

    async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        user = update.effective_user
        limit = MAX_BROADCAST_TEXT + 100 if cmd.name == "broadcast" else MAX_COMMAND_TEXT
        if len(message.text or "") > limit:
            await send_reply(
                message,
                Reply(f"That message is too long for /{cmd.name} (at most {limit} characters)."),
            )
            return
        now = services.clock()
        try:
            async with services.sessions.begin() as session:
                if cmd.access != EVERYONE:
                    role = await role_of(services, session, user)
                    if not allowed(role, cmd.access):
                        who = "admins" if cmd.access == ADMIN else "editors and admins"
                        raise RefusedError(f"Sorry, /{cmd.name} is only for {who}.")
                call = Call(
                    services=services,
                    session=session,
                    now=now,
                    chat=chat,
                    user=user,
                    message=message,
                    rest=_rest_of(message),
                    extra=dict(extra or {}),
                )
                reply = await fn(call)
        except UsageError as exc:
            reply = Reply(f"{exc}\nUsage: <code>{esc(cmd.usage)}</code>")
        except RefusedError as exc:
            reply = Reply(str(exc))
        await send_reply(message, reply)

    return callback


async def on_callback(services: Services, update: Update) -> None:
    query = update.callback_query
    if query is None:
        return
    match = _CALLBACK_RE.match(query.data or "")
    message = query.message
    chat = message.chat if message is not None else None
    if match is None or chat is None:
        await query.answer("This button is no longer valid.")
        return
    action, slug = match.groups()
    now = services.clock()
    markup: InlineKeyboardMarkup | None = None
    async with services.sessions.begin() as session:
        sub = await ensure_subscriber(session, chat, query.from_user, now)
        theme = await session.scalar(select(Theme).where(Theme.slug == slug))
        if theme is None or not theme.enabled:
            answer = f"The theme {slug} no longer exists."
        elif action == "sub":
            await subscribe(session, sub, theme, now)
            answer = f"You now follow {theme.title}."
        elif action == "unsub":
            await unsubscribe(session, sub, theme)
            answer = f"You no longer follow {theme.title}."
        else:
            row = await session.scalar(
                select(Subscription).where(
                    Subscription.subscriber_id == sub.id, Subscription.theme_id == theme.id
                )
            )
            if row is None:
                answer = f"You do not follow {theme.title}."
            else:
                row.mode = "digest"
                answer = f"{theme.title} now goes to your digest" + (
                    "." if sub.digest_mode != "off" else " (turn it on with /digest daily 08:00)."
                )
        if action in {"sub", "unsub"}:
            markup = await theme_keyboard(session, sub.id)
    await query.answer(answer[:200])
    if markup is not None and isinstance(message, Message):
        try:
            await message.edit_reply_markup(reply_markup=markup)
        except BadRequest as exc:  # "message is not modified" and the like
            log.info("keyboard not updated", error=str(exc))


async def on_my_chat_member(services: Services, update: Update) -> None:
    change: ChatMemberUpdated | None = update.my_chat_member
    if change is None:
        return
    status = change.new_chat_member.status
    now = services.clock()
    async with services.sessions.begin() as session:
        row = await session.scalar(select(Subscriber).where(Subscriber.chat_id == change.chat.id))
        if status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
            if row is not None and row.active:
                reason = (
                    "blocked the bot" if change.chat.type == Chat.PRIVATE else "removed the bot"
                )
                await SubscriberRepository(session).deactivate(row.id, reason, now)
        elif status in (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR):
            await ensure_subscriber(session, change.chat, change.from_user, now)


async def on_error(services: Services, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log first, then tell the admins (through the outbox) and the user."""
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    log.error(
        "handler failed",
        update_id=update_id,
        exc_info=(type(error), error, error.__traceback__) if error else None,
    )
    detail = f"{type(error).__name__}: {error}" if error else "unknown error"
    text = f"⚠️ A bot handler failed (update {update_id}):\n<code>{esc(detail[:1000])}</code>"
    key = f"error:{update_id}" if update_id is not None else f"error:{services.clock().isoformat()}"
    try:
        async with services.sessions.begin() as session:
            await notify_admins(session, services.settings, text, key, services.clock())
    except Exception:
        log.exception("could not queue the error notice")
    if isinstance(update, Update) and update.effective_message is not None:
        try:
            await update.effective_message.reply_text(
                "Sorry, something went wrong; the admins have been told."
            )
        except Exception:
            log.exception("could not tell the user about the error")


def add_handlers(
    application: Application[Any, Any, Any, Any, Any, Any],
    services: Services,
    *,
    resolver: Resolver | None = None,
) -> None:
    """Register every command, the buttons, membership changes and the error handler."""
    extra = {"resolver": resolver} if resolver is not None else None
    message_filter = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST
    for cmd in COMMANDS:
        application.add_handler(
            CommandHandler(
                cmd.name, make_command_callback(services, cmd, extra), filters=message_filter
            )
        )

    async def callback_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await on_callback(services, update)

    async def my_chat_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await on_my_chat_member(services, update)

    async def error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        await on_error(services, update, context)

    application.add_handler(CallbackQueryHandler(callback_query))
    application.add_handler(ChatMemberHandler(my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_error_handler(error)


__all__ = ["COMMANDS", "add_handlers", "command"]
