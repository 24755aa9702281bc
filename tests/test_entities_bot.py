"""``/entity`` and ``/watch org`` through the bot (fake Bot API, SQLite and PostgreSQL), and a
subscriber's own watched organisation turning a new item into an alert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models.alerts import BurstPolicy
from models.db.tables import AuditLog, Delivery, Source, Subscriber, Theme, WatchedOrg
from models.fields import CslEntity
from models.items import ItemData
from pipeline.planning import plan_items
from pipeline.watching import PersonalWatches
from scrapers.csl import parse_csl
from tests.botkit import EDITOR, NOW, USER, BotHarness, bot_harness
from tests.conftest import Database

SNAPSHOT = Path(__file__).parent / "data" / "csl" / "csl_snapshot_2.csv"


async def seed(db: Database) -> None:
    async with db.sessions.begin() as session:
        session.add_all(
            [
                Theme(slug="export-controls", title="US export controls"),
                Source(name="csl", kind="csl", url="https://csl.example/", interval_seconds=3600),
                Subscriber(chat_id=EDITOR, chat_type="private", user_id=EDITOR, role="editor"),
            ]
        )
    async with db.transaction() as uow:
        source = await uow.sources.get("csl")
        assert source is not None
        await uow.csl.record_baseline(source.id, parse_csl(SNAPSHOT.read_bytes(), {}).entries, NOW)


@pytest.fixture
async def bot(db: Database) -> AsyncIterator[BotHarness]:
    await seed(db)
    async with bot_harness(db) as harness:
        yield harness


async def count(db: Database, model: object) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


async def test_entity_finds_an_alias_with_its_list_date_notice_and_address(bot: BotHarness) -> None:
    [reply] = await bot.send("/entity zhipu ai")
    assert "Beijing Zhipu Huazhang Technology Co., Ltd." in reply
    assert "Entity List, since 2025-01-16" in reply
    assert "90 FR 4617" in reply
    assert "Zhongguancun East Road" in reply
    assert "Chengdu Zhipu" not in reply  # a subsidiary is another entry
    assert '<a href="https://www.federalregister.gov/citation/90-FR-4617">' in bot.last().text


async def test_entity_forgives_typos_and_legal_forms(bot: BotHarness) -> None:
    [reply] = await bot.send("/entity Huawei Technolgies Co Ltd")
    assert "Huawei Technologies Co., Ltd." in reply
    [reply] = await bot.send("/entity 華為")  # Traditional script, romanised to huawei
    assert "Huawei Technologies Co., Ltd." in reply


async def test_entity_not_found_offers_the_closest_names(bot: BotHarness) -> None:
    [reply] = await bot.send("/entity Cambricorn Widgets International")
    assert reply.startswith("No entry on the US screening lists matches")
    assert "Closest names:" in reply
    assert "Cambricon Technologies" in reply


async def test_chinese_input_finds_pinyin_names_and_a_watchs_aliases(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    [reply] = await bot.send("/entity 智谱")  # romanised: zhipu = the alias "Zhipu AI"
    assert "Beijing Zhipu Huazhang Technology Co., Ltd." in reply
    # Cambricon is a brand, not pinyin: found as a known organisation (models/data/known_orgs.json)
    # even when the short list by spelling is too short to hold it, as among the real lists'
    # thousands of names
    monkeypatch.setattr("pipeline.entities.SHORTLIST", 3)
    [reply] = await bot.send("/entity 寒武纪")
    assert "Cambricon Technologies" in reply
    assert "Also looked for: Cambricon;" in reply
    assert "Shanghai Cambricon Information Technology" not in reply  # a subsidiary, listed apart
    # a name the program cannot know, given by the user as a watched organisation's alias
    [reply] = await bot.send("/entity 天玄芯片所")
    assert reply.startswith("No entry")
    [reply] = await bot.send("/watch org add 天玄芯片所; Tianxuan Microelectronics")
    assert "Watching 天玄芯片所 (also Tianxuan Microelectronics) in your watch list" in reply
    [reply] = await bot.send("/entity 天玄芯片所")
    assert "Tianxuan Microelectronics Research Institute" in reply
    assert "Also looked for: Tianxuan Microelectronics" in reply


async def test_watch_org_for_a_theme_is_for_editors_and_audited(
    bot: BotHarness, db: Database
) -> None:
    [reply] = await bot.send("/watch org add theme:export-controls Sophgo; 算能")
    assert reply == "Sorry, watching an organisation for a theme is only for editors and admins."
    assert await count(db, WatchedOrg) == 0
    [reply] = await bot.send("/watch org add theme:export-controls Sophgo; 算能", chat_id=EDITOR)
    assert "Watching Sophgo (also 算能) in the export-controls theme" in reply
    [reply] = await bot.send(
        "/watch org add theme:export-controls SOPHGO; Suanneng", chat_id=EDITOR
    )
    assert "already watched" in reply
    assert "Suanneng" in reply
    [reply] = await bot.send("/watch org list")
    assert "Theme export-controls (1)" in reply
    assert "Sophgo — also 算能; Suanneng" in reply
    [reply] = await bot.send("/watch org remove theme:export-controls 算能", chat_id=EDITOR)
    assert reply == "Stopped watching Sophgo in the export-controls theme."
    assert await count(db, WatchedOrg) == 0
    assert await count(db, AuditLog) == 3  # added, aliases added, removed
    [reply] = await bot.send("/watch add export-controls Sophgo")  # rules stay editors' only
    assert reply == "Sorry, /watch is only for editors and admins."


async def test_a_groups_own_watched_organisations_change_only_for_its_admins(
    bot: BotHarness, db: Database
) -> None:
    """A group's watched organisations alert the whole group: like its subscriptions, only its
    admins change them; everyone may list them. The replies speak of the chat, not "you"."""
    group, member, admin = -100777, USER, 4242
    bot.fake.chat_admins[group] = {admin}
    for command in ("/watch org add Huawei; 华为", "/watch org remove Huawei"):
        [refused] = await bot.send(command, chat_id=group, user_id=member, chat_type="supergroup")
        assert "only the group's admins" in refused, command
    assert await count(db, WatchedOrg) == 0
    [added] = await bot.send(
        "/watch org add Huawei; 华为", chat_id=group, user_id=admin, chat_type="supergroup"
    )
    assert added.startswith("Watching Huawei (also 华为) in this chat's watch list:")
    [listed] = await bot.send(
        "/watch org list", chat_id=group, user_id=member, chat_type="supergroup"
    )
    assert listed.startswith("This chat's watched organisations (1)\n• Huawei — also 华为")
    [removed] = await bot.send(
        "/watch org remove 华为", chat_id=group, user_id=admin, chat_type="supergroup"
    )
    assert removed == "Stopped watching Huawei in this chat's watch list."
    assert await count(db, WatchedOrg) == 0


async def test_watch_org_usage_errors_change_nothing(bot: BotHarness, db: Database) -> None:
    for text in ("/watch org add", "/watch org add ;;", "/watch org frobnicate x", "/entity"):
        [reply] = await bot.send(text)
        assert "Usage:" in reply
    assert await count(db, WatchedOrg) == 0


async def test_a_subscribers_own_watch_alerts_an_item_that_names_it(db: Database) -> None:
    await seed(db)
    async with db.transaction() as uow:
        chat = await uow.subscribers.ensure(
            chat_id=USER, chat_type="private", user_id=USER, title="me", now=NOW
        )
        await uow.watched.add(
            name="Zhipu AI", aliases=["智谱"], subscriber_id=chat.id, user_id=USER, now=NOW
        )
        source = await uow.sources.get("csl")
        assert source is not None
        stored = await uow.items.store(
            source.id,
            [
                ItemData("a", "智譜發布新模型", published_at=NOW),  # Traditional script
                ItemData("b", "Moonshot AI raises funds", published_at=NOW),
                ItemData("c", "Zhipu AI shares surge", published_at=NOW - timedelta(days=30)),
            ],
            NOW,
        )
        plan = await plan_items(
            uow,
            stored.new,
            NOW,
            policy=BurstPolicy(),
            max_age=timedelta(days=3),
            watches=PersonalWatches(),
        )
    assert len(plan.alerts) == 1  # "b" names nobody watched; "c" is old news
    async with db.sessions() as session:
        (delivery,) = (await session.scalars(select(Delivery))).all()
    text = delivery.payload["messages"][0]["text"]
    assert "智譜發布新模型" in text
    assert "Your watched organisations — matched: <i>Zhipu AI</i>" in text


async def test_a_muted_chat_with_a_digest_keeps_its_own_watch_matches_for_after_the_mute(
    db: Database,
) -> None:
    # The digest lists subscribed themes only; a chat's own watches are not in it, so what
    # they match while the chat is muted waits for the "while you were muted" summary.
    await seed(db)
    until = NOW + timedelta(hours=8)
    async with db.transaction() as uow:
        chat = await uow.subscribers.ensure(
            chat_id=USER, chat_type="private", user_id=USER, title="me", now=NOW
        )
        await uow.subscribers.set_digest(
            chat.id, mode="daily", digest_time="08:00", weekday=None, now=NOW
        )
        await uow.subscribers.set_muted_until(chat.id, until, NOW)
        await uow.watched.add(
            name="Zhipu AI", aliases=["智谱"], subscriber_id=chat.id, user_id=USER, now=NOW
        )
        source = await uow.sources.get("csl")
        assert source is not None
        stored = await uow.items.store(
            source.id, [ItemData("a", "智谱发布新模型", published_at=NOW)], NOW
        )
        plan = await plan_items(
            uow, stored.new, NOW, policy=BurstPolicy(), watches=PersonalWatches()
        )
    assert plan.alerts == ()
    [hold] = plan.holds
    assert hold.until == until
    async with db.sessions() as session:
        (delivery,) = (await session.scalars(select(Delivery).where(Delivery.kind == "held"))).all()
    assert delivery.next_attempt_at == until
    assert "智谱发布新模型" in delivery.payload["messages"][0]["text"]


async def test_editors_teach_names_that_entity_and_watches_then_use(
    bot: BotHarness, db: Database
) -> None:
    """宁畅 is Nettrix's Chinese name, spelt nothing like it and not in the shipped list: until
    an editor adds it, /entity 宁畅 finds nothing; after, it finds the Entity List entry, and a
    chat watching 宁畅 gets the list change that names Nettrix."""
    [reply] = await bot.send("/names 宁畅")
    assert reply.startswith("PolicyWatch knows no other names of 宁畅.")
    [reply] = await bot.send("/names added")
    assert reply.startswith("Editors have added no names yet")
    [reply] = await bot.send("/entity 宁畅")
    assert reply.startswith("No entry on the US screening lists matches")

    [reply] = await bot.send("/names add 宁畅; Nettrix", chat_id=USER)
    assert "only for editors and admins" in reply
    # the list's own name too: a known name stands for that organisation as written, never
    # for every firm whose name starts with its brand (a subsidiary is another entry)
    legal = "Nettrix Information Industry (Beijing) Co., Ltd."
    [reply] = await bot.send(f"/names add 宁畅; Nettrix; {legal}", chat_id=EDITOR)
    assert reply.startswith("Added. 宁畅 is known as:")
    assert f"宁畅 ✎ · Nettrix ✎ · {legal} ✎" in reply
    [reply] = await bot.send("/entity 宁畅")
    assert reply.startswith("宁畅 on the US screening lists (1):")
    assert f"\n\n{legal}" in reply
    assert "Entity List, since 2025-03-25" in reply

    # A shipped organisation gains a name; one name cannot join two organisations.
    [reply] = await bot.send("/names add 寒武纪; 寒武纪科技", chat_id=EDITOR)
    assert "Cambricon" in reply
    assert "寒武纪科技 ✎" in reply
    [reply] = await bot.send("/names add 寒武纪; 海光", chat_id=EDITOR)
    assert "寒武纪 is a name of Cambricon" in reply
    assert "a name belongs to one organisation only" in reply
    [reply] = await bot.send("/names remove 海光", chat_id=EDITOR)
    assert "is in the shipped list: /names drop 海光 takes it out" in reply

    assert await _watch_alerts(db, "宁畅") == 1  # the list change names Nettrix only

    [reply] = await bot.send("/names added")
    assert reply == (f"Names editors added (2)\n• 宁畅 · Nettrix · {legal}\n• 寒武纪 · 寒武纪科技")
    [reply] = await bot.send(f"/names remove {legal}", chat_id=EDITOR)
    assert reply == f"Removed {legal} from the names editors added or dropped."
    [reply] = await bot.send("/names 宁畅")
    assert "宁畅 ✎ · Nettrix ✎\n" in reply
    async with db.sessions() as session:
        actions = (await session.scalars(select(AuditLog.action).order_by(AuditLog.id))).all()
    assert actions == ["names.add", "names.add", "names.remove"]
    assert await _watch_alerts(db, "宁畅", external_id="again") == 0


async def test_editors_drop_a_wrong_name_and_take_the_drop_back(bot: BotHarness) -> None:
    """A shipped name that is wrong for the editors' readers (海光 for Hygon, say) is taken out
    from the chat; /names remove undoes it. Only editors may, and only a known name."""
    [reply] = await bot.send("/names drop 海光", chat_id=USER)
    assert "only for editors and admins" in reply
    [reply] = await bot.send("/names drop 某某某公司", chat_id=EDITOR)
    assert "names no organisation PolicyWatch knows" in reply
    [reply] = await bot.send("/names drop 海光", chat_id=EDITOR)
    assert reply.startswith("海光 no longer names Hygon")
    assert "海光信息" in reply  # its other names
    assert reply.endswith("/names remove 海光 undoes it.")
    [reply] = await bot.send("/names 海光")
    assert reply.startswith("PolicyWatch knows no other names of 海光.")
    [reply] = await bot.send("/names added")
    assert reply == "Names editors added (0)\nNames editors dropped (1)\n• 海光"
    # a dropped name cannot come back in a group: the drop would take it out again
    [reply] = await bot.send("/names add 海光; Haiguang Fishing Co", chat_id=EDITOR)
    assert "海光 was dropped by an editor: /names remove 海光 first." in reply
    # removing lifts the drop and nothing else: a group an editor added with the name stays
    [reply] = await bot.send("/names add 曙光; Sugon Information", chat_id=EDITOR)
    assert reply.startswith("Added.")
    [reply] = await bot.send("/names drop Sugon Information", chat_id=EDITOR)
    assert reply.startswith("Sugon Information no longer names")
    [reply] = await bot.send("/names remove Sugon Information", chat_id=EDITOR)
    assert reply == "Removed Sugon Information from the names editors added or dropped."
    [reply] = await bot.send("/names added")
    assert "• 曙光 · Sugon Information" in reply
    [reply] = await bot.send("/names remove 海光", chat_id=EDITOR)
    assert reply == "Removed 海光 from the names editors added or dropped."
    [reply] = await bot.send("/names 海光")
    assert reply.startswith("海光 is known as:")


async def test_names_added_by_editors_are_bounded(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.handlers.entities.MAX_KNOWN_GROUPS", 1)
    [reply] = await bot.send("/names add 宁畅; Nettrix", chat_id=EDITOR)
    assert reply.startswith("Added.")
    [reply] = await bot.send("/names add 灵汐; Lynxi", chat_id=EDITOR)
    assert "the most PolicyWatch keeps" in reply
    [reply] = await bot.send("/names 灵汐")
    assert reply.startswith("PolicyWatch knows no other names of 灵汐.")


async def _watch_alerts(db: Database, watched: str, external_id: str = "change") -> int:
    """Alerts a chat watching ``watched`` gets of a list change adding Nettrix."""
    async with db.transaction() as uow:
        chat = await uow.subscribers.ensure(
            chat_id=USER, chat_type="private", user_id=USER, title="me", now=NOW
        )
        await uow.watched.add(
            name=watched, aliases=[], subscriber_id=chat.id, user_id=USER, now=NOW
        )
        source = await uow.sources.get("csl")
        assert source is not None
        entity: CslEntity = {
            "id": "x",
            "name": "Nettrix Information Industry (Beijing) Co., Ltd.",
            "aliases": [],
            "countries": ["China"],
            "changed": [],
        }
        change = ItemData(
            external_id,
            "Entity List: 1 entry added",
            published_at=NOW,
            fields={"list_name": "Entity List", "change": "added", "entities": [entity]},
        )
        stored = await uow.items.store(source.id, [change], NOW)
        plan = await plan_items(
            uow, stored.new, NOW, policy=BurstPolicy(), watches=PersonalWatches()
        )
    return len(plan.alerts)
