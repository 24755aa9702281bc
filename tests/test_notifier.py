"""The notifier against the loopback fake Bot API (real HTTP, flood limits, injected faults):
every deliverable message exactly once, paced; blocked chats deactivated; migrated chats
followed; floods rescheduled, bad HTML resent as text, network errors retried up to a limit."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from delivery.notifier import Notifier, NotifierConfig
from delivery.senders import TelegramSender
from models.db.outbox import Outbox
from models.db.tables import Delivery, Subscriber
from tests.conftest import Database
from tests.delivery_world import Clock, add_subscriber, deliveries, enqueue_messages
from tests.fakes.telegram import TOKEN, FakeBotAPI, RunningFake, serve_fake_bot_api


@dataclass
class Rig:
    db: Database
    fake: FakeBotAPI
    clock: Clock
    notifier: Notifier
    outbox: Outbox


@pytest.fixture
def running() -> Iterator[RunningFake]:
    with serve_fake_bot_api(FakeBotAPI()) as running:
        yield running


@pytest.fixture
async def rig(db: Database, running: RunningFake) -> AsyncIterator[Rig]:
    clock = Clock()
    sender = TelegramSender(TOKEN, running.base_url)
    outbox = Outbox(db.sessions, worker_id="worker-1", lease=timedelta(seconds=30))
    config = NotifierConfig(
        rate=25, max_in_flight=8, max_attempts=3, retry_base=timedelta(seconds=5)
    )
    try:
        yield Rig(db, running.fake, clock, Notifier(outbox, sender, config, clock=clock), outbox)
    finally:
        await sender.stop()


async def test_fan_out_delivers_everything_once_in_order_and_paced(rig: Rig) -> None:
    async with rig.db.sessions.begin() as session:
        for chat in range(1, 41):
            sub = await add_subscriber(session, chat)
            await enqueue_messages(session, sub, [f"<b>alert</b> for {chat}"], rig.clock(), key="a")
        busy = await add_subscriber(session, 500)
        await enqueue_messages(session, busy, ["one", "two"], rig.clock(), key="digest")
        await enqueue_messages(session, busy, ["three"], rig.clock(), key="alert")
        group = await add_subscriber(session, -77)
        await enqueue_messages(session, group, ["g1", "g2"], rig.clock(), key="g")

    report = await rig.notifier.run_once()

    fake = rig.fake
    assert fake.flood_errors == 0
    sent = Counter((m.chat_id, m.text) for m in fake.sent)
    assert all(count == 1 for count in sent.values())
    assert len(fake.sent) == 45 == report.messages_sent
    assert [m.text for m in fake.messages_to(500)] == ["one", "two", "three"]
    times = [m.at for m in fake.messages_to(500)]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    group_times = [m.at for m in fake.messages_to(-77)]
    assert group_times[1] - group_times[0] >= 3.0
    async with rig.db.sessions() as session:
        rows = await deliveries(session)
    assert {r.status for r in rows} == {"sent"}
    assert all(r.sent_message_id is not None and r.sent_at == rig.clock() for r in rows)
    assert await rig.notifier.run_once() == type(report)()  # nothing left: nothing sent again


async def test_blocked_chat_is_deactivated_and_gets_nothing_more(rig: Rig) -> None:
    rig.fake.block(7)
    async with rig.db.sessions.begin() as session:
        blocked = await add_subscriber(session, 7)
        fine = await add_subscriber(session, 8)
        for key in ("a", "b"):
            await enqueue_messages(session, blocked, [key], rig.clock(), key=key)
        await enqueue_messages(session, fine, ["hello"], rig.clock(), key="a")

    await rig.notifier.run_once()

    assert [m.text for m in rig.fake.sent] == ["hello"]
    async with rig.db.sessions() as session:
        sub = await session.get(Subscriber, blocked.id)
        assert sub is not None
        assert not sub.active
        assert sub.deactivated_reason == "Forbidden: bot was blocked by the user"
        statuses = [
            (r.dedupe_key, r.status)
            for r in await deliveries(session)
            if r.subscriber_id == blocked.id
        ]
    assert statuses == [("a", "failed"), ("b", "cancelled")]
    sends_to_7 = [
        c for c in rig.fake.calls if c.method == "sendMessage" and c.params["chat_id"] == "7"
    ]
    assert len(sends_to_7) == 1


async def test_migrated_group_is_followed_and_the_message_resent(rig: Rig) -> None:
    rig.fake.migrate(-55, -1000055)
    async with rig.db.sessions.begin() as session:
        group = await add_subscriber(session, -55)
        await enqueue_messages(session, group, ["for the group"], rig.clock(), key="a")

    await rig.notifier.run_once()

    assert [(m.chat_id, m.text) for m in rig.fake.sent] == [(-1000055, "for the group")]
    async with rig.db.sessions() as session:
        sub = await session.get(Subscriber, group.id)
        assert sub is not None
        assert (sub.chat_id, sub.active) == (-1000055, True)
        [row] = await deliveries(session)
    assert row.status == "sent"


async def test_a_migrated_group_already_registered_under_its_new_id_is_merged_not_retired(
    rig: Rig,
) -> None:
    """The supergroup registered itself (a command there) before the group's move was seen:
    the group's subscriber takes the new id, keeps its settings and adopts the newer one's
    messages, and both are delivered; nothing is deactivated."""
    rig.fake.migrate(-55, -1000055)
    async with rig.db.sessions.begin() as session:
        group = await add_subscriber(session, -55, timezone="Asia/Shanghai")
        newer = await add_subscriber(session, -1000055, chat_type="supergroup")
        await enqueue_messages(session, group, ["for the group"], rig.clock(), key="a")
        await enqueue_messages(session, newer, ["for the supergroup"], rig.clock(), key="b")

    await rig.notifier.run_once()

    assert sorted((m.chat_id, m.text) for m in rig.fake.sent) == [
        (-1000055, "for the group"),
        (-1000055, "for the supergroup"),
    ]
    async with rig.db.sessions() as session:
        subscribers = (await session.scalars(select(Subscriber))).all()
        assert [(s.id, s.chat_id, s.active, s.timezone) for s in subscribers] == [
            (group.id, -1000055, True, "Asia/Shanghai")
        ]
        rows = await deliveries(session)
    assert [(r.dedupe_key, r.subscriber_id, r.status) for r in rows] == [
        ("a", group.id, "sent"),
        ("b", group.id, "sent"),
    ]


async def test_flood_limit_reschedules_without_dropping_or_counting_an_attempt(rig: Rig) -> None:
    rig.fake.fail_next(
        "sendMessage", 429, "Too Many Requests: retry after 7", parameters={"retry_after": 7}
    )
    async with rig.db.sessions.begin() as session:
        sub = await add_subscriber(session, 9)
        await enqueue_messages(session, sub, ["m1", "m2"], rig.clock(), key="a")

    await rig.notifier.run_once()
    async with rig.db.sessions() as session:
        [row] = await deliveries(session)
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.next_attempt_at == rig.clock() + timedelta(seconds=7)
    assert rig.fake.sent == []

    rig.clock.advance(seconds=7)
    rig.notifier._chat_ready.clear()  # the test's clock moved; real time did not
    await rig.notifier.run_once()
    assert [m.text for m in rig.fake.messages_to(9)] == ["m1", "m2"]


async def test_bad_html_is_resent_once_as_plain_text_then_failed_with_the_error(rig: Rig) -> None:
    async with rig.db.sessions.begin() as session:
        sub = await add_subscriber(session, 10)
        await enqueue_messages(session, sub, ["<b>unclosed &amp; bold"], rig.clock(), key="a")
        other = await add_subscriber(session, 11)
        await enqueue_messages(session, other, ["<b>fine</b>"], rig.clock(), key="a")
    rig.fake.fail_next(
        "sendMessage", 400, "Bad Request: can't parse entities: x", chat_id=11, times=2
    )

    await rig.notifier.run_once()

    [plain] = rig.fake.messages_to(10)
    assert (plain.text, plain.parse_mode) == ("unclosed & bold", None)
    assert rig.fake.messages_to(11) == []
    async with rig.db.sessions() as session:
        rows = {r.subscriber_id: r for r in await deliveries(session)}
    assert rows[sub.id].status == "sent"
    assert rows[other.id].status == "failed"
    assert rows[other.id].last_error == "Can't parse entities: x"


async def test_network_errors_retry_with_backoff_up_to_the_limit(rig: Rig) -> None:
    rig.fake.fail_next("sendMessage", 502, "Bad Gateway", chat_id=12, times=5)
    rig.fake.fail_next("sendMessage", 500, "Internal Server Error", chat_id=13)
    async with rig.db.sessions.begin() as session:
        doomed = await add_subscriber(session, 12)
        lucky = await add_subscriber(session, 13)
        await enqueue_messages(session, doomed, ["x"], rig.clock(), key="a")
        await enqueue_messages(session, lucky, ["y"], rig.clock(), key="a")

    waits = []
    for _ in range(3):
        await rig.notifier.run_once()
        async with rig.db.sessions() as session:
            row = next(r for r in await deliveries(session) if r.subscriber_id == doomed.id)
        waits.append((row.status, row.attempts, row.next_attempt_at - rig.clock()))
        rig.clock.advance(seconds=3600)
        rig.notifier._chat_ready.clear()

    assert waits[0] == ("pending", 1, timedelta(seconds=5))
    assert waits[1] == ("pending", 2, timedelta(seconds=10))  # doubled
    assert waits[2][:2] == ("failed", 3)
    assert [m.text for m in rig.fake.messages_to(13)] == ["y"]
    assert rig.fake.messages_to(12) == []
    async with rig.db.sessions() as session:
        row = next(r for r in await deliveries(session) if r.subscriber_id == doomed.id)
    assert row.last_error is not None
    assert "Bad Gateway" in row.last_error


async def test_a_row_leased_by_a_dead_worker_is_sent_after_the_lease_expires(rig: Rig) -> None:
    async with rig.db.sessions.begin() as session:
        sub = await add_subscriber(session, 14)
        await enqueue_messages(session, sub, ["late"], rig.clock(), key="a")
        await session.execute(
            update(Delivery).values(
                lease_owner="dead-worker", lease_until=rig.clock() + timedelta(seconds=60)
            )
        )

    await rig.notifier.run_once()
    assert rig.fake.sent == []

    rig.clock.advance(seconds=61)
    await rig.notifier.run_once()
    assert [m.text for m in rig.fake.sent] == ["late"]


async def test_two_workers_claim_disjoint_rows(db: Database) -> None:
    clock = Clock()
    async with db.sessions.begin() as session:
        for chat in range(1, 21):
            sub = await add_subscriber(session, chat)
            await enqueue_messages(session, sub, ["x"], clock(), key="a")
    first = Outbox(db.sessions, worker_id="a", lease=timedelta(seconds=30))
    second = Outbox(db.sessions, worker_id="b", lease=timedelta(seconds=30))
    got_a = await first.claim(clock(), 12)
    got_b = await second.claim(clock(), 12)
    assert len(got_a) == 12
    assert len(got_b) == 8
    assert not {d.id for d in got_a} & {d.id for d in got_b}
    async with db.sessions() as session:
        owners = Counter((await session.scalars(select(Delivery.lease_owner))).all())
    assert owners == {"a": 12, "b": 8}
