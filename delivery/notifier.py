"""The notifier: the one place that sends. It drains the outbox at Telegram's pace.

Pacing:
- overall: send slots evenly spaced at ``rate`` per second (default 25, under Telegram's ~30);
- one chat: its messages are sent sequentially, private chats at least 1.05 s apart, groups and
  channels at least 3.1 s apart (≤ 20 per minute);
- at most ``max_in_flight`` sends are in flight at once. A message counts as in flight from the
  request until its outcome is committed, so a crash repeats at most that many messages.

Outcomes (see ``delivery.senders``): flood → rescheduled at ``retry_after`` (never dropped, not an
attempt); blocked → the row failed, the subscriber made inactive and its pending rows cancelled;
migrated → the stored chat id updated (a subscriber registered under the new id meanwhile is
merged in) and the message resent there; bad formatting → resent once as plain text, then
failed with the error kept; transient → retried with exponential backoff up to
``max_attempts``, then failed; rejected → failed with the error kept; a forum topic gone or
closed → the message sent to the chat itself instead, the chat's themes routed there unrouted
and the chat told why (``delivery.notices.topic_gone_notice``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from delivery.notices import topic_gone_notice
from delivery.senders import Outcome, Sender
from delivery.telegram_html import plain_text
from models.db.outbox import ClaimedDelivery, Outbox
from models.outbox import OutgoingMessage, plain_message, with_topic
from models.schedule import backoff_delay
from models.timeutil import utcnow

log = structlog.get_logger(__name__)

PRIVATE_INTERVAL = 1.05
GROUP_INTERVAL = 3.1
MAX_MIGRATIONS = 2
REPLY_WAIT = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    rate: float = 25.0
    max_in_flight: int = 8
    batch: int = 200
    max_attempts: int = 8
    retry_base: timedelta = timedelta(seconds=10)
    retry_cap: timedelta = timedelta(hours=1)
    private_interval: float = PRIVATE_INTERVAL
    group_interval: float = GROUP_INTERVAL

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failure (0-based): base · 2^attempts, capped."""
        return backoff_delay(attempts, base=self.retry_base, cap=self.retry_cap)


@dataclass(slots=True)
class DrainReport:
    """What one ``run_once`` did."""

    messages_sent: int = 0
    delivered: int = 0
    rescheduled: int = 0
    failed: int = 0
    deactivated: int = 0
    migrated: int = 0
    floods: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> None:
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1


class _StopRequestedError(Exception):
    """Raised inside a delivery when the notifier is asked to stop."""


def _log_failure(task: asyncio.Task[DrainReport]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("notifier drain failed", error=repr(task.exception()))


class Pacer:
    """Evenly spaced send slots: never more than ``rate`` starts per second, no bursts."""

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate
        self._monotonic = monotonic
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = self._monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class Notifier:
    """Claims due outbox rows, sends them paced, and records each outcome."""

    def __init__(
        self,
        outbox: Outbox,
        sender: Sender,
        config: NotifierConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.on_outcome = on_outcome  # e.g. metrics: every send attempt's outcome
        self.outbox = outbox
        self.sender = sender
        self.config = config
        self.clock = clock
        self.pacer = Pacer(config.rate)
        self._in_flight = asyncio.Semaphore(config.max_in_flight)
        self._chat_ready: dict[int, float] = {}  # chat id -> monotonic time of its next slot
        self._chat_of: dict[int, int] = {}  # subscriber id -> chat id after a migration
        self._lock = asyncio.Lock()
        self._drain: asyncio.Task[DrainReport] | None = None
        self._stopping = False

    async def tick(self) -> None:
        """For the scheduler: start a drain in the background unless one is running, and
        return at once (a long fan-out does not hold the tick)."""
        if self._stopping or (self._drain is not None and not self._drain.done()):
            return
        self._drain = asyncio.create_task(self.run_once(), name="notifier-drain")
        self._drain.add_done_callback(_log_failure)

    async def aclose(self) -> None:
        """Stop gracefully: sends in flight finish and are recorded, claimed rows not yet sent
        are released for the next start, then the drain ends."""
        self._stopping = True
        if self._drain is not None:
            await asyncio.wait([self._drain])

    async def run_once(self) -> DrainReport:
        """Send everything due now (claiming batch after batch), then return."""
        report = DrainReport()
        async with self._lock:  # one drain at a time per process
            while not self._stopping:
                batch = await self.outbox.claim(self.clock(), self.config.batch)
                if not batch:
                    break
                claimed_at = time.monotonic()
                per_chat: dict[int, list[ClaimedDelivery]] = {}
                for delivery in batch:
                    per_chat.setdefault(delivery.subscriber_id, []).append(delivery)
                unsent: list[int] = []
                await asyncio.gather(
                    *(
                        self._send_chat(rows, claimed_at, report, unsent)
                        for rows in per_chat.values()
                    )
                )
                if unsent:
                    await self.outbox.release(unsent)
        return report

    async def _send_chat(
        self,
        rows: list[ClaimedDelivery],
        claimed_at: float,
        report: DrainReport,
        unsent: list[int],
    ) -> None:
        for index, delivery in enumerate(rows):
            if self._stopping:
                unsent.extend(d.id for d in rows[index:])
                return
            try:
                keep_going = await self._deliver(delivery, claimed_at, report)
            except _StopRequestedError:
                unsent.extend(d.id for d in rows[index:])
                return
            except Exception:  # a bug or a database error: the lease expires and it is retried
                log.exception("delivery failed unexpectedly", delivery=delivery.id)
                return
            if not keep_going:
                return

    async def _wait_for_chat(self, chat_id: int) -> None:
        ready = self._chat_ready.get(chat_id, 0.0)
        delay = ready - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def _chat_used(self, chat_id: int, is_group: bool, extra: float = 0.0) -> None:
        interval = self.config.group_interval if is_group else self.config.private_interval
        self._chat_ready[chat_id] = time.monotonic() + max(interval, extra)

    async def _deliver(
        self, delivery: ClaimedDelivery, claimed_at: float, report: DrainReport
    ) -> bool:
        """Send one row from where it stopped. False when the chat should get nothing more
        in this drain (it is blocked, or flood-limited)."""
        outbox, config = self.outbox, self.config
        chat_id = self._chat_of.get(delivery.subscriber_id, delivery.chat_id)
        is_group = delivery.is_group or chat_id < 0
        messages = delivery.messages
        if not messages:
            await outbox.mark_failed(delivery, "payload has no messages", self.clock())
            report.failed += 1
            return True
        if delivery.reply_waiting:  # it answers a message that has not gone yet
            now = self.clock()
            await outbox.reschedule(
                delivery,
                at=now + REPLY_WAIT,
                error="waiting for the message it replies to",
                now=now,
                count_attempt=False,
            )
            report.rescheduled += 1
            return True
        sent = min(delivery.sent_count, len(messages))
        last_id: int | None = None
        plain = False
        migrations = 0
        renewed_at = claimed_at
        lease_seconds = outbox.lease.total_seconds()
        while sent < len(messages):
            if self._stopping:  # a partly sent payload keeps its progress; released by caller
                raise _StopRequestedError
            if time.monotonic() - renewed_at > lease_seconds / 2:
                if not await outbox.renew(delivery.id, self.clock()):
                    log.warning("lease lost; another worker has the row", delivery=delivery.id)
                    return True
                renewed_at = time.monotonic()
            msg: OutgoingMessage = messages[sent]
            if plain:
                msg = plain_message(plain_text(msg["text"]), msg["reply_markup"])
            await self._wait_for_chat(chat_id)
            async with self._in_flight:
                await self.pacer.wait()
                result = await self.sender.send(
                    chat_id,
                    msg,
                    reply_to=delivery.reply_to_message_id if sent == 0 else None,
                    topic=delivery.topic,
                )
                report.count(result.outcome)
                if self.on_outcome is not None:
                    self.on_outcome(result.outcome)
                now = self.clock()
                if result.outcome is Outcome.SENT:
                    self._chat_used(chat_id, is_group)
                    sent += 1
                    report.messages_sent += 1
                    last_id = result.message_id
                    plain = False
                    if sent < len(messages):
                        await outbox.record_progress(delivery, sent, last_id or 0, now)
                    else:
                        await outbox.mark_sent(delivery, sent, last_id, now)
                        report.delivered += 1
                    continue
                if result.outcome is Outcome.FLOOD:
                    wait = result.retry_after or timedelta(seconds=1)
                    self._chat_used(chat_id, is_group, extra=wait.total_seconds())
                    report.floods += 1
                    report.rescheduled += 1
                    await outbox.reschedule(
                        delivery,
                        at=now + wait,
                        error=result.error or "flood limit",
                        now=now,
                        count_attempt=False,
                        sent=sent,
                    )
                    log.warning("flood limit: rescheduled", chat=chat_id, retry_after=str(wait))
                    return False
                if result.outcome is Outcome.BLOCKED:
                    await outbox.mark_failed(delivery, result.error, now)
                    cancelled = await outbox.deactivate_subscriber(
                        delivery.subscriber_id, result.error or "blocked", now
                    )
                    report.failed += 1
                    report.deactivated += 1
                    log.info("chat unreachable: deactivated", chat=chat_id, cancelled=cancelled)
                    return False
                if result.outcome is Outcome.MIGRATED and result.new_chat_id is not None:
                    migrations += 1
                    if migrations > MAX_MIGRATIONS:
                        await outbox.mark_failed(delivery, "chat migrated repeatedly", now)
                        report.failed += 1
                        return False
                    if await outbox.migrate_chat(delivery.subscriber_id, result.new_chat_id, now):
                        log.info("chat migrated", old=chat_id, new=result.new_chat_id)
                        self._chat_of[delivery.subscriber_id] = result.new_chat_id
                        chat_id = result.new_chat_id
                        is_group = True
                        report.migrated += 1
                        continue
                    # the subscriber is gone (a subscriber already under the new id is merged)
                    reason = f"migrated to chat {result.new_chat_id}; the subscriber is gone"
                    await outbox.mark_failed(delivery, reason, now)
                    report.failed += 1
                    return False
                if result.outcome is Outcome.BAD_FORMAT and not plain and msg["parse_mode"]:
                    log.warning("formatting rejected; resending as plain text", chat=chat_id)
                    plain = True
                    continue
                if result.outcome is Outcome.NO_TOPIC and delivery.topic is not None:
                    themes = await outbox.unroute_topic(
                        delivery.subscriber_id, delivery.topic, topic_gone_notice, now
                    )
                    log.warning(
                        "forum topic gone: sent to the chat itself",
                        chat=chat_id,
                        topic=delivery.topic,
                        themes=themes,
                    )
                    # stored without its topic once sent: an update replies where it went;
                    # a reply to a message in the gone topic goes without the reply
                    delivery = replace(
                        delivery,
                        payload=with_topic(delivery.payload, None),
                        topic=None,
                        reply_to_message_id=None,
                    )
                    continue
                if result.outcome is Outcome.TRANSIENT:
                    if delivery.attempts + 1 >= config.max_attempts:
                        await outbox.mark_failed(delivery, result.error, now)
                        report.failed += 1
                    else:
                        await outbox.reschedule(
                            delivery,
                            at=now + config.backoff(delivery.attempts),
                            error=result.error,
                            now=now,
                            count_attempt=True,
                            sent=sent,
                        )
                        report.rescheduled += 1
                    return False
                # REJECTED, a second BAD_FORMAT, or MIGRATED without a chat id: permanent
                await outbox.mark_failed(delivery, result.error or result.outcome.value, now)
                report.failed += 1
                return True
        return True
