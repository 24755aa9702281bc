"""What every command handler shares: the call (who, where, the arguments, the open unit of
work), the reply, the two ways to refuse, and the lookups that answer bad input with choices."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import structlog
from telegram import Chat, InlineKeyboardMarkup, Message, User
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

from bot.commands import ADMIN, EDITOR, EVERYONE
from bot.context import BotContext
from delivery.telegram_html import esc
from models.db import UnitOfWork
from models.views import EventView, ItemRow, SourceView, SubscriberView, ThemeView

log = structlog.get_logger(__name__)


def forum_topic(message: object) -> int | None:
    """The forum topic ``message`` is in (its ``message_thread_id``); None for the chat itself:
    no forum, or a forum's General topic, whose messages may carry a thread id that is no topic
    (a reply chain's) and that sending to fails with "message thread not found"."""
    if isinstance(message, Message) and message.is_topic_message and message.message_thread_id:
        return message.message_thread_id
    return None


GROUP_ADMINS_ONLY = (
    "In a group, only the group's admins can change what this chat follows and its settings."
)


class UsageError(Exception):
    """Bad input: the message is shown to the user with the command's usage."""


class RefusedError(Exception):
    """The user may not do this: the message is shown as is."""


@dataclass(frozen=True, slots=True)
class Document:
    """A file sent with a reply (``/upcoming``'s calendar)."""

    filename: str
    data: bytes
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    markup: InlineKeyboardMarkup | None = None
    more: tuple[str, ...] = ()  # follow-up messages, sent in order after ``text``
    documents: tuple[Document, ...] = ()  # files sent after the messages


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AfterFetch(Generic[T]):
    """A command's answer that needs the network first (``/source add`` tries the URL): the
    command's transaction ends, ``fetch`` runs with none open (no pooled connection waits idle
    in a transaction while a site answers, for up to its timeout), then ``finish`` runs in a
    new transaction with what it returned. ``finish`` checks again what the first step read:
    anything may have changed meanwhile."""

    fetch: Callable[[], Awaitable[T]]
    finish: Callable[[Call, T], Awaitable[Reply]]

    async def fetched(self) -> Callable[[Call], Awaitable[Reply]]:
        """Runs ``fetch``; what is left is the step to run in the next transaction."""
        value = await self.fetch()

        async def finish(call: Call) -> Reply:
            return await self.finish(call, value)

        return finish


@dataclass(slots=True)
class Call:
    """One command invocation: who, where, the argument text, and the open transaction."""

    ctx: BotContext
    uow: UnitOfWork
    now: datetime
    chat: Chat
    user: User | None
    message: Message
    rest: str  # the text after the command, stripped

    @property
    def args(self) -> list[str]:
        return self.rest.split()

    @property
    def private(self) -> bool:
        return self.chat.type == Chat.PRIVATE

    def say(self, you: str, this_chat: str) -> str:
        """``you`` in a private chat, ``this_chat`` in a group or channel (whose settings are
        the chat's, not the member's who asked)."""
        return you if self.private else this_chat

    async def require_chat_admin(self) -> None:
        """In a group, only its admins change its subscriptions and settings."""
        if not await may_change_chat(self.ctx, self.chat, self.user, self.message):
            raise RefusedError(GROUP_ADMINS_ONLY)

    async def subscriber(self) -> SubscriberView:
        """The chat's subscriber, registered on first use."""
        return await ensure_subscriber(self.uow, self.chat, self.user, self.now)

    async def zone(self) -> str:
        """The chat's time zone (UTC until it sets one)."""
        row = await self.uow.subscribers.get_by_chat(self.chat.id)
        return row.timezone if row is not None else "UTC"

    async def audit(
        self,
        action: str,
        entity_type: str,
        entity_key: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        await self.uow.audit.record(
            now=self.now,
            action=action,
            entity_type=entity_type,
            entity_key=entity_key,
            actor_user_id=self.user.id if self.user else None,
            actor_chat_id=self.chat.id,
            before=before,
            after=after,
        )


async def ensure_subscriber(
    uow: UnitOfWork, chat: Chat, user: User | None, now: datetime
) -> SubscriberView:
    """The chat's subscriber row, registering (or re-activating) it on first use."""
    title = chat.title or chat.username or chat.first_name
    return await uow.subscribers.ensure(
        chat_id=chat.id,
        chat_type=chat.type,
        user_id=user.id if user and chat.type == Chat.PRIVATE else None,
        title=title,
        now=now,
    )


async def may_change_chat(
    ctx: BotContext, chat: Chat, user: User | None, message: Message | None = None
) -> bool:
    """Whether ``user`` may change ``chat``'s subscriptions and settings: anyone in a private
    chat; in a group its admins (an anonymous admin posts as the group itself) and
    PolicyWatch's admins; in a channel whoever posts (only its admins can)."""
    if chat.type == Chat.PRIVATE or chat.type == Chat.CHANNEL:
        return True
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.id == chat.id
    if user is None:
        return False
    if user.id in ctx.config.admin_ids:
        return True
    try:
        member = await chat.get_member(user.id)
    except TelegramError as exc:  # the bot may not see members: refuse rather than guess
        log.warning("could not check a group member", chat_id=chat.id, error=str(exc))
        return False
    return member.status in (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)


async def role_of(ctx: BotContext, uow: UnitOfWork, user: User | None) -> str:
    """``admin`` (from settings), ``editor`` (granted in chat) or ``subscriber``."""
    if user is None:
        return "subscriber"
    if user.id in ctx.config.admin_ids:
        return ADMIN
    return await uow.subscribers.role_of(user.id)


def allowed(role: str, access: str) -> bool:
    if access == EVERYONE:
        return True
    if access == EDITOR:
        return role in (EDITOR, ADMIN)
    return role == ADMIN


def split_rest(rest: str, parts: int) -> list[str]:
    """Split off ``parts - 1`` leading words; the last element is the remaining text."""
    pieces = rest.split(maxsplit=parts - 1)
    return pieces + [""] * (parts - len(pieces))


async def theme_or_error(uow: UnitOfWork, slug: str, *, enabled_only: bool = True) -> ThemeView:
    theme = await uow.themes.get(slug)
    if theme is None or (enabled_only and not theme.enabled):
        choices = ", ".join(t.slug for t in await uow.themes.enabled()) or "none yet"
        msg = f"Unknown theme <code>{esc(slug[:60])}</code>. Themes: {esc(choices)}."
        raise UsageError(msg)
    return theme


async def source_or_error(uow: UnitOfWork, name: str) -> SourceView:
    source = await uow.sources.get(name)
    if source is None:
        known = ", ".join(s.name for s in await uow.sources.all()) or "none"
        msg = f"Unknown source <code>{esc(name[:70])}</code>. Sources: {esc(known)}."
        raise UsageError(msg)
    return source


EVENT_ROWS = 4  # items read per event shown: the newest items of one event crowd the list


async def by_event(
    uow: UnitOfWork, rows: Sequence[ItemRow], limit: int
) -> list[tuple[ItemRow, EventView | None]]:
    """The first ``limit`` events among ``rows`` (newest first), each shown by its newest
    item here, with the event's members for its other sources."""
    events = await uow.events.of_items([r.id for r in rows])
    chosen: list[tuple[ItemRow, int | None]] = []
    seen: set[int] = set()
    for row in rows:
        event = events.get(row.id)
        if event is not None:
            if event in seen:
                continue
            seen.add(event)
        chosen.append((row, event))
        if len(chosen) == limit:
            break
    views = await uow.events.views([e for _, e in chosen if e is not None])
    return [(row, views.get(e) if e is not None else None) for row, e in chosen]


BIGINT_MAX = 2**63 - 1  # a BIGINT column: ids of items, events, Telegram users
INTEGER_MAX = 2**31 - 1  # an INTEGER column: a model's version
_MAX_DIGITS = 20  # more than any of them has


def number_in(text: str, maximum: int = BIGINT_MAX) -> int | None:
    """``text`` as a whole number from 0 to ``maximum``, else None. Every number a command
    takes is read here: ASCII digits only (``str.isdigit`` passes "²", which ``int`` refuses)
    and no more than ``maximum`` (the database column's range, which a query would overflow),
    so a number typed wrong is a usage error, never a failed handler."""
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS:
        return None
    number = int(text)
    return number if number <= maximum else None


def parse_number(text: str, what: str, maximum: int = BIGINT_MAX) -> int:
    """A whole number from 0 to ``maximum`` (an id); anything else is a usage error saying
    ``text`` is not ``what``."""
    number = number_in(text, maximum)
    if number is None:
        raise UsageError(f"<code>{esc(text[:20])}</code> is not {what}.")
    return number


def parse_count(text: str, maximum: int) -> int:
    """A count from 1 to ``maximum``; anything else is a usage error."""
    number = number_in(text, maximum)
    if number is None or number < 1:
        msg = f"<code>{esc(text[:20])}</code> is not a number from 1 to {maximum}."
        raise UsageError(msg)
    return number
