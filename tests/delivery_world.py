"""Builders for delivery tests: sources, themes, subscribers, matched items and outbox rows,
written through the real tables (the classifier's ``item_themes`` rows are written by hand)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.deliveries import DeliveryRepository, NewDelivery
from models.db.items import ItemRepository, StoreResult
from models.db.tables import (
    Delivery,
    Event,
    ItemEvent,
    ItemTheme,
    Source,
    Subscriber,
    Subscription,
    Theme,
)
from models.fields import ItemFields
from models.items import ItemData
from models.outbox import DeliveryKind, OutgoingMessage

T0 = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


@dataclass
class Clock:
    """A settable clock for the code under test (pacing still uses real time)."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def add_source(
    session: AsyncSession, name: str = "fr-bis", kind: str = "federal_register"
) -> Source:
    source = Source(
        name=name,
        kind=kind,
        url="https://www.federalregister.gov/api/v1/documents.json",
        options={},
        interval_seconds=900,
        created_at=T0,
        updated_at=T0,
    )
    session.add(source)
    await session.flush()
    return source


async def add_theme(
    session: AsyncSession, slug: str, title: str | None = None, priority: str = "instant"
) -> Theme:
    theme = Theme(slug=slug, title=title or slug, priority=priority, created_at=T0, updated_at=T0)
    session.add(theme)
    await session.flush()
    return theme


async def add_subscriber(session: AsyncSession, chat_id: int, **over: Any) -> Subscriber:
    values: dict[str, Any] = {
        "chat_id": chat_id,
        "chat_type": "private" if chat_id > 0 else "group",
        "created_at": T0,
        "updated_at": T0,
        **over,
    }
    subscriber = Subscriber(**values)
    session.add(subscriber)
    await session.flush()
    return subscriber


async def subscribe(
    session: AsyncSession, subscriber: Subscriber, theme: Theme, mode: str = "instant"
) -> None:
    session.add(
        Subscription(subscriber_id=subscriber.id, theme_id=theme.id, mode=mode, created_at=T0)
    )
    await session.flush()


async def add_items(
    session: AsyncSession,
    source: Source,
    titles: Sequence[str],
    now: datetime,
    *,
    from_first_poll: bool = False,
    fields: ItemFields | None = None,
    prefix: str = "doc",
) -> StoreResult:
    data = [
        ItemData(
            external_id=f"{prefix}-{i}",
            title=title,
            url=f"https://www.federalregister.gov/d/{prefix}-{i}",
            summary=f"Summary of {title}",
            published_at=now - timedelta(hours=1),
            fields=fields or ItemFields(),
        )
        for i, title in enumerate(titles)
    ]
    return await ItemRepository(session).store(
        source.id, data, now, from_first_poll=from_first_poll
    )


async def in_events(session: AsyncSession, result: StoreResult, *events: Event) -> None:
    """Put the result's new items in ``events`` (the first item in the first event, ...)."""
    for item, event in zip(result.new, events, strict=True):
        session.add(
            ItemEvent(
                item_id=item.id,
                event_id=event.id,
                reason="test",
                score=1.0,
                signature={},
                assigned_at=event.first_at,
            )
        )
    await session.flush()


async def add_event(session: AsyncSession, title: str, now: datetime) -> Event:
    event = Event(
        title=title, first_at=now, last_at=now, item_count=1, created_at=now, updated_at=now
    )
    session.add(event)
    await session.flush()
    return event


async def match(
    session: AsyncSession,
    result: StoreResult,
    theme: Theme,
    terms: Sequence[str],
    now: datetime,
    layer: str = "rules",
    model: dict[str, Any] | None = None,
) -> None:
    for item in result.new:
        session.add(
            ItemTheme(
                item_id=item.id,
                theme_id=theme.id,
                score=1.0,
                matched=list(terms),
                matched_at=now,
                layer=layer,
                model=model,
            )
        )
    await session.flush()


def text_message(text: str, parse_mode: Literal["HTML"] | None = "HTML") -> OutgoingMessage:
    return {"text": text, "parse_mode": parse_mode, "reply_markup": None}


async def enqueue_messages(
    session: AsyncSession,
    subscriber: Subscriber,
    texts: Sequence[str],
    now: datetime,
    *,
    key: str,
    kind: DeliveryKind = DeliveryKind.BROADCAST,
    parse_mode: Literal["HTML"] | None = "HTML",
) -> None:
    await DeliveryRepository(session).enqueue(
        [
            NewDelivery(
                subscriber_id=subscriber.id,
                kind=kind,
                dedupe_key=key,
                payload={"messages": [text_message(t, parse_mode) for t in texts]},
            )
        ],
        now,
    )


async def deliveries(session: AsyncSession) -> list[Delivery]:
    return list((await session.scalars(select(Delivery).order_by(Delivery.id))).all())
