"""What every command handler shares: the call (who, where, the arguments, the open unit of
work), the reply, the two ways to refuse, and the lookups that answer bad input with choices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram import Chat, InlineKeyboardMarkup, Message, User

from bot.commands import ADMIN, EDITOR, EVERYONE
from bot.context import BotContext
from delivery.telegram_html import esc
from models.db import UnitOfWork
from models.views import SourceView, SubscriberView, ThemeView


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


def parse_count(text: str, maximum: int) -> int:
    """A count from 1 to ``maximum``; anything else is a usage error."""
    if not text.isdigit() or len(text) > 6 or not 1 <= int(text) <= maximum:
        msg = f"<code>{esc(text[:20])}</code> is not a number from 1 to {maximum}."
        raise UsageError(msg)
    return int(text)
