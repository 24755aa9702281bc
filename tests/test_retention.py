"""Retention keeps what matters and lets the SQLite file shrink."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.engine import make_engine, make_session_factory
from models.db.migrate import upgrade
from models.db.retention import RetentionPolicy, compact_sqlite, purge
from models.db.sources import SourceRepository
from models.db.tables import (
    AuditLog,
    Delivery,
    Event,
    Item,
    ItemEvent,
    ItemTheme,
    Subscriber,
    Theme,
)
from models.sources import SourceSpec
from models.views import SourceView
from tests.conftest import Database

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=45)


async def _source(session: AsyncSession) -> SourceView:
    repo = SourceRepository(session)
    await repo.sync_from_config(
        [SourceSpec(name="feed", kind="rss", url="https://e.org/f", interval_seconds=60)], NOW
    )
    source = await repo.get("feed")
    assert source is not None
    return source


def _item(source_id: int, external_id: str, seen: datetime, summary: str = "") -> dict[str, object]:
    return {
        "source_id": source_id,
        "external_id": external_id,
        "title": external_id,
        "summary": summary,
        "published_at": seen,
        "first_seen_at": seen,
        "content_hash": external_id,
        "fields": {},
    }


async def test_purge_keeps_matched_delivered_and_recent_items(db: Database) -> None:
    async with db.sessions.begin() as session:
        source = await _source(session)
        await session.execute(
            insert(Item),
            [
                _item(source.id, "old-unmatched", OLD),
                _item(source.id, "old-matched", OLD),
                _item(source.id, "old-delivered", OLD),
                _item(source.id, "new-unmatched", NOW - timedelta(days=1)),
            ],
        )
        ids = {i.external_id: i.id for i in (await session.scalars(select(Item))).all()}
        theme = Theme(slug="export-controls", title="Export controls")
        sub = Subscriber(chat_id=1, chat_type="private")
        session.add_all([theme, sub])
        await session.flush()
        session.add(ItemTheme(item_id=ids["old-matched"], theme_id=theme.id, matched_at=OLD))
        session.add(
            Delivery(
                subscriber_id=sub.id,
                item_id=ids["old-delivered"],
                kind="alert",
                dedupe_key="x",
                status="sent",
                next_attempt_at=OLD,
                created_at=OLD,
            )
        )
        session.add(
            AuditLog(at=OLD, action="seed", entity_type="themes", entity_key="config/themes.yaml")
        )

    async with db.sessions.begin() as session:
        report = await purge(session, RetentionPolicy(), NOW)
    assert report.items == 1
    assert report.deliveries == 0
    assert report.audit_log == 0
    async with db.sessions() as session:
        left = sorted(i.external_id for i in (await session.scalars(select(Item))).all())
    assert left == ["new-unmatched", "old-delivered", "old-matched"]

    # Deliveries and the audit log go only when configured to.
    policy = RetentionPolicy(deliveries=timedelta(days=30), audit_log=timedelta(days=30))
    async with db.sessions.begin() as session:
        report = await purge(session, policy, NOW)
    assert report.deliveries == 1
    assert report.audit_log == 1
    assert report.items == 1  # the delivered item is unmatched and no longer delivered


async def test_sqlite_file_shrinks_after_purge(tmp_path: Path) -> None:
    path = tmp_path / "grow.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        await upgrade(engine)
        sessions = make_session_factory(engine)
        async with sessions.begin() as session:
            source = await _source(session)
            rows = [_item(source.id, f"i{n}", OLD, summary="x" * 2000) for n in range(3000)]
            await session.execute(insert(Item), rows)
        assert await compact_sqlite(engine) is False  # nothing free yet
        full = path.stat().st_size
        async with sessions.begin() as session:
            assert (await purge(session, RetentionPolicy(), NOW)).items == 3000
        assert await compact_sqlite(engine) is True
        assert path.stat().st_size < full / 5
    finally:
        await engine.dispose()


async def test_events_emptied_by_retention_go_with_their_items(db: Database) -> None:
    async with db.sessions.begin() as session:
        source = await _source(session)
        await session.execute(
            insert(Item),
            [_item(source.id, "old-unmatched", OLD), _item(source.id, "new", NOW)],
        )
        ids = {i.external_id: i.id for i in (await session.scalars(select(Item))).all()}
        emptied = Event(
            title="old story", first_at=OLD, last_at=OLD, created_at=OLD, updated_at=OLD
        )
        kept = Event(title="new story", first_at=OLD, last_at=NOW, created_at=OLD, updated_at=OLD)
        session.add_all([emptied, kept])
        await session.flush()
        for item, event in (("old-unmatched", emptied), ("new", kept)):
            session.add(
                ItemEvent(item_id=ids[item], event_id=event.id, reason="new event", assigned_at=OLD)
            )

    async with db.transaction() as uow:
        report = await uow.purge(RetentionPolicy(), NOW)
    assert (report.items, report.events) == (1, 1)
    async with db.sessions() as session:
        left = [e.title for e in (await session.scalars(select(Event))).all()]
    assert left == ["new story"]  # an event that still has an item stays, however old
