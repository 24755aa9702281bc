"""Inline buttons (subscribe, unsubscribe, mute to digest; feedback in ``feedback``), the
bot's own membership changes (blocked in a private chat, removed from a group, added back) and
a group's upgrade to a supergroup (a new chat id)."""

from __future__ import annotations

import re

import structlog
from telegram import (
    Chat,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus
from telegram.error import BadRequest

from bot.context import BotContext
from bot.handlers.base import (
    GROUP_ADMINS_ONLY,
    ensure_subscriber,
    forum_topic,
    may_change_chat,
)
from bot.handlers.feedback import on_feedback
from models.db import UnitOfWork

log = structlog.get_logger(__name__)

_CALLBACK_RE = re.compile(r"^(sub|unsub|mute):([a-z0-9][a-z0-9-]{0,47})$")
_PICKER_RE = re.compile(r"^(sub|unsub):")  # the buttons of ``theme_keyboard``
MAX_BUTTON_LABEL = 64


async def theme_keyboard(uow: UnitOfWork, subscriber_id: int) -> InlineKeyboardMarkup | None:
    """A button per enabled theme: ✅ to stop following it, ➕ to follow it."""
    themes = await uow.themes.enabled()
    if not themes:
        return None
    subscribed = await uow.subscribers.subscribed_theme_ids(subscriber_id)
    rows = []
    for theme in themes:
        on = theme.id in subscribed
        label = f"{'✅' if on else '➕'} {theme.title}"[:MAX_BUTTON_LABEL]
        data = f"{'unsub' if on else 'sub'}:{theme.slug}"
        rows.append([InlineKeyboardButton(label, callback_data=data)])
    return InlineKeyboardMarkup(rows)


def is_theme_keyboard(markup: InlineKeyboardMarkup | None) -> bool:
    """Whether ``markup`` is a ``theme_keyboard`` (of /start or /subscribe): follow and stop
    buttons only. An alert's Unsubscribe sits beside its Mute and feedback buttons, which
    redrawing the pressed message's keyboard as a theme picker would take away."""
    buttons = [button for row in markup.inline_keyboard for button in row] if markup else []
    return bool(buttons) and all(
        isinstance(b.callback_data, str) and _PICKER_RE.match(b.callback_data) for b in buttons
    )


async def on_callback(ctx: BotContext, update: Update) -> None:
    query = update.callback_query
    if query is None:
        return
    if (query.data or "").startswith("fb:"):
        await on_feedback(ctx, update)
        return
    match = _CALLBACK_RE.match(query.data or "")
    message = query.message
    chat = message.chat if message is not None else None
    if match is None or chat is None:
        await query.answer("This button is no longer valid.")
        return
    action, slug = match.groups()
    now = ctx.clock()
    markup: InlineKeyboardMarkup | None = None
    if not await may_change_chat(ctx, chat, query.from_user):
        await query.answer(GROUP_ADMINS_ONLY[:200])
        return
    async with ctx.db.transaction() as uow:
        sub = await ensure_subscriber(uow, chat, query.from_user, now)
        theme = await uow.themes.get(slug)
        if theme is None or not theme.enabled:
            answer = f"The theme {slug} no longer exists."
        elif action == "sub":
            topic = forum_topic(message)
            await uow.subscribers.subscribe(sub.id, theme.id, theme.priority, now, topic_id=topic)
            answer = f"You now follow {theme.title}" + (" in this topic." if topic else ".")
            if theme.priority == "digest" and sub.digest_mode == "off":
                answer += " It goes to the digest, which is off: /digest daily 08:00."
        elif action == "unsub":
            await uow.subscribers.unsubscribe(sub.id, theme.id, now)
            answer = f"You no longer follow {theme.title}."
        elif not await uow.subscribers.set_mode(sub.id, theme.id, "digest"):
            answer = f"You do not follow {theme.title}."
        else:
            answer = f"{theme.title} now goes to your digest" + (
                "." if sub.digest_mode != "off" else " (turn it on with /digest daily 08:00)."
            )
        pressed = message.reply_markup if isinstance(message, Message) else None
        if action in {"sub", "unsub"} and is_theme_keyboard(pressed):  # its ✅/➕ change
            markup = await theme_keyboard(uow, sub.id)
    await query.answer(answer[:200])
    if markup is not None and isinstance(message, Message):
        try:
            await message.edit_reply_markup(reply_markup=markup)
        except BadRequest as exc:  # "message is not modified" and the like
            log.info("keyboard not updated", error=str(exc))


async def on_my_chat_member(ctx: BotContext, update: Update) -> None:
    change: ChatMemberUpdated | None = update.my_chat_member
    if change is None:
        return
    status = change.new_chat_member.status
    now = ctx.clock()
    async with ctx.db.transaction() as uow:
        if status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
            row = await uow.subscribers.get_by_chat(change.chat.id)
            if row is not None and row.active:
                reason = (
                    "blocked the bot" if change.chat.type == Chat.PRIVATE else "removed the bot"
                )
                await uow.subscribers.deactivate(row.id, reason, now)
        elif status in (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR):
            await ensure_subscriber(uow, change.chat, change.from_user, now)


async def on_migration(ctx: BotContext, update: Update) -> None:
    """A group became a supergroup (topics turned on, made public…), which has a new chat id:
    Telegram says so in the group (``migrate_to_chat_id``) and in the supergroup
    (``migrate_from_chat_id``), in either order. The chat's subscriber moves to the new id with
    its subscriptions, settings and pending messages (``SubscriberRepository.migrate_chat``),
    merged with one registered there meanwhile; the second message finds nothing left to move."""
    message = update.effective_message
    if message is None:
        return
    if message.migrate_to_chat_id:
        old, new = message.chat.id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id:
        old, new = message.migrate_from_chat_id, message.chat.id
    else:
        return
    # The two messages come from two chats, handled concurrently: one writer at a time.
    async with ctx.db.transaction(serialized=True) as uow:
        row = await uow.subscribers.get_by_chat(old)
        if row is None:
            return  # never registered, or already moved
        await uow.subscribers.migrate_chat(row.id, new, ctx.clock())
    log.info("group became a supergroup: subscriber moved", old=old, new=new, subscriber=row.id)
