"""The fake Bot API answers PTB as Telegram would, so tests of our code can trust it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from tests.fakes.telegram import TOKEN, FakeBotAPI, RunningFake, serve_fake_bot_api


@pytest.fixture
def running() -> Iterator[RunningFake]:
    with serve_fake_bot_api(FakeBotAPI()) as running:
        yield running


async def test_ptb_round_trip_and_flood_limits(running: RunningFake) -> None:
    fake = running.fake
    async with Bot(TOKEN, base_url=running.base_url) as bot:
        me = await bot.get_me()
        assert me.username == "policywatch_test_bot"
        message = await bot.send_message(42, "<b>hello</b> &amp; welcome", parse_mode="HTML")
        assert message.chat_id == 42
        with pytest.raises(RetryAfter):  # a second message to one chat within a second
            await bot.send_message(42, "again")
        await bot.send_message(43, "another chat is fine")
        await asyncio.sleep(1.05)
        await bot.send_message(42, "after a second is fine")
    assert [m.text for m in fake.messages_to(42)] == [
        "<b>hello</b> &amp; welcome",
        "after a second is fine",
    ]
    assert fake.flood_errors == 1


async def test_faults_map_to_ptb_errors(running: RunningFake) -> None:
    fake = running.fake
    fake.block(7)
    fake.migrate(-55, -1000055)
    fake.fail_next("sendMessage", 502, "Bad Gateway", chat_id=8)
    async with Bot(TOKEN, base_url=running.base_url) as bot:
        with pytest.raises(Forbidden, match="blocked"):
            await bot.send_message(7, "x")
        with pytest.raises(ChatMigrated) as migrated:
            await bot.send_message(-55, "x")
        assert migrated.value.new_chat_id == -1000055
        with pytest.raises(NetworkError):
            await bot.send_message(8, "x")
        with pytest.raises(BadRequest, match="parse entities"):
            await bot.send_message(9, "<b>unclosed", parse_mode="HTML")
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(10, "长" * 4097)
    assert fake.sent == []


async def test_updates_are_delivered_to_get_updates(running: RunningFake) -> None:
    running.fake.push_text("/start", chat_id=42)
    async with Bot(TOKEN, base_url=running.base_url) as bot:
        updates = await bot.get_updates(timeout=1)
        assert [u.message.text for u in updates if u.message] == ["/start"]
        assert updates[0].message is not None
        assert updates[0].message.entities[0].type == "bot_command"
        again = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
        assert again == ()
