"""The classification shell (``pipeline.classification``) on SQLite and PostgreSQL: the
after-store hook, chat edits taking effect without a restart, reclassification and dry runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from models.db.items import StoreResult
from models.db.tables import ItemTheme, Theme, ThemeRule
from models.errors import RuleError
from models.items import ItemData
from models.sources import SourceSpec
from models.themes import ThemeSpec
from models.views import SourceView
from pipeline.classification import Classifier
from tests.conftest import Database

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
THEMES = [
    ThemeSpec(slug="export-controls", title="EC", rules=('"Entity List" OR "实体清单"',)),
    ThemeSpec(slug="chips", title="Chips", rules=("Huawei AND chip*", "中芯国际")),
]


async def setup(db: Database, themes: list[ThemeSpec] = THEMES) -> SourceView:
    async with db.transaction() as uow:
        await uow.themes.sync_from_config(themes, NOW)
        spec = SourceSpec(name="feed", kind="rss", url="https://example.org/f", interval_seconds=60)
        await uow.sources.sync_from_config([spec], NOW)
        source = await uow.sources.get("feed")
        assert source is not None
        return source


def item(ext: str, title: str, summary: str = "", days_ago: float = 0) -> ItemData:
    return ItemData(
        external_id=ext,
        title=title,
        summary=summary,
        published_at=NOW - timedelta(days=days_ago),
    )


async def store(
    db: Database,
    classifier: Classifier,
    source: SourceView,
    items: list[ItemData],
    now: datetime = NOW,
) -> StoreResult:
    """What the polling pipeline does: store, then classify, in one transaction."""
    async with db.transaction() as uow:
        result = await uow.items.store(source.id, items, now)
        await classifier.classify_and_store(uow, result, now)
    return result


async def matches(db: Database) -> dict[tuple[str, str], ItemTheme]:
    """(item external id, theme slug) -> row."""
    from models.db.tables import Item

    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(Item.external_id, Theme.slug, ItemTheme)
                .join(ItemTheme, ItemTheme.item_id == Item.id)
                .join(Theme, Theme.id == ItemTheme.theme_id)
            )
        ).all()
    return {(ext, slug): row for ext, slug, row in rows}


async def test_new_items_are_classified_and_explained(db: Database) -> None:
    source = await setup(db)
    classifier = Classifier()
    await store(
        db,
        classifier,
        source,
        [
            item("1", "US adds Huawei chip units to the Entity List"),
            item("2", "美国将多家中企列入實體清單"),
            item("3", "Ford recalls cars"),
        ],
    )
    got = await matches(db)
    assert set(got) == {("1", "export-controls"), ("1", "chips"), ("2", "export-controls")}
    row = got[("1", "chips")]
    assert row.matched == [{"term": "Huawei", "field": "title"}, {"term": "chip", "field": "title"}]
    assert row.score == 4.0
    assert row.matched_at == NOW
    assert got[("2", "export-controls")].matched == [{"term": "实体清单", "field": "title"}]


async def test_an_updated_item_has_its_matches_replaced(db: Database) -> None:
    source = await setup(db)
    classifier = Classifier()
    await store(db, classifier, source, [item("1", "Huawei chip news")])
    later = NOW + timedelta(hours=1)
    result = await store(
        db, classifier, source, [item("1", "Correction: Entity List news")], now=later
    )
    assert [i.external_id for i in result.updated] == ["1"]
    got = await matches(db)
    assert set(got) == {("1", "export-controls")}
    assert got[("1", "export-controls")].matched_at == later


async def test_a_chat_edit_takes_effect_without_a_restart(db: Database) -> None:
    source = await setup(db)
    classifier = Classifier()
    await store(db, classifier, source, [item("1", "ZTE unveils 5G chips")])
    assert await matches(db) == {}

    async with db.sessions.begin() as session:  # /watch add chips ZTE
        theme = await session.scalar(select(Theme).where(Theme.slug == "chips"))
        assert theme is not None
        session.add(ThemeRule(theme_id=theme.id, rule="ZTE", origin="chat", created_at=NOW))
    await store(db, classifier, source, [item("2", "ZTE unveils 6G chips")])
    assert set(await matches(db)) == {("2", "chips")}

    async with db.sessions.begin() as session:  # /watch rm chips ZTE: a tombstone, no timestamp
        await session.execute(
            update(ThemeRule).where(ThemeRule.rule == "ZTE").values(enabled=False)
        )
    await store(db, classifier, source, [item("3", "ZTE unveils 7G chips")])
    assert set(await matches(db)) == {("2", "chips")}


async def test_a_broken_rule_is_skipped_and_items_are_still_stored(db: Database) -> None:
    source = await setup(db)
    async with db.sessions.begin() as session:
        theme = await session.scalar(select(Theme).where(Theme.slug == "chips"))
        assert theme is not None
        session.add(ThemeRule(theme_id=theme.id, rule='"unclosed', origin="chat", created_at=NOW))
    classifier = Classifier()
    result = await store(db, classifier, source, [item("1", "Huawei chip news")])
    assert len(result.new) == 1
    assert set(await matches(db)) == {("1", "chips")}
    ((slug, rule, error),) = classifier.skipped_rules
    assert (slug, rule) == ("chips", '"unclosed')
    assert "not closed" in error


async def test_reclassify_applies_a_changed_watchlist_to_recent_items(db: Database) -> None:
    source = await setup(db)
    classifier = Classifier()
    await store(
        db,
        classifier,
        source,
        [
            item("old", "Huawei chip news", days_ago=30),
            item("a", "Huawei chip news", days_ago=1),
            item("b", "中芯国际扩产", days_ago=2),
            item("c", "ZTE 5G news", days_ago=3),
        ],
    )
    before = await matches(db)
    assert set(before) == {("old", "chips"), ("a", "chips"), ("b", "chips")}

    # The watchlist changes in the file: SMIC's Chinese name leaves, ZTE arrives.
    new_themes = [
        THEMES[0],
        ThemeSpec(slug="chips", title="Chips", rules=("Huawei AND chip*", "ZTE")),
    ]
    async with db.transaction() as uow:
        await uow.themes.sync_from_config(new_themes, NOW)
    later = NOW + timedelta(hours=2)
    async with db.transaction() as uow:
        report = await classifier.reclassify(uow, NOW - timedelta(days=7), later)

    assert (report.items, report.matched_items) == (3, 2)
    assert (report.added, report.removed, report.kept) == (1, 1, 1)
    assert report.by_theme == {"chips": 2}
    assert "3 items" in report.summary()
    after = await matches(db)
    assert set(after) == {("old", "chips"), ("a", "chips"), ("c", "chips")}
    assert after[("a", "chips")].matched_at == NOW  # still matching: first match time kept
    assert after[("c", "chips")].matched_at == later


async def test_matches_of_a_disabled_theme_are_kept_as_history(db: Database) -> None:
    source = await setup(db)
    classifier = Classifier()
    await store(db, classifier, source, [item("1", "Huawei chip on the Entity List")])
    async with db.sessions.begin() as session:
        await session.execute(update(Theme).where(Theme.slug == "chips").values(enabled=False))
    async with db.transaction() as uow:
        report = await classifier.reclassify(uow, NOW - timedelta(days=1), NOW)
    assert report.removed == 0
    assert set(await matches(db)) == {("1", "export-controls"), ("1", "chips")}


async def test_dry_run_counts_recent_matches_with_examples_and_writes_nothing(
    db: Database,
) -> None:
    source = await setup(db)
    classifier = Classifier()
    await store(
        db,
        classifier,
        source,
        [
            item("1", "Huawei chip news", days_ago=1),
            item("2", "ZTE 5G chips", days_ago=2),
            item("3", "ZTE results", days_ago=5),
            item("4", "ZTE chips of old", days_ago=40),
            item("5", "Nothing relevant", days_ago=1),
        ],
    )
    async with db.transaction() as uow:
        result = await classifier.dry_run(uow, "chips", "ZTE OR Huawei", NOW, days=30)
    assert (result.items, result.matched, result.new_to_theme) == (4, 3, 2)
    assert [e.title for e in result.examples] == [
        "Huawei chip news",
        "ZTE 5G chips",
        "ZTE results",
    ]
    assert result.examples[1].terms == ("ZTE",)
    async with db.transaction() as uow:
        one = await classifier.dry_run(uow, "chips", "ZTE", NOW, days=30, examples=1)
    assert [e.title for e in one.examples] == ["ZTE 5G chips"]
    assert set(await matches(db)) == {("1", "chips")}


@pytest.mark.parametrize("rule", ['"unclosed', "NOT ZTE", ""])
async def test_dry_run_refuses_a_broken_rule_with_the_parser_message(
    db: Database, rule: str
) -> None:
    await setup(db)
    async with db.reading() as uow:
        with pytest.raises(RuleError):
            await Classifier().dry_run(uow, "chips", rule, NOW)


async def test_nothing_stored_means_nothing_classified(db: Database) -> None:
    await setup(db)
    async with db.transaction() as uow:
        await Classifier().classify_and_store(uow, StoreResult((), ()), NOW)
    assert await matches(db) == {}
