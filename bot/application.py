"""The Telegram side of ``policywatch run``: the PTB Application and its manual lifecycle.

``build_application`` builds PTB from the bot's context (token, ``TELEGRAM_API_BASE_URL``) and
registers the handlers; updates are handled concurrently across chats, in order within a chat,
and a chat over its allowance has the excess dropped with one notice (``bot.throttle``).
``run_bot`` initializes it, retrying with capped exponential backoff while
Telegram is unreachable (the scheduler ticks run meanwhile, on the same loop), registers the
command list, long-polls, and on ``stop`` shuts everything down in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from telegram import BotCommand, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Defaults

from bot.commands import COMMANDS
from bot.context import BotContext
from bot.handlers import add_handlers
from bot.throttle import ChatThrottle, ChatUpdateProcessor
from models.schedule import backoff_delay

log = structlog.get_logger(__name__)

ALLOWED_UPDATES = ["message", "channel_post", "callback_query", "my_chat_member"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """How the bot's start retries while Telegram is unreachable: ``initial`` seconds, doubling
    up to ``cap``, drawn from the top ``spread`` share (``models.schedule.backoff_delay``)."""

    initial: float = 1.0
    cap: float = 60.0
    spread: float = 0.1

    def delay(self, attempt: int) -> float:
        wait = backoff_delay(
            attempt,
            base=timedelta(seconds=self.initial),
            cap=timedelta(seconds=self.cap),
            jitter=random.random(),
            spread=self.spread,
        )
        return wait.total_seconds()


def bot_commands() -> list[BotCommand]:
    """The command list registered with setMyCommands (the same table as /help and README)."""
    return [BotCommand(cmd.name, cmd.description) for cmd in COMMANDS]


def build_application(ctx: BotContext) -> Application[Any, Any, Any, Any, Any, Any]:
    application = (
        ApplicationBuilder()
        .token(ctx.config.token)
        .base_url(ctx.config.base_url)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .rate_limiter(AIORateLimiter(max_retries=2))
        .concurrent_updates(
            ChatUpdateProcessor(
                ctx.config.max_concurrent_updates,
                ChatThrottle(burst=ctx.config.chat_burst, per_minute=ctx.config.chat_per_minute),
            )
        )
        .job_queue(None)
        .build()
    )
    add_handlers(application, ctx)
    return application


async def _initialize(
    application: Application[Any, Any, Any, Any, Any, Any], stop: asyncio.Event, backoff: Backoff
) -> bool:
    """initialize() + setMyCommands, retried until they work or ``stop`` is set."""
    attempt = 0
    while not stop.is_set():
        try:
            await application.initialize()  # a no-op once it has succeeded
            await application.bot.set_my_commands(bot_commands())
            return True
        except InvalidToken:
            raise
        except (NetworkError, TelegramError, OSError) as exc:
            delay = backoff.delay(attempt)
            attempt += 1
            log.warning(
                "Telegram unreachable; retrying",
                attempt=attempt,
                delay=round(delay, 2),
                error=str(exc),
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
    return False


async def run_bot(
    application: Application[Any, Any, Any, Any, Any, Any],
    stop: asyncio.Event,
    *,
    backoff: Backoff | None = None,
) -> None:
    """Run the bot until ``stop`` is set; Telegram being down only delays the start."""
    backoff = backoff or Backoff()
    started = False
    try:
        if not await _initialize(application, stop, backoff):
            return
        updater = application.updater
        assert updater is not None
        await updater.start_polling(allowed_updates=ALLOWED_UPDATES, bootstrap_retries=-1)
        await application.start()
        started = True
        log.info("telegram bot polling", username=application.bot.username)
        await stop.wait()
    finally:
        updater = application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if started and application.running:
            await application.stop()
        await application.shutdown()  # a no-op when it never initialized
