"""The planning hook against a real database: new items × matches × subscriptions → outbox
rows; a second alert of one item to one chat is impossible; bursts fold; end to end through
the notifier the alert a user sees has the title, the terms and the buttons."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from delivery.notifier import Notifier, NotifierConfig
from delivery.senders import TelegramSender
from models.alerts import BurstPolicy
from models.db import UnitOfWork
from models.db.items import StoreResult
from models.db.outbox import Outbox
from models.db.tables import Delivery, ItemTheme
from models.feedback import WaryPolicy, explores
from models.items import StoredItem
from models.learned import FeatureConfig, ThemeModel
from pipeline.digests import run_digest_tick
from pipeline.planning import plan_items, plan_new_items
from tests.conftest import Database
from tests.delivery_world import (
    T0,
    add_event,
    add_items,
    add_source,
    add_subscriber,
    add_theme,
    deliveries,
    in_events,
    match,
    subscribe,
)
from tests.fakes.telegram import TOKEN, FakeBotAPI, serve_fake_bot_api

# the labelled headline a model-only match is stored with (escaped as Telegram HTML)
SIMILAR = "Lawmakers press <Commerce> on chip envoy"
SIMILAR_ESCAPED = "Lawmakers press &lt;Commerce&gt; on chip envoy"


async def test_plans_alerts_only_where_the_rules_allow(db: Database) -> None:
    async with db.sessions.begin() as session:
        source = await add_source(session)
        export = await add_theme(session, "export-controls", "US export controls")
        llms = await add_theme(session, "china-llms", "Chinese models", priority="digest")
        instant = await add_subscriber(session, 1)
        digest_mode = await add_subscriber(session, 2)
        muted = await add_subscriber(session, 3, muted_until=T0 + timedelta(hours=1))
        gone = await add_subscriber(session, 4, active=False)
        llm_fan = await add_subscriber(session, 5)
        await subscribe(session, instant, export)
        await subscribe(session, digest_mode, export, mode="digest")
        await subscribe(session, muted, export)
        await subscribe(session, gone, export)
        await subscribe(session, llm_fan, llms)
        first = await add_items(
            session, source, ["old rule"], T0, from_first_poll=True, prefix="old"
        )
        await match(session, first, export, ["Entity List"], T0)
        await plan_new_items(UnitOfWork(session), first, T0)
        result = await add_items(session, source, ["Additions to the Entity List"], T0)
        await match(session, result, export, ["Entity List"], T0)
        await match(session, result, llms, ["DeepSeek"], T0)
        await plan_new_items(UnitOfWork(session), result, T0)
        await plan_new_items(UnitOfWork(session), result, T0)  # called twice: nothing more

    async with db.sessions() as session:
        rows = await deliveries(session)
    assert [(r.subscriber_id, r.item_id, r.kind, r.status) for r in rows] == [
        (instant.id, result.new[0].id, "alert", "pending"),
        # The muted chat (no digest) keeps it for when the mute ends, never drops it.
        (muted.id, None, "held", "pending"),
        (muted.id, result.new[0].id, "alert", "folded"),
    ]
    assert rows[1].next_attempt_at == T0 + timedelta(hours=1)
    assert "While you were muted: 1 matching event" in rows[1].payload["messages"][0]["text"]
    [message] = rows[0].payload["messages"]
    assert "Additions to the Entity List" in message["text"]
    assert "matched: <i>Entity List</i>" in message["text"]


async def test_a_burst_folds_and_the_user_sees_four_alerts_and_one_summary(db: Database) -> None:
    policy = BurstPolicy(max_alerts=5, window=timedelta(minutes=10))
    async with db.sessions.begin() as session:
        source = await add_source(session)
        export = await add_theme(session, "export-controls", "US export controls")
        sub = await add_subscriber(session, 42, timezone="Asia/Shanghai")
        await subscribe(session, sub, export)
        titles = [f"Entity List: addition of entity {i} <&>" for i in range(140)]
        result = await add_items(session, source, titles, T0)
        await match(session, result, export, ["Entity List", "实体清单"], T0)
        await plan_new_items(UnitOfWork(session), result, T0, policy=policy)
    async with db.sessions.begin() as session:  # a later poll within the window
        later = await add_items(
            session, source, ["one more"], T0 + timedelta(minutes=3), prefix="late"
        )
        await match(session, later, export, ["Entity List"], T0)
        await plan_new_items(UnitOfWork(session), later, T0 + timedelta(minutes=3), policy=policy)

    async with db.sessions() as session:
        rows = await deliveries(session)
        per_item = Counter(
            (
                await session.execute(
                    select(Delivery.item_id, func.count()).group_by(Delivery.item_id)
                )
            ).all()
        )
    # A summary never holds a single item: the later one is alerted on its own.
    assert Counter((r.kind, r.status) for r in rows) == {
        ("alert", "pending"): 5,
        ("burst", "pending"): 1,
        ("alert", "folded"): 136,
    }
    assert all(count == 1 for item, count in per_item if item is not None)

    with serve_fake_bot_api(FakeBotAPI()) as running:
        sender = TelegramSender(TOKEN, running.base_url)
        outbox = Outbox(db.sessions, worker_id="w", lease=timedelta(seconds=30))
        try:
            await Notifier(
                outbox, sender, NotifierConfig(), clock=lambda: T0 + timedelta(minutes=3)
            ).run_once()
        finally:
            await sender.stop()
        texts = [m.text for m in running.fake.messages_to(42)]
        first_alert = running.fake.messages_to(42)[0]
    assert len(texts) == 6
    assert texts[0].startswith('<b><a href="https://www.federalregister.gov/d/doc-0">')
    assert "Entity List: addition of entity 0 &lt;&amp;&gt;" in texts[0]
    assert "2026-03-09 22:00 CST" in texts[0]  # published 14:00 UTC, shown in Shanghai time
    assert texts[4].startswith("<b>136 more matching events</b>")
    assert "one more" in texts[5]
    assert "more matching" not in texts[5]
    buttons = [
        b["callback_data"] for row in first_alert.reply_markup["inline_keyboard"] for b in row
    ]
    item, theme = result.new[0].id, export.id
    assert buttons == [
        f"fb:u:{item}",  # 👍 relevant
        f"fb:d:{item}",  # 👎 not relevant
        f"fb:w:{item}:{theme}",  # wrong theme
        "mute:export-controls",
        "unsub:export-controls",
    ]


@pytest.mark.parametrize(
    "lost", ["the alert failed", "the alert was cancelled", "its summary failed"]
)
async def test_an_event_whose_alert_never_reached_the_chat_alerts_its_next_item(
    db: Database, lost: str
) -> None:
    """A later item of an event is a short "also: …" reply to the event's alert; when that
    alert (or the burst summary its item was folded into) never reached the chat, the later
    item must be an alert of its own, or the chat only ever sees "also: xinhua"."""
    policy = BurstPolicy(max_alerts=2, window=timedelta(minutes=10))  # one alert, one summary
    later = T0 + timedelta(hours=1)
    async with db.sessions.begin() as session:
        source = await add_source(session)
        export = await add_theme(session, "export-controls", "US export controls")
        chat = await add_subscriber(session, 42)
        await subscribe(session, chat, export)
        events = [await add_event(session, f"story {i}", T0) for i in range(3)]
        first = await add_items(session, source, ["rule 0", "rule 1", "rule 2"], T0)
        await match(session, first, export, ["Entity List"], T0)
        await in_events(session, first, *events)
        await plan_new_items(UnitOfWork(session), first, T0, policy=policy)
        rows = {r.kind: r for r in await deliveries(session) if r.status != "folded"}
        assert set(rows) == {"alert", "burst"}  # story 0 alerted, stories 1 and 2 summed up
        gone = rows["burst" if lost == "its summary failed" else "alert"]
        gone.status = "cancelled" if lost == "the alert was cancelled" else "failed"
        story = events[1] if lost == "its summary failed" else events[0]
        second = await add_items(session, source, ["also reported"], later, prefix="xh")
        await match(session, second, export, ["实体清单"], later)
        await in_events(session, second, story)
        await plan_new_items(UnitOfWork(session), second, later, policy=policy)
        [row] = [r for r in await deliveries(session) if r.item_id == second.new[0].id]
    assert (row.kind, row.status) == ("alert", "pending")
    assert "also reported" in row.payload["messages"][0]["text"]


async def test_an_update_after_one_that_failed_is_sent(db: Database) -> None:
    """A failed update does not count, so the next one is numbered as it was; it must still
    go (its key was taken: it was dropped, its item recorded as sent in the failed one)."""
    async with db.sessions.begin() as session:
        source = await add_source(session)
        export = await add_theme(session, "export-controls", "US export controls")
        chat = await add_subscriber(session, 42)
        await subscribe(session, chat, export)
        story = await add_event(session, "story", T0)
        outcome = {0: "sent", 1: "failed"}  # the alert went; the first update failed
        for n, at in enumerate([T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]):
            result = await add_items(session, source, [f"report {n}"], at, prefix=f"r{n}")
            await match(session, result, export, ["Entity List"], at)
            await in_events(session, result, story)
            await plan_new_items(UnitOfWork(session), result, at)
            [row] = [r for r in await deliveries(session) if r.status == "pending"]
            row.status = outcome.get(n, row.status)
        [item] = [r for r in await deliveries(session) if r.item_id == result.new[0].id]
    assert (row.kind, row.status) == ("update", "pending")
    assert item.payload.get("folded_into") == row.dedupe_key


async def test_an_alert_waiting_for_quiet_hours_to_end_is_dropped_when_its_theme_is(
    db: Database,
) -> None:
    """Unsubscribing stops what is queued for that theme; an item that also matched a theme
    the chat still follows still comes."""
    night = T0.replace(hour=23)  # quiet hours until 07:00 UTC
    async with db.sessions.begin() as session:
        source = await add_source(session)
        export = await add_theme(session, "export-controls", "US export controls")
        chips = await add_theme(session, "chip-self-sufficiency", "China's chips")
        chat = await add_subscriber(session, 88, quiet_hours="22:00-07:00")
        await subscribe(session, chat, export)
        await subscribe(session, chat, chips)
        only = await add_items(session, source, ["Entity List additions"], night)
        await match(session, only, export, ["Entity List"], night)
        both = await add_items(
            session, source, ["SMIC added to the Entity List"], night, prefix="b"
        )
        await match(session, both, export, ["Entity List"], night)
        await match(session, both, chips, ["SMIC"], night)
        await plan_new_items(UnitOfWork(session), only, night)
        await plan_new_items(UnitOfWork(session), both, night)
    async with db.transaction() as uow:
        assert await uow.subscribers.unsubscribe(chat.id, export.id, night)
    async with db.sessions() as session:
        rows = {r.item_id: r.status for r in await deliveries(session)}
    assert rows == {only.new[0].id: "cancelled", both.new[0].id: "pending"}


async def test_unsubscribing_keeps_an_alert_that_carries_a_followed_themes_item(
    db: Database,
) -> None:
    """One event, one item of theme A and one of theme B, in one alert held by quiet hours:
    leaving A keeps the alert, which carries B's item too."""
    night = T0.replace(hour=23)
    async with db.sessions.begin() as session:
        source = await add_source(session)
        a = await add_theme(session, "export-controls", "US export controls")
        b = await add_theme(session, "chip-self-sufficiency", "China's chips")
        chat = await add_subscriber(session, 88, quiet_hours="22:00-07:00")
        await subscribe(session, chat, a)
        await subscribe(session, chat, b)
        story = await add_event(session, "story", night)
        both = await add_items(session, source, ["x about A", "y about B"], night)
        x, y = both.new
        await match(session, StoreResult((x,), ()), a, ["Entity List"], night)
        await match(session, StoreResult((y,), ()), b, ["SMIC"], night)
        await in_events(session, StoreResult((x,), ()), story)
        await in_events(session, StoreResult((y,), ()), story)
        await plan_new_items(UnitOfWork(session), both, night)
    async with db.transaction() as uow:
        assert await uow.subscribers.unsubscribe(chat.id, a.id, night)
    async with db.sessions() as session:
        rows = {r.item_id: r.status for r in await deliveries(session)}
    assert rows == {x.id: "pending", y.id: "folded"}


async def test_a_mute_ending_in_quiet_hours_sums_up_when_they_end(db: Database) -> None:
    """Muted at 19:00 for 8 hours with quiet hours 22:00-07:00: "while you were muted" comes
    at 07:00, not at 03:00; ending the quiet hours at 23:00 does not end the mute, and ending
    the mute at 23:00 does not wake the chat either."""
    evening = T0.replace(hour=20)
    morning = (T0 + timedelta(days=1)).replace(hour=7)
    async with db.sessions.begin() as session:
        source = await add_source(session)
        export = await add_theme(session, "export-controls", "US export controls")
        chat = await add_subscriber(
            session,
            42,
            quiet_hours="22:00-07:00",
            muted_until=T0.replace(hour=19) + timedelta(hours=8),
        )
        await subscribe(session, chat, export)
        result = await add_items(session, source, ["Entity List additions"], evening)
        await match(session, result, export, ["Entity List"], evening)
        await plan_new_items(UnitOfWork(session), result, evening)
        [held] = [r for r in await deliveries(session) if r.kind == "held"]
    assert held.next_attempt_at == morning
    eleven = T0.replace(hour=23)
    async with db.transaction() as uow:  # /quiet off at 23:00: still muted until 03:00
        await uow.subscribers.set_quiet_hours(chat.id, None, eleven)
        await uow.deliveries.reschedule_quiet(chat.id, morning, eleven, eleven)
    async with db.sessions() as session:
        [held] = [r for r in await deliveries(session) if r.kind == "held"]
    assert held.next_attempt_at == T0.replace(hour=19) + timedelta(hours=8)
    async with db.transaction() as uow:  # quiet hours back, then /mute off at 23:00
        await uow.subscribers.set_quiet_hours(chat.id, "22:00-07:00", eleven)
        await uow.subscribers.set_muted_until(chat.id, None, eleven)
        await uow.deliveries.reschedule_held(chat.id, eleven, eleven)
    async with db.sessions() as session:
        [held] = [r for r in await deliveries(session) if r.kind == "held"]
    assert held.next_attempt_at == morning


async def test_what_quiet_hours_release_keeps_to_the_burst_limit(db: Database) -> None:
    """Twelve alerts planned one poll at a time through the night all go at 07:00; the chat
    gets four alerts and one summary of the other eight, as a daytime burst would give."""
    policy = BurstPolicy(max_alerts=5, window=timedelta(minutes=10))
    night = T0.replace(hour=23)
    morning = (T0 + timedelta(days=1)).replace(hour=7)
    async with db.sessions.begin() as session:
        source = await add_source(session)
        export = await add_theme(session, "export-controls", "US export controls")
        chat = await add_subscriber(session, 99, quiet_hours="22:00-07:00")
        await subscribe(session, chat, export)
    for n in range(12):
        at = night + timedelta(minutes=20 * n)
        async with db.sessions.begin() as session:
            result = await add_items(
                session, source, [f"Entity List story {n}"], at, prefix=f"p{n}"
            )
            await match(session, result, export, ["Entity List"], at)
            await plan_new_items(UnitOfWork(session), result, at, policy=policy)
    async with db.sessions() as session:
        rows = await deliveries(session)
    assert Counter((r.kind, r.status) for r in rows) == {
        ("alert", "pending"): 4,
        ("burst", "pending"): 1,
        ("alert", "folded"): 8,
    }
    assert {r.next_attempt_at for r in rows if r.status == "pending"} == {morning}
    with serve_fake_bot_api(FakeBotAPI()) as running:
        sender = TelegramSender(TOKEN, running.base_url)
        outbox = Outbox(db.sessions, worker_id="w", lease=timedelta(seconds=30))
        try:
            await Notifier(outbox, sender, NotifierConfig(), clock=lambda: morning).run_once()
        finally:
            await sender.stop()
        texts = [m.text for m in running.fake.messages_to(99)]
    assert len(texts) == 5
    [summary] = [t for t in texts if "more matching events" in t]
    assert summary.startswith("<b>8 more matching events</b> (held by your quiet hours")
    assert all(f"Entity List story {n}" in summary for n in range(4, 12))


async def test_the_release_summary_lists_an_event_once_when_a_later_poll_adds_to_it(
    db: Database,
) -> None:
    policy = BurstPolicy(max_alerts=2, window=timedelta(minutes=10))
    night, later = T0.replace(hour=23), T0.replace(hour=23, minute=30)
    async with db.sessions.begin() as session:
        source = await add_source(session)
        export = await add_theme(session, "export-controls", "US export controls")
        chat = await add_subscriber(session, 88, quiet_hours="22:00-07:00")
        await subscribe(session, chat, export)
        stories = [await add_event(session, f"story {n}", night) for n in range(3)]
        first = await add_items(session, source, ["zero", "one a", "one b"], night)
        await match(session, first, export, ["Entity List"], night)
        await in_events(session, first, stories[0], stories[1], stories[1])
        await plan_new_items(UnitOfWork(session), first, night, policy=policy)
        second = await add_items(session, source, ["two"], later, prefix="x")
        await match(session, second, export, ["Entity List"], later)
        await in_events(session, second, stories[2])
        await plan_new_items(UnitOfWork(session), second, later, policy=policy)
        [burst] = [r for r in await deliveries(session) if r.kind == "burst"]
    text = burst.payload["messages"][0]["text"]
    assert text.startswith("<b>2 more matching events</b>")  # stories 1 and 2
    bullets = [line for line in text.splitlines() if line.startswith("•")]
    assert [b.split("</a>")[0].rsplit(">", 1)[1] for b in bullets] == ["one a", "two"]


async def test_sure_only_subscribers_get_instant_alerts_where_rules_and_model_agree(
    db: Database,
) -> None:
    """/alerts sure: an item the watchlist and the model agree on alerts at once; one matched by
    either alone waits for the digest, which carries it; a theme no model judges keeps its
    watchlist's alerts. Without a digest, or with /alerts all, everything still alerts."""
    titles = {
        "both": "Entity List adds 12 Chinese chip firms",
        "model": "Senators question chip envoy",
        "rules": "Entity List for forced labour imports grows",
    }
    async with db.sessions.begin() as session:
        source = await add_source(session)
        export = await add_theme(session, "export-controls", "US export controls")
        unjudged = await add_theme(session, "china-ai-rules", "China AI rules")
        model = ThemeModel("export-controls", FeatureConfig(), {}, 0.0, 0.5)
        await UnitOfWork(session).learned.add(
            export.id, model.to_json(), {}, origin="trained", activate=True, now=T0
        )
        sure = await add_subscriber(session, 1, instant_alerts="sure", digest_mode="daily")
        everything = await add_subscriber(session, 2, digest_mode="daily")
        no_digest = await add_subscriber(session, 3, instant_alerts="sure")
        for sub in (sure, everything, no_digest):
            await subscribe(session, sub, export)
            await subscribe(session, sub, unjudged)
        new: list[StoredItem] = []
        for layer, title in titles.items():
            result = await add_items(session, source, [title], T0, prefix=layer)
            learned = {"probability": 0.7, "similar_to": SIMILAR} if layer != "rules" else None
            await match(session, result, export, ["Entity List"], T0, layer=layer, model=learned)
            new += result.new
        cac = await add_items(session, source, ["CAC approves 20 AI services"], T0, prefix="cac")
        await match(session, cac, unjudged, ["生成式人工智能服务"], T0)
        new += cac.new
        await plan_new_items(UnitOfWork(session), StoreResult(new=tuple(new), updated=()), T0)

    async with db.sessions() as session:
        rows = await deliveries(session)
    title_of = {i.id: i.title for i in new}
    alerted = {
        sub.id: {title_of[r.item_id] for r in rows if r.subscriber_id == sub.id and r.item_id}
        for sub in (sure, everything, no_digest)
    }
    assert alerted[sure.id] == {titles["both"], "CAC approves 20 AI services"}
    assert (
        alerted[everything.id]
        == alerted[no_digest.id]
        == {*titles.values(), "CAC approves 20 AI services"}
    )

    # the digest carries what did not alert at once
    await run_digest_tick(db, T0)  # schedules it for 08:00 UTC tomorrow
    await run_digest_tick(db, T0 + timedelta(days=1))
    async with db.sessions() as session:
        [digest] = [
            r
            for r in await deliveries(session)
            if r.subscriber_id == sure.id and r.kind == "digest"
        ]
    lines = "\n".join(m["text"] for m in digest.payload["messages"]).splitlines()
    marked = {
        title
        for title in (*titles.values(), "CAC approves 20 AI services")
        if any(title in line and "❔" in line for line in lines)
    }
    listed = {
        title
        for title in (*titles.values(), "CAC approves 20 AI services")
        if any(title in line for line in lines)
    }
    assert listed == {*titles.values(), "CAC approves 20 AI services"}
    assert marked == {titles["model"], titles["rules"]}  # what did not alert at once, marked
    # why the model alone put an item there: its nearest labelled headline, under that item
    explained = [
        lines[i - 1]
        for i, line in enumerate(lines)
        if f"learned model, similar to: <i>{SIMILAR_ESCAPED}</i>" in line
    ]
    [above] = explained  # the model-only item's; a sure one (both layers) is not explained
    assert titles["model"] in above
    assert any("only the watchlist or only the learned model matched it" in ln for ln in lines)
    # and its reader can judge each of them there, for the theme it is listed under
    id_of = {i.title: i.id for i in new}
    buttons = [
        b["callback_data"]
        for m in digest.payload["messages"]
        for row in (m["reply_markup"] or {"inline_keyboard": []})["inline_keyboard"]
        for b in row
    ]
    assert sorted(buttons) == sorted(
        f"fb:{v}:{id_of[titles[layer]]}:{export.id}" for layer in ("model", "rules") for v in "ud"
    )
    # as the Bot API receives it
    with serve_fake_bot_api(FakeBotAPI()) as running:
        sender = TelegramSender(TOKEN, running.base_url)
        outbox = Outbox(db.sessions, worker_id="w", lease=timedelta(seconds=30))
        clock = T0 + timedelta(days=1, minutes=1)
        try:
            await Notifier(outbox, sender, NotifierConfig(), clock=lambda: clock).run_once()
        finally:
            await sender.stop()
        [received] = [m for m in running.fake.messages_to(1) if "Daily digest" in m.text]
    assert [
        b["callback_data"] for row in received.reply_markup["inline_keyboard"] for b in row
    ] == buttons


async def test_a_source_set_to_the_digest_alerts_only_chats_without_one(db: Database) -> None:
    async with db.sessions.begin() as session:
        source = await add_source(session)
        source.alerts = "digest"  # as /source digest fr-bis or alerts: digest in the file
        export = await add_theme(session, "export-controls", "US export controls")
        reader = await add_subscriber(session, 1, digest_mode="daily", digest_time="08:00")
        no_digest = await add_subscriber(session, 2)
        await subscribe(session, reader, export)
        await subscribe(session, no_digest, export)
        result = await add_items(session, source, ["Additions to the Entity List"], T0)
        await match(session, result, export, ["Entity List"], T0)
        plan = await plan_items(UnitOfWork(session), result.new, T0, policy=BurstPolicy())
    assert plan.skipped["source_digest"] == 1
    async with db.sessions() as session:
        rows = await deliveries(session)
    assert [(r.subscriber_id, r.kind) for r in rows] == [(no_digest.id, "alert")]


async def test_a_source_noisy_for_one_theme_sends_only_that_themes_matches_to_digests(
    db: Database,
) -> None:
    """``/source digest fr-bis export-controls``: the feed's export-controls matches wait for
    a reader's digest; its us-ai-policy matches still alert at once."""
    async with db.sessions.begin() as session:
        source = await add_source(session)
        source.digest_themes = ["export-controls"]
        export = await add_theme(session, "export-controls", "US export controls")
        policy = await add_theme(session, "us-ai-policy", "US AI policy")
        reader = await add_subscriber(session, 1, digest_mode="daily", digest_time="08:00")
        await subscribe(session, reader, export)
        await subscribe(session, reader, policy)
        result = await add_items(
            session, source, ["Additions to the Entity List", "AI diffusion rule rescinded"], T0
        )
        listed, rescinded = result.new
        await match(session, StoreResult((listed,), ()), export, ["Entity List"], T0)
        await match(session, StoreResult((rescinded,), ()), policy, ["AI diffusion"], T0)
        plan = await plan_items(UnitOfWork(session), result.new, T0, policy=BurstPolicy())
    assert plan.skipped["source_digest"] == 1
    async with db.sessions() as session:
        rows = await deliveries(session)
    assert [(r.subscriber_id, r.kind, r.item_id) for r in rows] == [
        (reader.id, "alert", rescinded.id)
    ]


async def test_a_source_whose_unsure_matches_readers_judged_wrong_sends_them_to_digests(
    db: Database,
) -> None:
    """Five of a wire's unsure export-controls alerts (the watchlist's alone, against the
        theme's model) were judged, by majority four 👎 or "wrong theme" and one 👍: its next unsure
        match of that theme waits for a reader's digest, while its sure match, another source's
        unsure one and a chat without a digest are alerted as before. A tie, a verdict on a match
        that no longer exists and verdicts older than the window say nothing; an admin's trust keeps
    the pair instant."""
    async with db.sessions.begin() as session:
        wire = await add_source(session, "wire")
        other = await add_source(session, "other-wire")
        export = await add_theme(session, "export-controls", "US export controls")
        model = ThemeModel("export-controls", FeatureConfig(), {}, 0.0, 0.5)
        uow = UnitOfWork(session)
        await uow.learned.add(
            export.id, model.to_json(), {}, origin="trained", activate=True, now=T0
        )
        reader = await add_subscriber(session, 1, digest_mode="daily", digest_time="08:00")
        second = await add_subscriber(session, 3)
        no_digest = await add_subscriber(session, 2)
        for sub in (reader, second, no_digest):
            await subscribe(session, sub, export)
        past = await add_items(session, wire, [f"past {i}" for i in range(7)], T0, prefix="p")
        await match(session, past, export, ["chip"], T0, layer="rules")
        for n, item in enumerate(past.new):
            await uow.feedback.record(
                subscriber_id=reader.id,
                user_id=None,
                item_id=item.id,
                theme_ids=[export.id],
                verdict="up" if n == 0 else "wrong" if n == 1 else "down",
                now=T0,
            )
        await uow.feedback.record(  # a second chat's 👍 ties one alert
            subscriber_id=second.id,
            user_id=None,
            item_id=past.new[2].id,
            theme_ids=[export.id],
            verdict="up",
            now=T0,
        )
        await session.execute(  # an editor's fix: the last one no longer matches
            delete(ItemTheme).where(ItemTheme.item_id == past.new[6].id)
        )
        later = T0 + timedelta(hours=1)
        unsure = await add_items(session, wire, ["Chip smuggling ring"], later, prefix="u")
        await match(session, unsure, export, ["chip"], later, layer="rules")
        sure = await add_items(session, wire, ["Additions to the Entity List"], later, prefix="s")
        await match(session, sure, export, ["Entity List"], later, layer="both")
        elsewhere = await add_items(session, other, ["Chip smuggling ring"], later, prefix="o")
        await match(session, elsewhere, export, [], later, layer="model")
    new = [*unsure.new, *sure.new, *elsewhere.new]
    everyone = {(s.id, i.id) for s in (reader, second, no_digest) for i in new}

    async def planned(wary: WaryPolicy) -> set[tuple[int, int]]:
        async with db.sessions() as session:
            plan = await plan_items(
                UnitOfWork(session), new, later, policy=BurstPolicy(), wary=wary
            )
            await session.rollback()
        return {(a.subscriber_id, a.item_id) for a in plan.alerts}

    held = everyone - {(reader.id, unsure.new[0].id)}
    closed = WaryPolicy(explore_every=0)  # exploring has a test of its own
    assert await planned(closed) == held
    assert await planned(WaryPolicy(min_alerts=0)) == everyone  # off
    assert await planned(WaryPolicy(min_alerts=6)) == everyone  # the tie and the fix: 5 judged
    assert await planned(WaryPolicy(window=timedelta(minutes=30))) == everyone  # aged out
    async with db.sessions.begin() as session:  # /source trust wire export-controls
        await UnitOfWork(session).sources.set_theme_listed(
            "wire", "trusted_themes", "export-controls", True, T0
        )
    assert await planned(closed) == everyone
    async with db.sessions.begin() as session:  # /source untrust wire export-controls
        await UnitOfWork(session).sources.set_theme_listed(
            "wire", "trusted_themes", "export-controls", False, T0
        )

    async with db.sessions.begin() as session:
        on = await plan_items(UnitOfWork(session), new, later, policy=BurstPolicy(), wary=closed)
    assert on.skipped.get("wary_source") == 1
    async with db.sessions() as session:
        rows = await deliveries(session)
    assert {(r.subscriber_id, r.item_id) for r in rows if r.kind == "alert"} == held


async def test_a_wary_pairs_unsure_matches_alert_one_in_n_so_readers_keep_judging_it(
    db: Database,
) -> None:
    """With exploring on, one in N of a wary feed's unsure matches of the theme still alerts
    (the same items for every chat: chosen by the item's id), so its readers keep judging the
    feed; the rest wait for the digest."""
    async with db.sessions.begin() as session:
        wire = await add_source(session, "wire")
        export = await add_theme(session, "export-controls", "US export controls")
        model = ThemeModel("export-controls", FeatureConfig(), {}, 0.0, 0.5)
        uow = UnitOfWork(session)
        await uow.learned.add(
            export.id, model.to_json(), {}, origin="trained", activate=True, now=T0
        )
        readers = [await add_subscriber(session, n, digest_mode="daily") for n in (1, 2)]
        for sub in readers:
            await subscribe(session, sub, export)
        past = await add_items(session, wire, [f"past {i}" for i in range(6)], T0, prefix="p")
        await match(session, past, export, ["chip"], T0)
        for item in past.new:
            await uow.feedback.record(
                subscriber_id=readers[0].id,
                user_id=None,
                item_id=item.id,
                theme_ids=[export.id],
                verdict="down",
                now=T0,
                sure={export.id: False},
            )
        later = T0 + timedelta(hours=1)
        unsure = await add_items(session, wire, [f"rumour {i}" for i in range(12)], later)
        await match(session, unsure, export, ["chip"], later)

    policy = WaryPolicy(explore_every=3)
    explored = {i.id for i in unsure.new if explores(i.id, policy)}
    assert 0 < len(explored) < len(unsure.new)
    async with db.sessions() as session:
        plan = await plan_items(
            UnitOfWork(session),
            unsure.new,
            later,
            policy=BurstPolicy(max_alerts=100),
            wary=policy,
        )
        await session.rollback()
    assert {(a.subscriber_id, a.item_id) for a in plan.alerts} == {
        (s.id, i) for s in readers for i in explored
    }
    assert plan.skipped["wary_source"] == 2 * (len(unsure.new) - len(explored))
