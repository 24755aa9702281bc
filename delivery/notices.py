"""Messages that go through the outbox rather than as command replies: admin notices and
broadcasts. The notifier sends them, paced like every other delivery; the dedupe key makes a
repeat to the same chat impossible (``UNIQUE(subscriber_id, dedupe_key)``)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from delivery.telegram_html import esc
from models.db import UnitOfWork
from models.db.deliveries import NewDelivery
from models.outbox import DeliveryKind, OutboxPayload, html_message


def _payload(text: str) -> OutboxPayload:
    return {"messages": [html_message(text)]}


async def notify_admins(
    uow: UnitOfWork,
    admin_ids: Collection[int],
    text: str | Callable[[str], str],
    dedupe_key: str,
    now: datetime,
) -> list[int]:
    """Queue a notice (Telegram HTML) to the private chat of every admin who has started the
    bot; ``text`` may be a function of the admin's time zone (a notice that shows a time shows
    it in each admin's zone). Returns the ids of the deliveries added (none for a repeated
    ``dedupe_key``)."""
    chats = await uow.subscribers.admin_chats(admin_ids)
    render = text if callable(text) else (lambda zone: text)
    return await uow.deliveries.enqueue(
        [
            NewDelivery(sid, DeliveryKind.NOTICE, dedupe_key, _payload(render(zone)))
            for sid, zone in chats.items()
        ],
        now,
    )


async def enqueue_broadcast(
    uow: UnitOfWork, text: str, dedupe_key: str, now: datetime
) -> list[int]:
    """Queue ``text`` (Telegram HTML) to every active subscriber."""
    chats = await uow.subscribers.active_ids()
    return await uow.deliveries.enqueue(
        [NewDelivery(sid, DeliveryKind.BROADCAST, dedupe_key, _payload(text)) for sid in chats],
        now,
    )


def topic_gone_notice(slugs: list[str]) -> OutboxPayload:
    """To a forum chat whose topic for these themes was deleted or closed (the notifier sent
    the message that found out to the chat itself, as it will the next ones)."""
    themes = ", ".join(f"<code>{esc(slug)}</code>" for slug in slugs)
    return _payload(
        f"The forum topic that alerts of {themes} went to is closed or deleted, so they come "
        "to the General topic now. To route a theme to a topic again, send "
        "/subscribe &lt;theme&gt; inside that topic."
    )
