"""Event grouping: reading items into signatures, the decision rules (pure), the stored
assignment (SQLite and PostgreSQL), and what a subscriber sees: one alert per event, later
sources as a capped, paced update, /latest by event, /event timelines, merges and splits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from models.alerts import (
    AlertPlan,
    BurstPolicy,
    EventDelivered,
    ItemMatch,
    NewItem,
    SubscriberInfo,
    SubscriptionInfo,
    ThemeInfo,
    UpdatePolicy,
    plan_alerts,
)
from models.db.tables import AuditLog, ItemEvent
from models.events import (
    MEMBERS_PER_EVENT,
    EventItem,
    Member,
    batches,
    dates,
    decide,
    group,
    numbers,
    read,
)
from models.fields import ItemFields
from models.items import ItemData
from models.sources import SourceSpec
from pipeline.grouping import group_backlog, group_new_items
from tests.botkit import ADMIN, EDITOR, NOW, USER, bot_harness
from tests.conftest import Database

T = datetime(2025, 7, 15, 2, 0, tzinfo=UTC)


def item(
    ident: str,
    title: str,
    at: datetime = T,
    *,
    summary: str = "",
    url: str | None = None,
    fields: ItemFields | None = None,
) -> EventItem:
    return EventItem(
        id=ident,
        title=title,
        summary=summary,
        url=url,
        published_at=at,
        fields=fields or ItemFields(),
    )


# ---------------------------------------------------------------- reading items


def test_numbers_meet_across_languages_and_scales() -> None:
    assert set(numbers("Nvidia expects $5.5 billion charge")) == set(numbers("将计提55亿美元"))
    assert set(numbers("trained for $5.6 million")) == set(numbers("训练成本仅557.6万美元"))
    assert set(numbers("140 entities added")) == set(numbers("140家实体被列入"))
    assert set(numbers("16nm and below")) == set(numbers("16奈米以下")) == {"node:16"}
    assert numbers("in 2025, 3 types") == {}  # years and small counts say nothing
    assert set(numbers("15% of revenue")) == set(numbers("收入的15%")) == {"pct:15"}


def test_dates_and_batches_meet_across_languages() -> None:
    assert dates("from Aug. 1") == dates("8月1日起实施") == {"md:8-1": "8/1"}
    assert set(batches("第十五批深度合成服务算法")) == set(batches("the fifteenth batch"))
    assert set(batches("batch 15")) == {"batch:15"}


def test_the_lexicon_names_the_same_company_in_three_scripts() -> None:
    english = read(item("a", "Nvidia resumes H20 sales to China"))
    simplified = read(item("b", "英伟达恢复向中国销售H20芯片"))
    traditional = read(item("c", "輝達恢復對中國出貨H20晶片"))
    for signature in (english, simplified, traditional):
        assert {"co:nvidia", "prod:h20"} <= set(signature.anchors)
        assert {"co:nvidia", "prod:h20"} <= signature.in_title


def test_a_federal_register_document_happened_when_it_took_effect() -> None:
    published = datetime(2025, 3, 28, 4, 0, tzinfo=UTC)
    signature = read(
        item(
            "fr",
            "Additions to the Entity List",
            published,
            fields=ItemFields(document_number="2025-05427", effective_on="2025-03-25"),
        )
    )
    assert signature.when == published - timedelta(days=3)
    assert "doc:2025-05427" in signature.keys


# ---------------------------------------------------------------- deciding


def test_same_story_across_languages_is_one_event_with_its_reason() -> None:
    decisions = group(
        [
            item("en", "Nvidia to resume H20 AI chip sales to China", T),
            item("zh", "英伟达宣布将恢复向中国销售H20芯片", T + timedelta(hours=3)),
        ]
    )
    assert [e for e, _ in decisions] == [1, 1]
    assert decisions[1][1].reason == "shares H20, Nvidia"


def test_same_beat_weeks_apart_stays_apart() -> None:
    """The H20 licence requirement (April), H20 sales resuming (July) and the CAC summons over
    H20 (end of July) share Nvidia and H20: the time between them keeps them apart."""
    april = datetime(2025, 4, 16, 1, 0, tzinfo=UTC)
    events = [
        e
        for e, _ in group(
            [
                item("apr", "US requires licence for Nvidia H20 exports to China", april),
                item("jul", "Nvidia to resume H20 AI chip sales to China", T),
                item("sum", "国家网信办就H20芯片后门安全风险约谈英伟达", T + timedelta(days=16)),
            ]
        )
    ]
    assert len(set(events)) == 3


def test_a_correction_joins_its_document_months_later_by_its_number() -> None:
    original = item(
        "o",
        "Streamlining Export Controls for Drone Exports",
        datetime(2026, 8, 14, 4, tzinfo=UTC),
        fields=ItemFields(document_number="2026-16628"),
    )
    correction = item(
        "c",
        "Streamlining Export Controls for Drone Exports",
        datetime(2026, 10, 28, 4, tzinfo=UTC),
        fields=ItemFields(document_number="C1-2026-16628", correction_of="2026-16628"),
    )
    january = item(
        "j",
        "Streamlining Export Controls for Drone Exports",
        datetime(2026, 1, 20, 5, tzinfo=UTC),
        fields=ItemFields(document_number="2026-01059"),
    )
    decisions = group([january, original, correction])
    assert [e for e, _ in decisions] == [1, 2, 2]  # the same title in January is another rule
    assert decisions[2][1].reason == "same FR document 2026-16628"


def test_two_rules_of_one_title_are_two_acts_and_a_briefing_joins_its_rule() -> None:
    """BIS prints "Additions to the Entity List" for different rules days apart: each is its
    own event; a "Public Briefing on" notice (a number of its own) joins the nearest rule of
    the title it names, a correction the rule its number names."""
    first = item(
        "r1",
        "Additions to the Entity List",
        datetime(2025, 3, 25, 4, tzinfo=UTC),
        summary="BIS adds 12 entities in China to the Entity List.",
        fields=ItemFields(document_number="2025-05427"),
    )
    second = item(
        "r2",
        "Additions to the Entity List",
        datetime(2025, 3, 28, 4, tzinfo=UTC),
        summary="BIS adds 12 entities in China to the Entity List.",
        fields=ItemFields(document_number="2025-05501"),
    )
    briefing = item(
        "b",
        "Public Briefing on Additions to the Entity List",
        datetime(2025, 4, 2, 4, tzinfo=UTC),
        fields=ItemFields(document_number="2025-05790"),
    )
    decisions = group([first, second, briefing])
    assert [e for e, _ in decisions] == [1, 2, 2]  # the nearest rule of that title
    assert decisions[2][1].reason.startswith("same FR title")
    # a correction naming its rule by number joins that one, however near the other is
    correction = item(
        "c",
        "Additions to the Entity List; Correction",
        datetime(2025, 3, 29, 4, tzinfo=UTC),
        fields=ItemFields(document_number="C1-2025-05427", correction_of="2025-05427"),
    )
    decisions = group([first, second, correction])
    assert [e for e, _ in decisions] == [1, 2, 1]
    assert decisions[2][1].reason == "same FR document 2025-05427"
    signature = read(briefing)
    assert signature.refers_by_title
    assert type(signature).from_json(signature.to_json()) == signature


def test_a_mirror_with_the_same_title_joins_in_traditional_characters() -> None:
    title = "国家互联网信息办公室关于发布2024年生成式人工智能服务已备案信息的公告"
    mirror = "國家互聯網信息辦公室關於發布2024年生成式人工智能服務已備案信息的公告"
    decisions = group([item("a", title, T), item("b", mirror, T + timedelta(hours=14))])
    assert [e for e, _ in decisions] == [1, 1]
    assert "a near-identical title" in decisions[1][1].reason


def test_generic_words_alone_make_no_event() -> None:
    decisions = group(
        [
            item("a", "US tightens chip export controls on China", T),
            item("b", "China says US chip export controls hurt global trade", T),
        ]
    )
    assert [e for e, _ in decisions] == [1, 2]


def test_decisions_are_deterministic_and_ties_go_to_the_older_event() -> None:
    signature = read(item("x", "Nvidia H20 sales to China resume", T))
    twin = read(item("y", "Nvidia H20 sales to China resume", T))
    members = [Member(7, twin), Member(3, twin)]
    assert decide(signature, members).event_id == 3
    assert decide(signature, list(reversed(members))).event_id == 3


# ---------------------------------------------------------------- planning by event

EXPORT = ThemeInfo(1, "export-controls", "US export controls")


def plan(
    items: list[NewItem],
    *,
    delivered: dict[tuple[int, int], EventDelivered] | None = None,
    recent: int = 0,
    subscriber: SubscriberInfo | None = None,
) -> AlertPlan:
    return plan_alerts(
        items=items,
        matches=[ItemMatch(i.id, 1) for i in items],
        themes={1: EXPORT},
        subscribers={1: subscriber or SubscriberInfo(1, 111)},
        subscriptions=[SubscriptionInfo(1, 1)],
        recent_instant={1: recent},
        policy=BurstPolicy(max_alerts=3),
        now=T,
        delivered=delivered,
        updates=UpdatePolicy(max_updates=2, min_gap=timedelta(minutes=30)),
    )


def test_one_alert_per_event_naming_its_other_new_sources() -> None:
    result = plan([NewItem(1, event_id=9), NewItem(2, event_id=9), NewItem(3, event_id=10)])
    assert [(a.item_id, a.event_id, a.also) for a in result.alerts] == [
        (1, 9, (2,)),
        (3, 10, ()),
    ]


def test_an_alerted_event_gets_updates_capped_and_paced() -> None:
    first = EventDelivered(alert_key="event:9")
    result = plan([NewItem(5, event_id=9)], delivered={(1, 9): first})
    assert result.alerts == ()
    [update] = result.updates
    assert (update.reply_to, update.key, update.send_at) == ("event:9", "update:9:1", T)

    paced = EventDelivered("event:9", updates=1, last_update_at=T - timedelta(minutes=10))
    [update] = plan([NewItem(6, event_id=9)], delivered={(1, 9): paced}).updates
    assert (update.key, update.send_at) == ("update:9:2", T + timedelta(minutes=20))

    waiting = EventDelivered("event:9", updates=1, last_update_at=T, waiting_update="update:9:1")
    [joined] = plan([NewItem(7, event_id=9)], delivered={(1, 9): waiting}).updates
    assert (joined.join, joined.key) == (True, "update:9:1")

    capped = EventDelivered("event:9", updates=2, last_update_at=T - timedelta(hours=5))
    result = plan([NewItem(8, event_id=9)], delivered={(1, 9): capped})
    assert result.updates == ()
    assert result.silenced == {1: ((8, "event:9"),)}


def test_a_burst_summary_lists_events_and_never_a_single_one() -> None:
    many = [NewItem(i, event_id=100 + i // 2) for i in range(10)]  # five events of two items
    result = plan(many)
    assert [a.event_id for a in result.alerts] == [100, 101]
    [fold] = result.folds
    assert fold.item_ids == (4, 6, 8)
    assert fold.all_items == (4, 5, 6, 7, 8, 9)
    at_limit = plan([NewItem(1, event_id=1)], recent=3)
    assert len(at_limit.alerts) == 1
    assert at_limit.folds == ()


def test_a_burst_summary_never_repeats_an_event_the_chat_was_sent() -> None:
    # Over the limit, with one of the new items reporting an event already alerted: that item
    # is a threaded update of its alert, never a line in the summary.
    many = [NewItem(i, event_id=100 + i) for i in range(6)]
    sent = {(1, 104): EventDelivered(alert_key="event:104")}
    result = plan(many, delivered=sent, recent=1)
    [fold] = result.folds
    assert 4 not in fold.all_items
    assert [u.item_ids for u in result.updates] == [(4,)]
    assert 104 not in [a.event_id for a in result.alerts]


def test_muted_matches_wait_for_the_end_of_the_mute_unless_a_digest_carries_them() -> None:
    until = T + timedelta(hours=8)
    muted = plan([NewItem(1), NewItem(2)], subscriber=SubscriberInfo(1, 111, muted_until=until))
    [hold] = muted.holds
    assert (hold.item_ids, hold.until) == ((1, 2), until)
    with_digest = plan(
        [NewItem(1)], subscriber=SubscriberInfo(1, 111, muted_until=until, digest=True)
    )
    assert with_digest.holds == ()
    assert with_digest.alerts == ()


# ---------------------------------------------------------------- stored assignment


async def store(db: Database, *data: ItemData) -> list[int]:
    # Stored when seen: a poll never sees an item before its date (a later one is not believed).
    seen = max([T, *(d.published_at for d in data if d.published_at is not None)])
    async with db.transaction() as uow:
        spec = SourceSpec(name="wire", kind="rss", url="https://e.org/f", interval_seconds=60)
        await uow.sources.sync_from_config([spec], T)
        source = await uow.sources.get("wire")
        assert source is not None
        result = await uow.items.store(source.id, list(data), seen)
        await uow.events.assign(result.new, seen)
        return [i.id for i in result.new]


async def test_stored_items_join_events_and_keep_their_reason(db: Database) -> None:
    ids = await store(
        db,
        ItemData("1", "Nvidia to resume H20 AI chip sales to China", published_at=T),
        ItemData("2", "英伟达宣布将恢复向中国销售H20芯片", published_at=T + timedelta(hours=2)),
        ItemData("3", "Semiconductor stocks close higher", published_at=T),
    )
    async with db.reading() as uow:
        events = await uow.events.of_items(ids)
        views = await uow.events.views(sorted(set(events.values())))
    assert events[ids[0]] == events[ids[1]] != events[ids[2]]
    story = views[events[ids[0]]]
    assert [m.reason for m in story.members] == ["new event", "shares H20, Nvidia"]
    async with db.sessions() as session:
        links = (await session.scalars(select(ItemEvent))).all()
    assert all(link.signature["anchors"] for link in links[:2])


async def test_a_first_poll_is_grouped_in_the_background_and_news_joins_it(db: Database) -> None:
    # History (a source's first poll) is never alerted: the poll leaves it ungrouped and the
    # backlog tick groups it, oldest first; a later poll's item then joins its event inline.
    async with db.transaction() as uow:
        spec = SourceSpec(name="wire", kind="rss", url="https://e.org/f", interval_seconds=60)
        await uow.sources.sync_from_config([spec], T)
        source = await uow.sources.get("wire")
        assert source is not None
        history = await uow.items.store(
            source.id,
            [
                ItemData("1", "Nvidia to resume H20 AI chip sales to China", published_at=T),
                ItemData("2", "Semiconductor stocks close higher", published_at=T),
            ],
            T,
            from_first_poll=True,
        )
        await group_new_items(uow, history, T)
        assert await uow.events.of_items([i.id for i in history.new]) == {}
    assert await group_backlog(db, T, batch=1) == 2  # two transactions of one
    assert await group_backlog(db, T) == 0
    async with db.transaction() as uow:
        news = await uow.items.store(
            source.id,
            [
                ItemData(
                    "3", "英伟达宣布将恢复向中国销售H20芯片", published_at=T + timedelta(hours=2)
                )
            ],
            T,
        )
        await group_new_items(uow, news, T)
        events = await uow.events.of_items([*(i.id for i in history.new), news.new[0].id])
    nvidia, stocks = (i.id for i in history.new)
    assert events[nvidia] == events[news.new[0].id] != events[stocks]


async def test_a_correction_finds_its_document_however_big_the_event_grew(db: Database) -> None:
    # Items are compared with an event's latest members only; a member sharing a hard key is
    # always among them, so a correction joins its Federal Register document in any event.
    document = ItemData(
        "doc",
        "Additions to the Entity List",
        published_at=T,
        fields=ItemFields(document_number="2025-00636", citation="90 FR 4544"),
    )
    coverage = [
        ItemData(
            f"n{n}",
            f"Report {n} on the Entity List additions",
            published_at=T + timedelta(minutes=n + 1),
            fields=ItemFields(citation="90 FR 4544"),
        )
        for n in range(MEMBERS_PER_EVENT + 3)
    ]
    ids = await store(db, document, *coverage)
    correction = ItemData(
        "fix",
        "Additions to the Entity List; Correction",
        published_at=T + timedelta(days=20),
        fields=ItemFields(document_number="C1-2025-00636", correction_of="2025-00636"),
    )
    [fixed] = await store(db, correction)
    async with db.reading() as uow:
        events = await uow.events.of_items([*ids, fixed])
        views = await uow.events.views([events[fixed]])
    assert len(set(events.values())) == 1
    assert views[events[fixed]].members[-1].reason == "same FR document 2025-00636"


# ---------------------------------------------------------------- the bot


async def test_latest_shows_events_and_editors_merge_and_split(db: Database) -> None:
    ids = await store(
        db,
        ItemData(
            "1",
            "Nvidia to resume H20 AI chip sales to China",
            url="https://e.org/1",
            published_at=NOW - timedelta(hours=3),
        ),
        ItemData(
            "2",
            "英伟达宣布将恢复向中国销售H20芯片",
            url="https://e.org/2",
            published_at=NOW - timedelta(hours=2),
        ),
        ItemData(
            "3",
            "China summons Nvidia over H20 backdoor risks",
            published_at=NOW - timedelta(days=20),
        ),
    )
    async with db.reading() as uow:
        events = await uow.events.of_items(ids)
    story, other = events[ids[0]], events[ids[2]]
    async with bot_harness(db) as bot:
        [text] = await bot.send("/search H20")
        assert text.count("•") == 2  # two events, not three items
        assert f"/event {story}" in text
        assert "also: wire" not in text  # the other source is the same feed: named once
        [timeline] = await bot.send(f"/event {story}")
        assert f"Event {story}" in timeline
        assert "shares H20, Nvidia" in timeline

        [refused] = await bot.send(f"/event merge {story} {other}", chat_id=USER)
        assert refused == "Sorry, /event merge is only for editors and admins."
        [merged] = await bot.send(f"/event merge {story} {other}", chat_id=ADMIN)
        assert merged == f"Event {other} merged into event {story} (1 items moved)."
        [followed] = await bot.send(f"/event {other}")
        assert f"Event {other} was merged into event {story}." in followed
        [split] = await bot.send(f"/event split {ids[2]}", chat_id=ADMIN)
        assert split.startswith(f"Item {ids[2]} moved out of event {story} into a new event")
        for bad, says in [
            ("/event", "Give an event number"),
            ("/event 99999", "There is no event 99999"),
            (f"/event merge {story} {story}", "are already one event"),
            ("/event split 424242", "There is no item 424242"),
            ("/event merge x 1", "x is not an event number"),
        ]:
            [reply] = await bot.send(bad, chat_id=ADMIN)
            assert says in reply, bad
        [edit] = await bot.send(f"/event split {ids[1]}", chat_id=EDITOR)
        assert "only for editors" in edit  # 901 has not been granted the role here
    async with db.sessions() as session:
        audit = (await session.scalars(select(AuditLog.action).order_by(AuditLog.id))).all()
    assert audit == ["event.merge", "event.split"]
