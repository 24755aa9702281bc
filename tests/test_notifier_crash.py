"""Crash test: the notifier runs as a real process (``policywatch notify``) against the fake
Bot API; it is killed with SIGKILL mid fan-out and restarted. Every message arrives, and at most
the in-flight ones (``POLICYWATCH_SEND_MAX_IN_FLIGHT``) arrive twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import Database
from tests.delivery_world import Clock, add_subscriber, enqueue_messages
from tests.fakes.telegram import TOKEN, FakeBotAPI, serve_fake_bot_api

CHATS = 50
IN_FLIGHT = 4


def start_notifier(env: dict[str, str], log: Path, worker: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "policywatch", "notify"],
            env={**env, "POLICYWATCH_WORKER_ID": worker},
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
async def test_killed_mid_fan_out_and_restarted_loses_nothing(db: Database, tmp_path: Path) -> None:
    clock = Clock()
    async with db.sessions.begin() as session:
        for chat in range(1, CHATS + 1):
            sub = await add_subscriber(session, chat)
            await enqueue_messages(session, sub, [f"alert for chat {chat}"], clock(), key="a")
    await db.engine.dispose()

    with serve_fake_bot_api(FakeBotAPI()) as running:
        fake = running.fake
        env = {
            **os.environ,
            "PTB_TIMEDELTA": "true",
            "POLICYWATCH_DATABASE_URL": db.url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": running.base_url,
            "POLICYWATCH_SEND_RATE": "25",
            "POLICYWATCH_SEND_MAX_IN_FLIGHT": str(IN_FLIGHT),
            "POLICYWATCH_OUTBOX_LEASE": "2s",
            "POLICYWATCH_OUTBOX_TICK": "0.2s",
            "POLICYWATCH_LOG_LEVEL": "WARNING",
        }
        log = tmp_path / "notifier.log"
        first = start_notifier(env, log, "first")
        try:
            assert fake.wait_for(lambda f: len(f.sent) >= CHATS // 3, timeout=60), log.read_text()
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        at_kill = len(fake.sent)
        assert at_kill < CHATS, "killed too late to test anything"

        second = start_notifier(env, log, "second")
        try:
            delivered = fake.wait_for(
                lambda f: len({m.chat_id for m in f.sent}) == CHATS, timeout=60
            )
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=20) == 0, log.read_text()
        assert delivered, log.read_text()

        copies = Counter(m.chat_id for m in fake.sent)
        assert set(copies) == set(range(1, CHATS + 1))
        assert sum(n - 1 for n in copies.values()) <= IN_FLIGHT
        assert all(m.text == f"alert for chat {m.chat_id}" for m in fake.sent)
        assert fake.flood_errors == 0
