"""Feedback buttons and the learned layer's editor commands, through the real PTB application
against the loopback fake Bot API: what each person sees, and what is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from models.db import UnitOfWork
from models.db.tables import AuditLog, Delivery, Feedback, Item, Source, Theme
from models.learned import FeatureConfig, ThemeModel
from tests.botkit import EDITOR, NOW, USER, BotHarness, bot_harness
from tests.conftest import Database
from tests.test_bot_handlers import seed

OTHER = 903


@pytest.fixture
async def bot(db: Database) -> AsyncIterator[BotHarness]:
    await seed(db)
    async with bot_harness(db) as harness:
        await harness.send(f"/admin grant {EDITOR} editor", chat_id=900)
        yield harness


async def ids(db: Database) -> tuple[int, int, int]:
    """(the Entity List item, the export-controls theme, the china-ai theme)."""
    async with db.sessions() as session:
        item = await session.scalar(select(Item.id).where(Item.external_id == "2026-1"))
        ec = await session.scalar(select(Theme.id).where(Theme.slug == "export-controls"))
        ai = await session.scalar(select(Theme.id).where(Theme.slug == "china-ai"))
    assert item is not None
    assert ec is not None
    assert ai is not None
    return item, ec, ai


async def verdicts(db: Database) -> list[tuple[int, int, str]]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(Feedback.item_id, Feedback.theme_id, Feedback.verdict).order_by(Feedback.id)
        )
        return [(a, b, c) for a, b, c in rows.all()]


def answers(bot: BotHarness) -> list[str]:
    return [str(c["text"]) for c in bot.calls("answerCallbackQuery")]


async def test_thumbs_are_stored_per_chat_and_answered_privately(
    bot: BotHarness, db: Database
) -> None:
    item, ec, _ = await ids(db)
    await bot.press(f"fb:u:{item}")
    assert await verdicts(db) == [(item, ec, "up")]
    assert answers(bot)[-1] == "Thanks: noted as relevant."
    await bot.press(f"fb:u:{item}")
    assert answers(bot)[-1] == "Already noted, thank you."
    await bot.press(f"fb:d:{item}")  # a change of mind replaces the verdict
    assert await verdicts(db) == [(item, ec, "down")]
    await bot.press(f"fb:u:{item}", chat_id=OTHER)  # another chat's verdict is its own
    assert sorted(await verdicts(db)) == sorted([(item, ec, "down"), (item, ec, "up")])
    assert not bot.fake.messages_to(OTHER)  # a toast, never a message


async def test_wrong_theme_names_one_theme_and_stale_buttons_record_nothing(
    bot: BotHarness, db: Database
) -> None:
    item, ec, ai = await ids(db)
    await bot.press(f"fb:w:{item}:{ec}")
    assert await verdicts(db) == [(item, ec, "wrong")]
    assert answers(bot)[-1] == "Thanks: noted as not about US export controls."
    await bot.press(f"fb:w:{item}:{ai}")  # the item never matched that theme
    await bot.press("fb:u:99999999")  # an item that is gone
    await bot.press(f"fb:w:{item}")  # malformed: wrong theme without a theme
    await bot.press("fb:x:1")
    assert await verdicts(db) == [(item, ec, "wrong")]
    assert answers(bot)[-4:] == [
        "This item no longer matches that theme; nothing was recorded.",
        "This item no longer matches that theme; nothing was recorded.",
        "This button is no longer valid.",
        "This button is no longer valid.",
    ]


async def test_a_press_judges_the_themes_its_alert_named_as_sure_as_they_were_then(
    bot: BotHarness, db: Database
) -> None:
    """A news item matches both themes the reader follows; only export-controls alerts at once
    (china-ai goes to digests). 👎 under that alert judges export-controls alone, and the verdict
    keeps that the match was sure when it went out (no model judged the theme then): a model
    switched on later does not make it an unsure alert that counts against the feed."""
    from models.alerts import BurstPolicy
    from models.feedback import WaryPolicy
    from pipeline.planning import plan_items, wary_sources
    from tests.delivery_world import add_items, match

    await bot.send("/subscribe export-controls")
    await bot.send("/subscribe china-ai")
    async with db.sessions.begin() as session:
        news = await session.scalar(select(Source).where(Source.name == "news"))
        ec = await session.scalar(select(Theme).where(Theme.slug == "export-controls"))
        ai = await session.scalar(select(Theme).where(Theme.slug == "china-ai"))
        assert news is not None
        assert ec is not None
        assert ai is not None
        stored = await add_items(session, news, ["Entity List adds 生成式人工智能 firms"], NOW)
        await match(session, stored, ec, ["Entity List"], NOW)
        await match(session, stored, ai, ["生成式人工智能"], NOW)
        plan = await plan_items(UnitOfWork(session), stored.new, NOW, policy=BurstPolicy())
    [alert] = plan.alerts
    assert alert.theme_ids == (ec.id,)
    item = stored.new[0].id

    await bot.press(f"fb:d:{item}")
    assert await verdicts(db) == [(item, ec.id, "down")]
    async with db.sessions() as session:
        assert (await session.scalars(select(Feedback.sure))).all() == [True]

    async with db.transaction() as uow:  # a model for the theme, switched on afterwards
        model = ThemeModel("export-controls", FeatureConfig(), {}, 0.0, 0.5)
        await uow.learned.add(ec.id, model.to_json(), {}, origin="trained", activate=True, now=NOW)
    async with db.reading() as uow:
        assert await wary_sources(uow, WaryPolicy(min_alerts=1), NOW) == {}


async def test_an_event_alert_judges_only_the_themes_its_own_item_alerted_for(
    bot: BotHarness, db: Database
) -> None:
    """One event, two new items: the news item (first) matches both themes, but its feed sends
    china-ai matches to digests; the Federal Register item brings china-ai to the alert. The
    alert names both themes, yet its buttons judge the news item, so 👎 and "wrong theme" are
    about export-controls alone: the news feed's china-ai match never alerted anyone."""
    from models.alerts import BurstPolicy
    from models.db.tables import Event, ItemEvent, Subscriber, Subscription
    from pipeline.planning import plan_items
    from tests.delivery_world import add_items, match

    await bot.send("/subscribe export-controls")
    await bot.send("/subscribe china-ai")
    async with db.sessions.begin() as session:
        sources = {s.name: s for s in (await session.scalars(select(Source))).all()}
        themes = {t.slug: t for t in (await session.scalars(select(Theme))).all()}
        ec, ai = themes["export-controls"], themes["china-ai"]
        ai.priority = "instant"
        await session.execute(update(Subscription).values(mode="instant"))
        sources["news"].digest_themes = ["china-ai"]
        reader = await session.scalar(select(Subscriber).where(Subscriber.chat_id == USER))
        assert reader is not None
        reader.digest_mode, reader.digest_time = "daily", "08:00"
        first = await add_items(session, sources["news"], ["Entity List and 生成式人工智能"], NOW)
        later = await add_items(
            session, sources["fr-bis"], ["生成式人工智能 rule"], NOW + timedelta(minutes=30)
        )
        await match(session, first, ec, ["Entity List"], NOW)
        await match(session, first, ai, ["生成式人工智能"], NOW)
        await match(session, later, ai, ["生成式人工智能"], NOW)
        event = Event(title="one story", first_at=NOW, last_at=NOW, created_at=NOW, updated_at=NOW)
        session.add(event)
        await session.flush()
        for stored in (first, later):
            session.add(
                ItemEvent(
                    item_id=stored.new[0].id, event_id=event.id, reason="test", assigned_at=NOW
                )
            )
        await session.flush()
        new = [*first.new, *later.new]
        plan = await plan_items(
            UnitOfWork(session), new, NOW + timedelta(hours=1), policy=BurstPolicy()
        )
    [alert] = plan.alerts
    item = first.new[0].id
    assert (alert.item_id, set(alert.theme_ids)) == (item, {ec.id, ai.id})
    async with db.sessions() as session:
        payload = await session.scalar(select(Delivery.payload).where(Delivery.item_id == item))
    assert payload is not None
    keyboard = payload["messages"][0]["reply_markup"]["inline_keyboard"]
    datas = [b["callback_data"] for row in keyboard for b in row]
    assert f"fb:w:{item}:{ec.id}" in datas
    assert f"fb:w:{item}:{ai.id}" not in datas

    await bot.press(f"fb:d:{item}")
    await bot.press(f"fb:w:{item}:{ai.id}")  # no such button under this alert: judges nothing
    assert await verdicts(db) == [(item, ec.id, "down")]


async def test_a_digest_entrys_thumbs_judge_the_theme_it_is_listed_under(
    bot: BotHarness, db: Database
) -> None:
    """Under a digest, 👍 / 👎 name the entry's theme: the press judges that theme alone (not
    the other theme of the item the chat follows), replaces an earlier verdict on it, and
    records nothing for a theme the item no longer matches."""
    item, ec, ai = await ids(db)
    await bot.send("/subscribe export-controls")
    await bot.send("/subscribe china-ai")
    async with db.sessions.begin() as session:
        from models.db.tables import ItemTheme

        session.add(ItemTheme(item_id=item, theme_id=ai, matched=[], matched_at=NOW))
    await bot.press(f"fb:d:{item}:{ai}")
    assert await verdicts(db) == [(item, ai, "down")]
    assert answers(bot)[-1] == "Thanks: noted as not about China AI policy."  # which entry
    async with db.sessions() as session:  # only unsure entries carry them
        assert (await session.scalars(select(Feedback.sure))).all() == [False]
    await bot.press(f"fb:u:{item}:{ai}")
    assert await verdicts(db) == [(item, ai, "up")]
    assert answers(bot)[-1] == "Thanks: noted as about China AI policy."
    async with db.sessions.begin() as session:  # an editor's fix: no longer china-ai
        from sqlalchemy import delete

        from models.db.tables import ItemTheme

        await session.execute(
            delete(ItemTheme).where(ItemTheme.item_id == item, ItemTheme.theme_id == ai)
        )
    await bot.press(f"fb:d:{item}:{ai}")
    assert await verdicts(db) == [(item, ai, "up")]
    assert answers(bot)[-1] == "This item no longer matches that theme; nothing was recorded."
    await bot.press(f"fb:d:{item}")  # the alert's own 👎 still judges what the chat follows
    assert sorted(await verdicts(db)) == sorted([(item, ai, "up"), (item, ec, "down")])


async def test_a_wary_feed_comes_back_when_digest_readers_judge_its_held_matches_right(
    bot: BotHarness, db: Database
) -> None:
    """Five 👎 on a feed's model-only alerts send its next ones to the reader's digest; when the
    reader judges five of those held matches right with the digest's 👍, the feed alerts again
    (exploring off, so only the digest's verdicts can bring it back)."""
    from models.alerts import BurstPolicy
    from models.db.tables import Subscriber
    from models.feedback import WaryPolicy
    from pipeline.planning import plan_items
    from tests.delivery_world import add_items, match

    closed = WaryPolicy(explore_every=0)
    await bot.send("/subscribe export-controls")
    async with db.sessions.begin() as session:
        news = await session.scalar(select(Source).where(Source.name == "news"))
        ec = await session.scalar(select(Theme).where(Theme.slug == "export-controls"))
        reader = await session.scalar(select(Subscriber).where(Subscriber.chat_id == USER))
        assert news is not None
        assert ec is not None
        assert reader is not None
        reader.digest_mode, reader.digest_time = "daily", "08:00"
        wrong = await add_items(session, news, [f"rumour {n}" for n in range(5)], NOW, prefix="w")
        await match(session, wrong, ec, [], NOW, layer="model")
    for item in wrong.new:
        await bot.press(f"fb:d:{item.id}")

    async def alerted(prefix: str, count: int) -> tuple[list[int], bool]:
        """``count`` new model-only items of the feed, planned: their ids, and whether any
        alerted the reader."""
        async with db.sessions.begin() as session:
            assert news is not None
            assert ec is not None
            stored = await add_items(
                session, news, [f"{prefix} {n}" for n in range(count)], NOW, prefix=prefix
            )
            await match(session, stored, ec, [], NOW, layer="model")
            plan = await plan_items(
                UnitOfWork(session), stored.new, NOW, policy=BurstPolicy(), wary=closed
            )
        return [i.id for i in stored.new], bool(plan.alerts)

    held, any_alert = await alerted("held", 5)
    assert not any_alert  # wary: they wait for the digest
    for held_id in held:  # the digest lists them with 👍 / 👎; the reader finds them right
        await bot.press(f"fb:u:{held_id}:{ec.id}")
    _, any_alert = await alerted("later", 1)
    assert any_alert


async def test_editors_see_precision_from_feedback_as_counts_only(
    bot: BotHarness, db: Database
) -> None:
    item, ec, _ = await ids(db)
    async with db.sessions.begin() as session:  # the match as the classifier records it
        from models.db.tables import ItemTheme

        row = await session.get(ItemTheme, (item, ec))
        assert row is not None
        row.rules, row.layer = ['"Entity List"'], "rules"
        # a news item the model alone matched: the noisier source
        news = await session.scalar(select(Item.id).where(Item.external_id == "n-1"))
        assert news is not None
        session.add(ItemTheme(item_id=news, theme_id=ec, matched=[], matched_at=NOW, layer="model"))
    await bot.press(f"fb:u:{item}")
    await bot.press(f"fb:d:{item}", chat_id=OTHER)
    await bot.press(f"fb:d:{item}", chat_id=OTHER + 1)
    await bot.press(f"fb:d:{news}", chat_id=OTHER)
    await bot.press(f"fb:w:{news}:{ec}", chat_id=OTHER + 1)

    [refused] = await bot.send("/watch stats")
    assert "only for editors" in refused

    [text] = await bot.send("/watch stats", chat_id=EDITOR)
    assert "export-controls: 0.20 (1 👍 / 4 👎)" in text
    assert "by layer: rules 0.33 (1 👍 / 2 👎) · model 0.00 (0 👍 / 2 👎)" in text
    assert "by source: news 0.00 (0 👍 / 2 👎) · fr-bis 0.33 (1 👍 / 2 👎)" in text
    assert '"Entity List": 0.33 (1 👍 / 2 👎)' in text
    for who in (str(USER), str(OTHER), "analyst"):
        assert who not in text

    [one] = await bot.send("/watch stats china-ai", chat_id=EDITOR)
    assert "china-ai: no feedback" in one
    assert "export-controls" not in one


async def test_editors_see_which_sources_unsure_matches_feedback_sent_to_digests(
    bot: BotHarness, db: Database
) -> None:
    """Subscribers answered 👎 (or "wrong theme") to four of a news feed's model-only
    export-controls alerts and 👍 to one: /watch stats says its unsure matches of that theme
    now wait for digests (the planner's rule 3), with the counts that decided it and nobody's
    name."""
    from models.db.tables import ItemTheme, Source

    async with db.sessions.begin() as session:
        news = await session.scalar(select(Source.id).where(Source.name == "news"))
        ec = await session.scalar(select(Theme.id).where(Theme.slug == "export-controls"))
        assert news is not None
        assert ec is not None
        items = [
            Item(
                source_id=news,
                external_id=f"wary-{n}",
                title=f"Chip rumour {n}",
                url=f"https://news.example/w{n}",
                published_at=NOW,
                first_seen_at=NOW,
                content_hash=f"w{n}",
            )
            for n in range(5)
        ]
        session.add_all(items)
        await session.flush()
        session.add_all(
            ItemTheme(item_id=i.id, theme_id=ec, matched=[], matched_at=NOW, layer="model")
            for i in items
        )
        ids = [i.id for i in items]
    for n, item in enumerate(ids[:3]):
        await bot.press(f"fb:d:{item}", chat_id=OTHER + n % 2)
    await bot.press(f"fb:u:{ids[3]}")
    [text] = await bot.send("/watch stats export-controls", chat_id=EDITOR)
    assert "unsure matches wait for digests" not in text  # four judged alerts are too few
    await bot.press(f"fb:w:{ids[4]}:{ec}", chat_id=OTHER)
    [text] = await bot.send("/watch stats export-controls", chat_id=EDITOR)
    assert (
        "unsure matches wait for digests, from feedback on their alerts: news 0.20 (1 👍 / 4 👎)."
        " One in 4 still alerts, and digest readers judge the held ones with the digest's 👍 / 👎."
    ) in text
    assert "An admin keeps them instant: /source trust news export-controls" in text
    for who in (str(USER), str(OTHER), "analyst"):
        assert who not in text
    await bot.send("/source trust news export-controls", chat_id=900)  # 900: an admin
    [text] = await bot.send("/watch stats export-controls", chat_id=EDITOR)
    assert "unsure matches wait for digests" not in text


async def test_editors_turn_a_themes_model_off_roll_it_back_and_use_a_held_back_version(
    bot: BotHarness, db: Database
) -> None:
    _, ec, _ = await ids(db)
    async with db.transaction() as uow:
        for bias in (-1.0, -2.0):
            model = ThemeModel("export-controls", FeatureConfig(), {}, bias, 0.5)
            await uow.learned.add(ec, model.to_json(), {}, origin="trained", activate=True, now=NOW)

    [listing] = await bot.send("/watch model export-controls", chat_id=EDITOR)
    assert "Learned model of export-controls: on" in listing
    assert "v2 trained" in listing
    assert "← active" in listing.split("v2")[1].split("\n")[0]

    [off] = await bot.send("/watch model export-controls off", chat_id=EDITOR)
    assert "is off: its rules alone decide" in off
    async with db.reading() as uow:
        assert await uow.learned.model_switches() == {"china-ai": True, "export-controls": False}
        assert await uow.learned.active_key() == ()

    [back] = await bot.send("/watch model export-controls rollback", chat_id=EDITOR)
    assert "now uses version 1 (was 2)" in back
    [none] = await bot.send("/watch model export-controls rollback", chat_id=EDITOR)
    assert "no older version" in none
    [bad] = await bot.send("/watch model export-controls sideways", chat_id=EDITOR)
    assert "Choose on, off, rollback or use <version>" in bad

    # A training that validated worse stores its version without using it (here v3); the
    # listing says so, and an editor who trusts it over the validation split turns it on.
    async with db.transaction() as uow:
        model = ThemeModel("export-controls", FeatureConfig(), {}, -3.0, 0.5)
        await uow.learned.add(ec, model.to_json(), {}, origin="trained", activate=False, now=NOW)
        await uow.learned.activate(ec, 2)
    [on] = await bot.send("/watch model export-controls on", chat_id=EDITOR)
    assert "is on: rules OR model" in on
    [stats] = await bot.send("/watch stats export-controls", chat_id=EDITOR)
    assert "model v2 (v3 newer, not in use: /watch model export-controls)" in stats
    [listing] = await bot.send("/watch model export-controls", chat_id=EDITOR)
    assert "v3 trained" in listing.split("\n")[1]
    assert listing.split("\n")[1].endswith("newer, not in use")
    assert listing.split("\n")[2].endswith("← active")
    assert "use <version>" in listing
    for wrong, says in (
        ("use", "Name one stored version"),
        ("use 2 3", "Name one stored version"),
        ("use latest", "Name one stored version"),
        ("use 9", "has no version 9"),
        ("off now", "takes nothing more"),
    ):
        [refused] = await bot.send(f"/watch model export-controls {wrong}", chat_id=EDITOR)
        assert says in refused, (wrong, refused)
    [forward] = await bot.send("/watch model export-controls use v3", chat_id=EDITOR)
    assert "now uses version 3 (was 2)" in forward
    async with db.reading() as uow:
        active = await uow.learned.active_version(ec)
    assert active is not None
    assert active.version == 3
    [stats] = await bot.send("/watch stats export-controls", chat_id=EDITOR)
    assert "model v3" in stats
    assert "newer" not in stats
    [refused] = await bot.send("/watch model export-controls use 1")
    assert "only for editors" in refused
    async with db.reading() as uow:
        active = await uow.learned.active_version(ec)
    assert active is not None
    assert active.version == 3

    async with db.sessions() as session:
        rows = (await session.scalars(select(AuditLog).order_by(AuditLog.id))).all()
    assert [r.action for r in rows][-4:] == ["model.off", "model.rollback", "model.on", "model.use"]
    assert (rows[-1].before, rows[-1].after) == ({"version": 2}, {"version": 3})


def test_stats_name_a_noisy_source_with_the_lever_for_it() -> None:
    from bot.learning_replies import stats_reply
    from models.feedback import FeedbackStats, Tally

    stats = FeedbackStats(
        by_theme={"export-controls": Tally(9, 7)},
        by_source={
            ("export-controls", "sanctions-news"): Tally(2, 6),  # 0.25 on 8 verdicts
            ("export-controls", "fr-bis"): Tally(6, 0),
            ("export-controls", "new-feed"): Tally(0, 1),  # too few verdicts to judge
        },
    )
    (text,) = stats_reply(stats, {"export-controls": True}, {})
    assert (
        "noisy: sanctions-news. An admin can send a source's matches to digests only: "
        "/source digest sanctions-news"
    ) in text
    (clean,) = stats_reply(
        FeedbackStats(by_theme={"x": Tally(6, 0)}, by_source={("x", "fr-bis"): Tally(6, 0)}),
        {"x": True},
        {},
    )
    assert "noisy" not in clean
    wary = {("sanctions-news", "export-controls"): Tally(1, 6)}
    (closed,) = stats_reply(stats, {"export-controls": True}, {}, wary=wary, explore_every=0)
    assert "sanctions-news 0.14 (1 👍 / 6 👎). Digest readers judge the held ones" in closed
    assert "still alerts" not in closed


def test_an_alerts_stored_themes_are_read_back_defensively() -> None:
    """The themes an alert's row recorded survive the notifier's rewrites of its payload; what is
    not a row id (a hand-edited or corrupted row) is dropped, and what is not a list is as if
    nothing was recorded (the press then judges the themes the chat follows, as before)."""
    from models.outbox import payload_from_json

    kept = payload_from_json({"messages": [], "themes": [3, 7], "sure": [7], "sent": 1})
    assert (kept.get("themes"), kept.get("sure")) == ([3, 7], [7])
    broken = payload_from_json({"themes": [True, -1, "4", 2.0, 5, None], "sure": "7"})
    assert (broken.get("themes"), "sure" in broken) == ([5], False)
    assert "themes" not in payload_from_json({"themes": {"3": 1}})
