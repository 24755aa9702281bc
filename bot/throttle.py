"""Each chat gets its fair share of the bot: updates are processed concurrently across chats
but in order within a chat, and a chat that sends faster than its allowance has the excess
dropped, with one polite notice, instead of queueing without bound (a flood of 1,000
``/search`` from one chat once held every other chat's ``/help`` for minutes).

``ChatThrottle`` is the allowance (a token bucket per chat; pure, time is a parameter);
``ChatUpdateProcessor`` is the PTB update processor that applies it and keeps each chat's
updates in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import structlog
from telegram import Update
from telegram.ext import BaseUpdateProcessor

log = structlog.get_logger(__name__)

SLOW_DOWN = (
    "You are sending commands too fast for me: I skipped some of them. "
    "Wait a few seconds, then send the one you need again."
)


class Verdict(Enum):
    ADMIT = "admit"
    DROP_AND_TELL = "drop_and_tell"  # the first drop of a run: say so, once
    DROP = "drop"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    told: bool = False


@dataclass(slots=True)
class ChatThrottle:
    """A token bucket per chat: ``burst`` updates at once, refilled at ``per_minute``."""

    burst: int = 10
    per_minute: float = 30.0
    max_chats: int = 10_000  # idle buckets beyond this are forgotten
    _buckets: dict[int, _Bucket] = field(default_factory=dict)

    def check(self, chat_id: int, now: float) -> Verdict:
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            if len(self._buckets) >= self.max_chats:
                self._forget_idle(now)
            bucket = self._buckets[chat_id] = _Bucket(float(self.burst), now)
        rate = self.per_minute / 60.0
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.told = False
            return Verdict.ADMIT
        if bucket.told:
            return Verdict.DROP
        bucket.told = True
        return Verdict.DROP_AND_TELL

    def _forget_idle(self, now: float) -> None:
        full_after = self.burst * 60.0 / self.per_minute
        for chat_id in [c for c, b in self._buckets.items() if now - b.at >= full_after]:
            del self._buckets[chat_id]


Notice = Callable[[Update], Awaitable[None]]


async def tell_slow_down(update: Update) -> None:
    message = update.effective_message
    if update.callback_query is not None:
        await update.callback_query.answer("Too many taps; wait a few seconds.")
    elif message is not None:
        await message.reply_text(SLOW_DOWN, do_quote=False)


class ChatUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across chats, in order within one chat, throttled per chat."""

    def __init__(
        self,
        max_concurrent_updates: int,
        throttle: ChatThrottle,
        *,
        clock: Callable[[], float] = time.monotonic,
        notice: Notice = tell_slow_down,
    ) -> None:
        super().__init__(max_concurrent_updates)
        self.throttle = throttle
        self.clock = clock
        self.notice = notice
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:  # nothing to keep in order or to throttle
            await coroutine
            return
        verdict = self.throttle.check(chat.id, self.clock())
        if verdict is not Verdict.ADMIT:
            _discard(coroutine)
            log.info("update dropped (chat over its allowance)", chat_id=chat.id)
            if verdict is Verdict.DROP:
                return
            coroutine = self._tell(update)  # in the chat's order, after what was admitted
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._waiting[chat.id] = self._waiting.get(chat.id, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[chat.id] -= 1
            if not self._waiting[chat.id]:
                del self._waiting[chat.id]
                self._locks.pop(chat.id, None)

    async def _tell(self, update: object) -> None:
        if not isinstance(update, Update):
            return
        try:
            await self.notice(update)
        except Exception:
            log.warning("could not tell a chat to slow down", exc_info=True)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


def _discard(coroutine: Awaitable[Any]) -> None:
    close = getattr(coroutine, "close", None)
    if callable(close):
        close()  # never awaited on purpose: no "coroutine was never awaited" warning
