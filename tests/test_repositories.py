"""Repository round trips and uniqueness rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, StatementError

from models.db.audit import AuditRepository
from models.db.deliveries import NewDelivery
from models.db.sources import SourceRepository
from models.db.tables import AuditLog, Delivery, Item, Source, Subscriber, Theme, ThemeRule
from models.db.themes import ThemeRepository
from models.items import ItemData
from models.outbox import DeliveryKind, DeliveryStatus
from models.sources import SourceSpec
from models.themes import ThemeSpec
from models.views import SourceView
from tests.conftest import Database

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def spec(name: str = "fr-bis", **over: object) -> SourceSpec:
    values: dict[str, object] = {
        "name": name,
        "kind": "rss",
        "url": f"https://example.org/{name}.xml",
        "interval_seconds": 900,
        "options": {"timezone": "Asia/Shanghai"},
    }
    values.update(over)
    return SourceSpec(**values)  # type: ignore[arg-type]


async def make_source(db: Database, name: str = "feed") -> SourceView:
    async with db.transaction() as uow:
        await uow.sources.sync_from_config([spec(name)], NOW)
        source = await uow.sources.get(name)
        assert source is not None
        return source


async def test_source_sync_is_idempotent_and_keeps_chat_edits(db: Database) -> None:
    async with db.sessions.begin() as session:
        report = await SourceRepository(session).sync_from_config([spec("a"), spec("b")], NOW)
    assert sorted(report.created) == ["a", "b"]

    async with db.sessions.begin() as session:
        report = await SourceRepository(session).sync_from_config([spec("a"), spec("b")], NOW)
    assert report.created == []
    assert report.updated == []
    assert sorted(report.unchanged) == ["a", "b"]

    # An admin edits "b" from the chat; a later seed must not overwrite it.
    async with db.sessions.begin() as session:
        row = await session.scalar(select(Source).where(Source.name == "b"))
        assert row is not None
        row.origin, row.interval_seconds = "chat", 60
    later = NOW + timedelta(hours=1)
    async with db.sessions.begin() as session:
        report = await SourceRepository(session).sync_from_config(
            [spec("a", interval_seconds=1800), spec("b", interval_seconds=1800)], later
        )
    assert report.updated == ["a"]
    assert report.kept_chat_edits == ["b"]

    # "a" leaves the file: it is disabled, not deleted.
    async with db.sessions.begin() as session:
        report = await SourceRepository(session).sync_from_config([spec("b")], later)
    assert report.disabled == ["a"]
    async with db.sessions() as session:
        rows = {s.name: s for s in (await session.scalars(select(Source))).all()}
    assert rows["a"].enabled is False
    assert rows["a"].interval_seconds == 1800
    assert rows["b"].interval_seconds == 60
    assert rows["b"].origin == "chat"
    assert rows["a"].options == {"timezone": "Asia/Shanghai"}
    assert rows["a"].next_check_at == NOW
    assert rows["a"].updated_at == later


async def test_a_sources_digest_themes_come_from_the_file_and_route_its_matches(
    db: Database,
) -> None:
    async with db.sessions.begin() as session:
        repo = SourceRepository(session)
        await repo.sync_from_config(
            [spec("a", digest_themes=("export-controls",)), spec("b"), spec("c")], NOW
        )
        await repo.set_alerts("c", "digest", NOW)
        ids = {s.name: s.id for s in await repo.all()}
        assert await repo.digest_routes(set(ids.values())) == {
            ids["a"]: frozenset({"export-controls"}),
            ids["c"]: None,
        }
    async with db.sessions.begin() as session:  # the file changes its mind
        report = await SourceRepository(session).sync_from_config([spec("a"), spec("b")], NOW)
        assert report.updated == ["a"]
        assert await SourceRepository(session).digest_routes({ids["a"]}) == {}


async def test_theme_seed_keeps_chat_edits_and_tombstones(db: Database) -> None:
    themes = [ThemeSpec(slug="export-controls", title="Export controls", rules=("BIS", "实体清单"))]
    async with db.sessions.begin() as session:
        report = await ThemeRepository(session).sync_from_config(themes, NOW)
    assert report.created == ["export-controls"]

    # From the chat: add a term, remove a config term (tombstone), change the priority.
    async with db.sessions.begin() as session:
        theme = await session.scalar(select(Theme).where(Theme.slug == "export-controls"))
        assert theme is not None
        theme.priority, theme.origin = "digest", "chat"
        session.add(ThemeRule(theme_id=theme.id, rule="Huawei", origin="chat", created_at=NOW))
        bis = await session.scalar(select(ThemeRule).where(ThemeRule.rule == "BIS"))
        assert bis is not None
        bis.enabled, bis.origin = False, "chat"

    async with db.sessions.begin() as session:
        report = await ThemeRepository(session).sync_from_config(themes, NOW)
        assert report.kept_chat_edits == ["export-controls"]
        rules = await ThemeRepository(session).enabled_rules()
    assert [(slug, rule) for _, slug, rule in rules] == [
        ("export-controls", "实体清单"),
        ("export-controls", "Huawei"),
    ]
    async with db.sessions() as session:
        theme = await session.scalar(select(Theme).where(Theme.slug == "export-controls"))
    assert theme is not None
    assert theme.priority == "digest"


async def test_items_are_stored_once_and_updates_are_reported(db: Database) -> None:
    source = await make_source(db)
    published = datetime(2026, 11, 25, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    first = [
        ItemData(external_id="a", title="Entity List additions", published_at=published),
        ItemData(external_id="b", title="生成式人工智能服务已备案信息", language="zh"),
        ItemData(external_id="a", title="the same id twice in one response"),
    ]
    async with db.transaction() as uow:
        result = await uow.items.store(source.id, first, NOW, from_first_poll=True)
    assert [i.external_id for i in result.new] == ["a", "b"]
    assert result.new[0].published_at == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    assert result.new[0].published_at_guessed is False
    assert result.new[1].published_at == NOW
    assert result.new[1].published_at_guessed is True
    assert all(i.from_first_poll for i in result.new)

    again = [
        ItemData(external_id="a", title="Entity List additions", published_at=published),
        ItemData(external_id="b", title="生成式人工智能服务已备案信息（更正）", language="zh"),
        ItemData(external_id="c", title="new"),
    ]
    later = NOW + timedelta(minutes=30)
    async with db.transaction() as uow:
        result = await uow.items.store(source.id, again, later)
    assert [i.external_id for i in result.new] == ["c"]
    assert [i.title for i in result.updated] == ["生成式人工智能服务已备案信息（更正）"]
    async with db.sessions() as session:
        rows = {r.external_id: r for r in (await session.scalars(select(Item))).all()}
    assert len(rows) == 3
    assert rows["b"].updated_at == later
    assert rows["b"].first_seen_at == NOW


async def test_database_refuses_the_same_item_twice(db: Database) -> None:
    source = await make_source(db)
    row = {
        "source_id": source.id,
        "external_id": "x",
        "title": "t",
        "published_at": NOW,
        "first_seen_at": NOW,
        "content_hash": "h",
        "fields": {},
    }
    async with db.sessions.begin() as session:
        await session.execute(insert(Item), [row])
    with pytest.raises(IntegrityError):
        async with db.sessions.begin() as session:
            await session.execute(insert(Item), [row])


async def test_database_refuses_a_second_alert_of_an_item_to_a_chat(db: Database) -> None:
    source = await make_source(db)
    async with db.transaction() as uow:
        stored = await uow.items.store(source.id, [ItemData(external_id="x", title="t")], NOW)
        sub = await uow.subscribers.register(
            chat_id=42, chat_type="private", user_id=42, title=None, now=NOW
        )
        item_id, subscriber_id = stored.new[0].id, sub.id

    def alert(key: str) -> NewDelivery:
        return NewDelivery(subscriber_id, DeliveryKind.ALERT, key, {"messages": []}, item_id)

    async with db.transaction() as uow:
        assert len(await uow.deliveries.enqueue([alert("a")], NOW)) == 1
    # enqueue skips the repeat ...
    async with db.transaction() as uow:
        assert await uow.deliveries.enqueue([alert("another-key")], NOW) == []
    # ... and the database itself refuses it, whatever the dedupe key.
    with pytest.raises(IntegrityError):
        async with db.sessions.begin() as session:
            session.add(
                Delivery(
                    subscriber_id=subscriber_id,
                    item_id=item_id,
                    kind="alert",
                    dedupe_key="yet-another",
                    next_attempt_at=NOW,
                )
            )
    # Same for digests keyed by period.
    digest = NewDelivery(subscriber_id, DeliveryKind.DIGEST, "digest:2026-11-26", {"messages": []})
    async with db.transaction() as uow:
        assert len(await uow.deliveries.enqueue([digest, digest], NOW)) == 1
    async with db.sessions() as session:
        assert len((await session.scalars(select(Delivery))).all()) == 2


async def test_timestamps_round_trip_as_aware_utc(db: Database) -> None:
    shanghai = timezone(timedelta(hours=8))
    async with db.sessions.begin() as session:
        await AuditRepository(session).record(
            now=datetime(2026, 3, 8, 10, 0, tzinfo=shanghai),
            action="watch.add",
            entity_type="theme",
            entity_key="export-controls",
            actor_user_id=7,
            before=None,
            after={"rule": "华为"},
        )
    async with db.sessions() as session:
        row = await session.scalar(select(AuditLog))
    assert row is not None
    assert row.at == datetime(2026, 3, 8, 2, 0, tzinfo=UTC)
    assert row.at.tzinfo is not None
    assert row.at.utcoffset() == timedelta(0)
    assert row.after == {"rule": "华为"}


async def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with db.sessions.begin() as session:
            await AuditRepository(session).record(
                now=datetime(2026, 1, 1),  # noqa: DTZ001 - the point of the test
                action="x",
                entity_type="x",
                entity_key="x",
            )


async def test_subscriber_register_reactivates(db: Database) -> None:
    async with db.transaction() as uow:
        sub = await uow.subscribers.register(
            chat_id=-1001, chat_type="supergroup", user_id=5, title="g", now=NOW
        )
        await uow.deliveries.enqueue(
            [
                NewDelivery(sub.id, DeliveryKind.NOTICE, "a", {"messages": []}),
                NewDelivery(
                    sub.id, DeliveryKind.NOTICE, "b", {"messages": []}, status=DeliveryStatus.SENT
                ),
            ],
            NOW,
        )
        assert await uow.subscribers.deactivate(sub.id, "Forbidden: bot was kicked", NOW) == 1
    async with db.sessions() as session:
        statuses = sorted((await session.scalars(select(Delivery.status))).all())
    assert statuses == ["cancelled", "sent"]  # what is pending can never go: not backlog
    async with db.transaction() as uow:
        sub = await uow.subscribers.register(
            chat_id=-1001, chat_type="supergroup", user_id=None, title="g2", now=NOW
        )
    assert sub.active is True
    assert sub.user_id == 5
    assert sub.title == "g2"
    async with db.sessions() as session:
        row = await session.scalar(select(Subscriber).where(Subscriber.chat_id == -1001))
    assert row is not None
    assert row.deactivated_reason is None
