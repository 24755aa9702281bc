"""Messages that go through the outbox rather than as command replies: admin notices and
broadcasts. The notifier sends them, paced like every other delivery; the dedupe key makes a
repeat to the same chat impossible (``UNIQUE(subscriber_id, dedupe_key)``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings import Settings
from models.db.repositories import DeliveryRepository
from models.db.tables import Subscriber

MAX_DEDUPE_KEY = 128


def html_payload(text: str) -> dict[str, Any]:
    """The outbox payload of one Telegram HTML message."""
    return {"messages": [{"text": text, "parse_mode": "HTML", "reply_markup": None}]}


async def _enqueue(
    session: AsyncSession,
    subscriber_ids: list[int],
    *,
    kind: str,
    text: str,
    dedupe_key: str,
    now: datetime,
) -> list[int]:
    if len(dedupe_key) > MAX_DEDUPE_KEY:
        msg = f"dedupe key longer than {MAX_DEDUPE_KEY} characters: {dedupe_key[:40]}…"
        raise ValueError(msg)
    rows = [
        {
            "subscriber_id": sid,
            "kind": kind,
            "dedupe_key": dedupe_key,
            "payload": html_payload(text),
        }
        for sid in subscriber_ids
    ]
    return await DeliveryRepository(session).enqueue(rows, now)


async def notify_admins(
    session: AsyncSession, settings: Settings, text: str, dedupe_key: str, now: datetime
) -> list[int]:
    """Queue a notice (Telegram HTML) to the private chat of every admin who has started the
    bot. Returns the ids of the deliveries added (none for a repeated ``dedupe_key``)."""
    if not settings.admin_ids:
        return []
    admins = list(settings.admin_ids)
    ids = (
        await session.scalars(
            select(Subscriber.id).where(
                Subscriber.active.is_(True),
                Subscriber.chat_type == "private",
                or_(Subscriber.chat_id.in_(admins), Subscriber.user_id.in_(admins)),
            )
        )
    ).all()
    return await _enqueue(
        session, list(ids), kind="notice", text=text, dedupe_key=dedupe_key, now=now
    )


async def enqueue_broadcast(
    session: AsyncSession, text: str, dedupe_key: str, now: datetime
) -> list[int]:
    """Queue ``text`` (Telegram HTML) to every active subscriber."""
    ids = (await session.scalars(select(Subscriber.id).where(Subscriber.active.is_(True)))).all()
    return await _enqueue(
        session, list(ids), kind="broadcast", text=text, dedupe_key=dedupe_key, now=now
    )
