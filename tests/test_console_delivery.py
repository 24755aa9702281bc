"""Without a bot token, the notifier prints what it would send (``policywatch notify --once``),
and records the rows as sent like any other sender."""

from __future__ import annotations

import io

from delivery.senders import ConsoleSender
from policywatch.app import build_services
from policywatch.service import service_ticks
from policywatch.settings import Settings
from tests.conftest import Database
from tests.delivery_world import Clock, add_subscriber, deliveries, enqueue_messages
from tests.test_cli import cli_env, policywatch


async def test_console_sender_prints_plain_text_and_buttons() -> None:
    out = io.StringIO()
    result = await ConsoleSender(out).send(
        42,
        {
            "text": "<b>Entity List</b> &amp; more",
            "parse_mode": "HTML",
            "reply_markup": {"inline_keyboard": [[{"text": "Mute", "callback_data": "mute:x"}]]},
        },
    )
    assert result.message_id == 1
    assert out.getvalue() == "--- to chat 42 ---\nEntity List & more\n[Mute]\n"


async def test_notify_once_without_a_token_prints_and_records(db: Database) -> None:
    clock = Clock()
    async with db.sessions.begin() as session:
        sub = await add_subscriber(session, 42)
        await enqueue_messages(session, sub, ["<b>hello</b> &lt;world&gt;"], clock(), key="b")
    await db.engine.dispose()

    result = policywatch("notify", "--once", env=cli_env(db.url))

    assert result.returncode == 0, result.stderr
    assert "--- to chat 42 ---\nhello <world>\n" in result.stdout
    assert "sent 1 messages (1 deliveries)" in result.stdout
    async with db.sessions() as session:
        [row] = await deliveries(session)
    assert row.status == "sent"


async def test_the_service_runs_the_outbox_and_digest_ticks(db: Database) -> None:
    settings = Settings(POLICYWATCH_DATABASE_URL=db.url)
    async with build_services(settings) as services:
        assert isinstance(services.sender, ConsoleSender)
        names = [tick.name for tick in service_ticks(services)]
    assert {"outbox", "digests"} <= set(names)
