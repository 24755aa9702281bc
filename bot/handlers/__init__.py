"""The bot's handlers, by audience: ``subscriber`` (everyone), ``events`` (everyone; editors fix
groupings), ``watchlists`` (editors), ``admin`` (admins) and ``buttons`` (inline buttons,
membership changes and a group's move to a supergroup); this module wires them into PTB.

Each command is a function ``(Call) -> Reply`` run inside one database transaction; a
``UsageError`` rolls the transaction back and answers with the message and the command's usage,
so bad input never changes anything. A command that must wait on the network answers
``AfterFetch``: the fetch runs between two transactions, never inside one. Replies go straight
back through PTB; broadcasts and admin notices go through the outbox (``delivery.notices``).
Every administrative edit writes ``audit_log``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog
from telegram import LinkPreviewOptions, Message, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.commands import ADMIN, COMMANDS, EVERYONE, Command
from bot.context import BotContext
from bot.handlers import admin, entities, events, subscriber, watchlists
from bot.handlers.base import (
    AfterFetch,
    Call,
    RefusedError,
    Reply,
    UsageError,
    allowed,
    role_of,
)
from bot.handlers.buttons import on_callback, on_migration, on_my_chat_member
from delivery.notices import notify_admins
from delivery.telegram_html import esc

log = structlog.get_logger(__name__)

MAX_COMMAND_TEXT = 1000  # a whole command message, except /broadcast

Answer = Reply | AfterFetch[Any]

HANDLERS: dict[str, Callable[[Call], Awaitable[Answer]]] = {
    "start": subscriber.cmd_start,
    "help": subscriber.cmd_help,
    "themes": subscriber.cmd_themes,
    "subscribe": subscriber.cmd_subscribe,
    "unsubscribe": subscriber.cmd_unsubscribe,
    "latest": subscriber.cmd_latest,
    "export": subscriber.cmd_export,
    "policy": subscriber.cmd_policy,
    "search": subscriber.cmd_search,
    "upcoming": subscriber.cmd_upcoming,
    "digest": subscriber.cmd_digest,
    "timezone": subscriber.cmd_timezone,
    "mute": subscriber.cmd_mute,
    "quiet": subscriber.cmd_quiet,
    "alerts": subscriber.cmd_alerts,
    "settings": subscriber.cmd_settings,
    "sources": subscriber.cmd_sources,
    "event": events.cmd_event,
    "entity": entities.cmd_entity,
    "names": entities.cmd_names,
    "watch": watchlists.cmd_watch,
    "theme": watchlists.cmd_theme,
    "source": admin.cmd_source,
    "admin": admin.cmd_admin,
    "stats": admin.cmd_stats,
    "broadcast": admin.cmd_broadcast,
}


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
    for document in reply.documents:
        await message.reply_document(
            document.data,
            filename=document.filename,
            caption=document.caption or None,
            parse_mode=ParseMode.HTML,
            do_quote=False,
        )


def unknown_command_reply(text: str) -> str:
    name = text.split(maxsplit=1)[0].split("@", 1)[0] if text.strip() else "that"
    return f"I do not know <code>{esc(name[:40])}</code>. /help lists every command."


def make_command_callback(
    ctx: BotContext, cmd: Command
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]:
    fn = HANDLERS[cmd.name]

    async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        user = update.effective_user
        limit = admin.MAX_BROADCAST_TEXT + 100 if cmd.name == "broadcast" else MAX_COMMAND_TEXT
        if len(message.text or "") > limit:
            await send_reply(
                message,
                Reply(f"That message is too long for /{cmd.name} (at most {limit} characters)."),
            )
            return
        now = ctx.clock()

        async def step(run: Callable[[Call], Awaitable[Answer]]) -> Answer:
            async with ctx.db.transaction() as uow:
                if cmd.access != EVERYONE:
                    role = await role_of(ctx, uow, user)
                    if not allowed(role, cmd.access):
                        who = "admins" if cmd.access == ADMIN else "editors and admins"
                        raise RefusedError(f"Sorry, /{cmd.name} is only for {who}.")
                call = Call(
                    ctx=ctx,
                    uow=uow,
                    now=now,
                    chat=chat,
                    user=user,
                    message=message,
                    rest=_rest_of(message),
                )
                return await run(call)

        try:
            answer = await step(fn)
            while isinstance(answer, AfterFetch):
                # no transaction is open while the network answers
                answer = await step(await answer.fetched())
            reply = answer
        except UsageError as exc:
            reply = Reply(f"{exc}\nUsage: <code>{esc(cmd.usage)}</code>")
        except RefusedError as exc:
            reply = Reply(str(exc))
        await send_reply(message, reply)

    return callback


async def on_error(ctx: BotContext, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
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
    key = f"error:{update_id}" if update_id is not None else f"error:{ctx.clock().isoformat()}"
    try:
        async with ctx.db.transaction() as uow:
            await notify_admins(uow, ctx.config.admin_ids, text, key, ctx.clock())
    except Exception:
        log.exception("could not queue the error notice")
    if isinstance(update, Update) and update.effective_message is not None:
        try:
            await update.effective_message.reply_text(
                "Sorry, something went wrong; the admins have been told."
            )
        except Exception:
            log.exception("could not tell the user about the error")


def add_handlers(application: Application[Any, Any, Any, Any, Any, Any], ctx: BotContext) -> None:
    """Register every command, the buttons, membership changes and the error handler."""
    message_filter = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST
    for cmd in COMMANDS:
        application.add_handler(
            CommandHandler(cmd.name, make_command_callback(ctx, cmd), filters=message_filter)
        )

    async def callback_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await on_callback(ctx, update)

    async def my_chat_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await on_my_chat_member(ctx, update)

    async def migration(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await on_migration(ctx, update)

    async def error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        await on_error(ctx, update, context)

    async def unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None:
            await send_reply(message, Reply(unknown_command_reply(message.text or "")))

    # After every known command: in a private chat, a typo gets a hint (in groups, commands
    # may be meant for other bots, so they are left alone).
    application.add_handler(
        MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE & message_filter, unknown)
    )
    application.add_handler(CallbackQueryHandler(callback_query))
    application.add_handler(ChatMemberHandler(my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, migration))
    application.add_error_handler(error)
