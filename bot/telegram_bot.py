"""The Telegram side of ``policywatch run``: the PTB Application and its manual lifecycle.

``build_application`` builds PTB from settings (token, ``TELEGRAM_API_BASE_URL``) and registers
the handlers. ``run_bot`` initializes it, retrying with capped exponential backoff while
Telegram is unreachable (the scheduler ticks run meanwhile, on the same loop), registers the
command list, long-polls, and on ``stop`` shuts everything down in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from typing import Any

from telegram import BotCommand, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Defaults

from bot.app import Services
from bot.commands import COMMANDS
from bot.handlers import Resolver, add_handlers
from bot.logs import get_logger

log = get_logger(__name__)

ALLOWED_UPDATES = ["message", "channel_post", "callback_query", "my_chat_member"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with a little jitter: ``initial``, ×2 each time, ≤ ``cap``."""

    initial: float = 1.0
    cap: float = 60.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        base = min(self.cap, self.initial * (2 ** min(attempt, 30)))
        return float(base * (1 + random.uniform(0, self.jitter)))


def bot_commands() -> list[BotCommand]:
    """The command list registered with setMyCommands (the same table as /help and README)."""
    return [BotCommand(cmd.name, cmd.description) for cmd in COMMANDS]


def build_application(
    services: Services, *, resolver: Resolver | None = None
) -> Application[Any, Any, Any, Any, Any, Any]:
    token = services.settings.telegram_bot_token
    if token is None:
        msg = "no TELEGRAM_BOT_TOKEN set"
        raise ValueError(msg)
    application = (
        ApplicationBuilder()
        .token(token.get_secret_value())
        .base_url(services.settings.telegram_api_base_url)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .rate_limiter(AIORateLimiter(max_retries=2))
        .job_queue(None)
        .build()
    )
    add_handlers(application, services, resolver=resolver)
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
