"""Senders: the one seam between the notifier and Telegram.

``Sender.send`` sends one message and reports what happened as a ``SendResult`` instead of
raising, so the notifier's policy (reschedule, deactivate, follow, fall back, retry) is plain
code over plain data. ``TelegramSender`` maps python-telegram-bot's errors:

| PTB error | outcome |
|---|---|
| none | ``SENT`` (with the message id) |
| ``RetryAfter`` | ``FLOOD`` (``retry_after``) |
| ``Forbidden`` (blocked, kicked, deactivated) | ``BLOCKED`` |
| ``ChatMigrated`` | ``MIGRATED`` (``new_chat_id``) |
| ``BadRequest`` "can't parse entities" / "unsupported start tag" ... | ``BAD_FORMAT`` |
| ``BadRequest`` "chat not found" | ``BLOCKED`` |
| ``BadRequest`` "message thread not found", "TOPIC_CLOSED", "TOPIC_DELETED" | ``NO_TOPIC`` |
| other ``BadRequest`` | ``REJECTED`` (permanent) |
| ``TimedOut``, ``NetworkError`` (5xx, connection), other ``TelegramError`` | ``TRANSIENT`` |

``ConsoleSender`` (no bot token) prints what would be sent.
"""

from __future__ import annotations

import enum
import itertools
import sys
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TextIO

from delivery.telegram_html import plain_text
from models.outbox import OutgoingMessage


class Outcome(enum.Enum):
    SENT = "sent"
    FLOOD = "flood"
    BLOCKED = "blocked"
    MIGRATED = "migrated"
    BAD_FORMAT = "bad_format"
    REJECTED = "rejected"
    TRANSIENT = "transient"
    NO_TOPIC = "no_topic"  # the forum topic it was sent to is gone or closed


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    message_id: int | None = None
    retry_after: timedelta | None = None
    new_chat_id: int | None = None
    error: str = ""


class Sender(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(
        self,
        chat_id: int,
        message: OutgoingMessage,
        *,
        reply_to: int | None = None,
        topic: int | None = None,
    ) -> SendResult:
        """Send one message to ``chat_id`` (as a reply to message ``reply_to``, if given; in
        forum topic ``topic``, if given)."""
        ...


_TOPIC_ERRORS = ("message thread not found", "topic_closed", "topic_deleted")
_FORMAT_ERRORS = ("can't parse entities", "unsupported start tag", "unmatched end tag", "entity")


def _retry_after(exc: Any) -> timedelta:
    with warnings.catch_warnings():  # PTB warns about int retry_after unless PTB_TIMEDELTA=true
        warnings.simplefilter("ignore")
        value = exc.retry_after
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value))


class TelegramSender:
    """Sends through ``telegram.Bot(token, base_url=...)``."""

    def __init__(self, token: str, base_url: str, *, pool_size: int = 32) -> None:
        from telegram import Bot
        from telegram.request import HTTPXRequest

        self._bot = Bot(
            token,
            base_url=base_url,
            request=HTTPXRequest(
                connection_pool_size=pool_size, read_timeout=15.0, pool_timeout=5.0
            ),
        )
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self._bot.initialize()
            self._started = True

    async def stop(self) -> None:
        if self._started:
            await self._bot.shutdown()
            self._started = False

    async def send(
        self,
        chat_id: int,
        message: OutgoingMessage,
        *,
        reply_to: int | None = None,
        topic: int | None = None,
    ) -> SendResult:
        from telegram import InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
        from telegram.error import (
            BadRequest,
            ChatMigrated,
            Forbidden,
            RetryAfter,
            TelegramError,
        )

        await self.start()
        markup = message["reply_markup"]
        try:
            sent = await self._bot.send_message(
                chat_id,
                message["text"],
                parse_mode=message["parse_mode"],
                reply_markup=(
                    InlineKeyboardMarkup.de_json(dict(markup), self._bot)
                    if markup is not None
                    else None
                ),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                message_thread_id=topic,
                reply_parameters=(
                    ReplyParameters(reply_to, allow_sending_without_reply=True)
                    if reply_to is not None
                    else None
                ),
            )
        except RetryAfter as exc:
            return SendResult(Outcome.FLOOD, retry_after=_retry_after(exc), error=str(exc))
        except Forbidden as exc:
            return SendResult(Outcome.BLOCKED, error=exc.message)
        except ChatMigrated as exc:
            return SendResult(Outcome.MIGRATED, new_chat_id=int(exc.new_chat_id), error=str(exc))
        except BadRequest as exc:
            text = exc.message.lower()
            if "chat not found" in text:
                return SendResult(Outcome.BLOCKED, error=exc.message)
            if any(marker in text for marker in _TOPIC_ERRORS):
                return SendResult(Outcome.NO_TOPIC, error=exc.message)
            if any(marker in text for marker in _FORMAT_ERRORS):
                return SendResult(Outcome.BAD_FORMAT, error=exc.message)
            return SendResult(Outcome.REJECTED, error=exc.message)
        except TelegramError as exc:  # TimedOut, NetworkError (5xx, connection) and the rest
            return SendResult(Outcome.TRANSIENT, error=f"{type(exc).__name__}: {exc}")
        return SendResult(Outcome.SENT, message_id=sent.message_id)


class ConsoleSender:
    """No bot token: print each message (as plain text) instead of sending it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._ids = itertools.count(1)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(
        self,
        chat_id: int,
        message: OutgoingMessage,
        *,
        reply_to: int | None = None,
        topic: int | None = None,
    ) -> SendResult:
        text = message["text"]
        if message["parse_mode"] == "HTML":
            text = plain_text(text)
        stream = self._stream or sys.stdout
        buttons = message["reply_markup"]
        answering = f" (in reply to message {reply_to})" if reply_to is not None else ""
        where = f", topic {topic}" if topic is not None else ""
        stream.write(f"--- to chat {chat_id}{where}{answering} ---\n{text}\n")
        if buttons is not None:
            for row in buttons["inline_keyboard"]:
                stream.write(" ".join(f"[{b['text']}]" for b in row) + "\n")
        stream.flush()
        return SendResult(Outcome.SENT, message_id=next(self._ids))
