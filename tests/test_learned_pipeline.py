"""The learned layer against a real database (SQLite and PostgreSQL): a fresh install gets the
shipped models, items the model alone matches are stored and alerted with "similar to" and the
feedback buttons, editors' switch and rollbacks take effect without a restart, and training
stores versions from feedback."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from models.db.learned import KEEP_VERSIONS
from models.db.tables import Delivery, ItemTheme, Subscriber, Subscription, Theme
from models.learned import ModelSet, ThemeModel
from pipeline.classification import Classifier
from pipeline.learning import Example, shipped_indexes, shipped_models, train_models
from pipeline.planning import plan_new_items
from pipeline.training import TOLERANCE, TrainReport, retrain
from policywatch.seeding import seed
from tests.conftest import Database
from tests.test_classification import NOW, item, setup, store
from tests.test_learned import CHIPS, SMALL, corpus

ROOT = Path(__file__).resolve().parents[1]
PARAPHRASE = "Nvidia chip exports to China restricted again"
ADMIN = 42


def chips_model() -> ThemeModel:
    return train_models(["chips"], corpus(), corpus(), params=SMALL)[0].model


async def add_model(db: Database, model: ThemeModel, slug: str = "chips") -> int:
    async with db.transaction() as uow:
        theme = await uow.themes.get(slug)
        assert theme is not None
        return await uow.learned.add(
            theme.id, model.to_json(), {}, origin="trained", activate=True, now=NOW
        )


async def add_chips_subscriber(db: Database, chat_id: int) -> tuple[int, int]:
    """A private chat following "chips": (subscriber id, theme id)."""
    async with db.sessions.begin() as session:
        chips = await session.scalar(select(Theme).where(Theme.slug == "chips"))
        assert chips is not None
        sub = Subscriber(chat_id=chat_id, chat_type="private", created_at=NOW, updated_at=NOW)
        session.add(sub)
        await session.flush()
        session.add(Subscription(subscriber_id=sub.id, theme_id=chips.id, created_at=NOW))
        return sub.id, chips.id


async def stored(db: Database) -> dict[str, ItemTheme]:
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(Theme.slug, ItemTheme).join(Theme, Theme.id == ItemTheme.theme_id)
            )
        ).all()
    return {str(slug): row for slug, row in rows}


async def test_a_fresh_install_gets_the_shipped_models_once(db: Database) -> None:
    now = NOW
    report = await seed(db, ROOT / "config/sources.yaml", ROOT / "config/themes.yaml", now)
    assert len(report.models) == 6
    again = await seed(db, ROOT / "config/sources.yaml", ROOT / "config/themes.yaml", now)
    assert again.models == ()
    async with db.reading() as uow:
        versions = await uow.learned.versions()
        installed = await uow.learned.indexes(ModelSet(shipped_models()).indexes)
    assert {(v.version, v.origin, v.active) for v in versions} == {(1, "shipped", True)}
    assert installed == shipped_indexes()  # the neighbour index the shipped models read
    # and the classifier uses them: a foreign-model-dependence headline the rules miss
    source = await setup(db, [])
    classifier = Classifier()
    await store(
        db,
        classifier,
        source,
        [item("1", "Chinese startups rent overseas servers to keep using Claude and GPT-4o")],
    )
    layers = {slug: row.layer for slug, row in (await stored(db)).items()}
    assert layers.get("foreign-model-dependence") in {"model", "both"}


async def test_a_model_only_match_is_stored_and_alerted_with_its_nearest_example(
    db: Database,
) -> None:
    source = await setup(db)
    await add_model(db, chips_model())
    await add_chips_subscriber(db, 77)
    classifier = Classifier()
    async with db.transaction() as uow:
        result = await uow.items.store(source.id, [item("1", PARAPHRASE)], NOW)
        await classifier.classify_and_store(uow, result, NOW)
        await plan_new_items(uow, result, NOW)
    row = (await stored(db))["chips"]
    assert row.layer == "model"
    assert row.matched == []
    assert row.model is not None
    assert row.model["similar_to"] in CHIPS
    assert row.model["version"] == 1
    async with db.sessions() as session:
        delivery = await session.scalar(select(Delivery))
    assert delivery is not None
    [message] = delivery.payload["messages"]
    assert "learned model, similar to: <i>" in message["text"]
    buttons = [b for r in message["reply_markup"]["inline_keyboard"] for b in r]
    item_id = result.new[0].id
    assert {"text": "👍 Relevant", "callback_data": f"fb:u:{item_id}"} in buttons
    assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)


async def test_editors_switch_and_rollback_take_effect_without_a_restart(db: Database) -> None:
    source = await setup(db)
    classifier = Classifier()
    await add_model(db, chips_model())
    await store(db, classifier, source, [item("1", PARAPHRASE)])
    assert "chips" in await stored(db)

    async with db.transaction() as uow:  # /watch model chips off
        chips = await uow.themes.get("chips")
        assert chips is not None
        assert await uow.learned.set_model_enabled(chips.id, False) is True
    await store(db, classifier, source, [item("2", PARAPHRASE + " (update)")])
    async with db.sessions() as session:
        ids = (await session.scalars(select(ItemTheme.item_id))).all()
    assert len(ids) == 1  # the second item was not matched: rules alone

    async with db.transaction() as uow:  # back on, then a useless version 2, then roll back
        await uow.learned.set_model_enabled(chips.id, True)
    useless = ThemeModel("chips", SMALL.config, {}, -10.0, 0.5)
    assert await add_model(db, useless) == 2
    await store(db, classifier, source, [item("3", PARAPHRASE + " once more")])
    async with db.sessions() as session:
        assert len((await session.scalars(select(ItemTheme.item_id))).all()) == 1
    async with db.transaction() as uow:
        assert await uow.learned.rollback(chips.id) == 1
        assert await uow.learned.rollback(chips.id) is None  # nothing older than 1
    await store(db, classifier, source, [item("4", PARAPHRASE + " yet again")])
    async with db.sessions() as session:
        assert len((await session.scalars(select(ItemTheme.item_id))).all()) == 2


async def test_training_waits_for_feedback_and_learns_from_it(db: Database) -> None:
    source = await setup(db)
    report = await retrain(db, NOW, min_votes=1, training=corpus(), validation=corpus())
    assert report.skipped == "no feedback yet"

    classifier = Classifier()
    result = await store(db, classifier, source, [item("1", "Huawei chip plant opens")])
    sub_id, chips_id = await add_chips_subscriber(db, 5)
    async with db.transaction() as uow:  # what a 👍 under the alert stores
        await uow.feedback.record(
            subscriber_id=sub_id,
            user_id=5,
            item_id=result.new[0].id,
            theme_ids=[chips_id],
            verdict="up",
            now=NOW,
        )
    later = NOW + timedelta(hours=1)
    report = await retrain(
        db, later, min_votes=1, params=SMALL, training=corpus(), validation=corpus()
    )
    assert report.skipped is None
    assert report.feedback_examples == 1
    assert [(v.slug, v.version, v.activated) for v in report.versions] == [("chips", 1, True)]
    again = await retrain(db, later, min_votes=1, params=SMALL, training=corpus())
    assert again.skipped == "no new feedback since the last training"
    async with db.reading() as uow:
        [version] = await uow.learned.versions("chips")
    assert version.active
    assert version.metrics["trained_on"] == len(corpus()) + 1


async def test_a_training_that_validates_worse_is_stored_but_not_used(db: Database) -> None:
    await setup(db)
    async with db.transaction() as uow:
        chips = await uow.themes.get("chips")
        assert chips is not None
        perfect = {"combined": {"precision": 1.0, "recall": 1.0, "f1": 1.0}}
        await uow.learned.add(
            chips.id, chips_model().to_json(), perfect, origin="trained", activate=True, now=NOW
        )
    admin, _ = await add_chips_subscriber(db, ADMIN)
    await add_chips_subscriber(db, ADMIN + 1)  # a subscriber, not an admin
    # validated on headlines it learned as chips, but labelled otherwise: it cannot score 1.0
    doubtful = [*corpus(), *(Example(t, "", frozenset()) for t in CHIPS[:4])]

    async def train(at: datetime) -> TrainReport:
        return await retrain(
            db,
            at,
            min_votes=1,
            force=True,
            params=SMALL,
            training=corpus(),
            validation=doubtful,
            admin_ids=[ADMIN],
        )

    report = await train(NOW)
    [held] = report.versions
    assert (held.version, held.activated) == (2, False)
    assert held.metrics["combined"]["f1"] < 1.0 - TOLERANCE
    assert "v2 stored, NOT activated" in report.lines()[1]
    assert "/watch model chips use 2" in report.lines()[1]
    # the editors hear of it in their chat, through the outbox
    async with db.sessions() as session:
        [notice] = (await session.scalars(select(Delivery))).all()
    assert (notice.subscriber_id, notice.kind) == (admin, "notice")
    text = notice.payload["messages"][0]["text"]
    assert f"• chips v2: F1 {held.validation_f1:.3f} against 1.000 for v1" in text
    assert "/watch model chips use 2 turns one on" in text
    async with db.reading() as uow:
        assert [(v.version, v.active) for v in await uow.learned.versions("chips")] == [
            (2, False),
            (1, True),
        ]
    async with db.transaction() as uow:  # the active one validated no better: the next is used
        await uow.learned.activate(chips.id, 2)
    report = await train(NOW + timedelta(hours=1))
    assert [(v.version, v.activated) for v in report.versions] == [(3, True)]
    async with db.sessions() as session:  # nothing held back, nothing to tell
        assert len((await session.scalars(select(Delivery))).all()) == 1


async def test_old_versions_are_pruned_but_the_active_one_stays(db: Database) -> None:
    await setup(db)
    model = ThemeModel("chips", SMALL.config, {}, -1.0, 0.5)
    first = await add_model(db, model)
    async with db.transaction() as uow:
        chips = await uow.themes.get("chips")
        assert chips is not None
        for _ in range(KEEP_VERSIONS + 2):  # stored, never activated
            await uow.learned.add(
                chips.id, model.to_json(), {}, origin="trained", activate=False, now=NOW
            )
        versions = await uow.learned.versions("chips")
    assert len(versions) == KEEP_VERSIONS + 1
    assert [v.version for v in versions if v.active] == [first]
