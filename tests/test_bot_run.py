"""``policywatch run`` with a token: the bot answers over the real Bot API protocol, registers
its command list, and keeps the ticks going while Telegram is unreachable at first."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncEngine

import policywatch.service as service_module
from bot.application import Backoff
from bot.commands import COMMANDS
from models.db.engine import make_engine
from models.db.leadership import Leadership
from policywatch.app import Services, build_services
from policywatch.service import Tick, run_service, stop_ticks
from policywatch.settings import Settings
from tests.botkit import make_settings
from tests.conftest import Database, terminate_advisory_lock_holders
from tests.fakes.telegram import FakeBotAPI, RunningFake, reserve_port, serve_fake_bot_api

ROOT = Path(__file__).resolve().parents[1]


def fake_on(fake: FakeBotAPI, sock: socket.socket) -> AbstractContextManager[RunningFake]:
    """The fake Bot API, on a port reserved in advance (so the service can be started first)."""
    return serve_fake_bot_api(fake, sock=sock)


async def wait_until(predicate: object, within: float = 15.0) -> None:
    assert callable(predicate)
    for _ in range(int(within / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_run_answers_start_after_telegram_comes_back(db: Database) -> None:
    sock = reserve_port()
    port = sock.getsockname()[1]
    settings = make_settings(db.url, f"http://127.0.0.1:{port}/bot")
    ticks_run = 0

    async def tick() -> None:
        nonlocal ticks_run
        ticks_run += 1

    stop = asyncio.Event()
    async with build_services(settings) as services:
        task = asyncio.create_task(
            run_service(
                services,
                ticks=[Tick("count", timedelta(seconds=0.1), tick)],
                stop=stop,
                bot_backoff=Backoff(initial=0.05, cap=0.2),
            )
        )
        await _telegram_comes_back(task, stop, sock, lambda: ticks_run)
    assert task.exception() is None


async def _telegram_comes_back(
    task: asyncio.Task[None],
    stop: asyncio.Event,
    sock: socket.socket,
    ticks_run: Callable[[], int],
) -> None:
    try:
        # Telegram is unreachable: the ticks still run, and the bot keeps retrying.
        await wait_until(lambda: ticks_run() >= 3)
        assert not task.done()
        fake = FakeBotAPI()
        with fake_on(fake, sock):
            fake.push_text("/start", chat_id=42)
            await wait_until(lambda: bool(fake.messages_to(42)))
            assert "Welcome to PolicyWatch" in fake.messages_to(42)[0].text
            registered = [c["command"] for c in fake.commands]
            assert registered == [c.name for c in COMMANDS]
            assert readme_commands() == registered
            polls = [c.params for c in fake.calls if c.method == "getUpdates"]
            assert "my_chat_member" in polls[0]["allowed_updates"]
            stop.set()
            await asyncio.wait_for(task, timeout=15)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def test_stop_waits_for_the_ticks_in_progress_to_clean_up(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """On SIGTERM a tick in progress is cancelled and its clean-up (a poll giving its sources
    back) finishes before the service tears down the engine it needs. Being stopped is not a
    failure: nothing is logged as an error (the scheduler used to log the cancellation with a
    traceback)."""
    settings = Settings.model_validate({"POLICYWATCH_DATABASE_URL": db.url})  # no bot
    started, cleaned_up = asyncio.Event(), asyncio.Event()

    async def long_tick() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.2)  # clean-up that itself awaits
            cleaned_up.set()

    stop = asyncio.Event()
    async with build_services(settings) as services:
        task = asyncio.create_task(
            run_service(services, ticks=[Tick("long", timedelta(seconds=60), long_tick)], stop=stop)
        )
        await asyncio.wait_for(started.wait(), timeout=15)
        stop.set()
        await asyncio.wait_for(task, timeout=15)
    assert cleaned_up.is_set()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_stopping_as_the_scheduler_wakes_up_to_start_a_run_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stop just after the scheduler queued a wake-up with a run due: the run must not be
    started only to be cancelled before its first step, which the scheduler logs as a failed
    job with a traceback (seen once in the end-to-end test, when the scheduler's own heartbeat
    fell due at the SIGTERM). Runs already begun end as stopped."""
    ended: list[str] = []
    begun = asyncio.Event()

    async def tick() -> None:
        ended.append("begun")
        begun.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:  # as ``_guarded`` ends a tick stopped in progress
            ended.append("stopped")

    scheduler = AsyncIOScheduler(timezone="UTC")
    due = datetime.now(UTC)
    scheduler.add_job(tick, IntervalTrigger(seconds=60), id="due", next_run_time=due)
    scheduler.start()  # queues its first wake-up, which will start "due"
    await stop_ticks(scheduler, set())
    await asyncio.sleep(0.05)  # the scheduler's queued calls and done-callbacks run
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert ended == []  # the stop came first: the due run never started

    # a run begun before the stop is cancelled in progress and ends as stopped
    ended.clear()
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(tick, IntervalTrigger(seconds=60), id="begun", next_run_time=due)
    scheduler.start()
    await asyncio.wait_for(begun.wait(), timeout=5)
    await stop_ticks(scheduler, set())
    await asyncio.sleep(0.05)
    assert ended == ["begun", "stopped"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def readme_command_rows() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Bot commands", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `/")]
    return [row.replace("\\|", "|") for row in rows]


def readme_commands() -> list[str]:
    return [row.split("`")[1].split()[0].lstrip("/") for row in readme_command_rows()]


def test_readme_lists_every_command_with_its_usage() -> None:
    rows = readme_command_rows()
    assert readme_commands() == [c.name for c in COMMANDS]
    for row, cmd in zip(rows, COMMANDS, strict=True):
        assert f"`{cmd.usage}`" in row, row


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_worker_that_loses_the_poller_lock_stops_polling_until_it_is_free(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database blip drops this worker's lock and another worker takes it: this one must stop
    long-polling (two pollers get 409 Conflict) and resume only when the lock is free again."""
    monkeypatch.setattr(service_module, "LEADER_RETRY", 0.2)
    other_engine = make_engine(db_url)
    competitor = Leadership(other_engine, "poller")
    try:
        with serve_fake_bot_api() as running:
            async with build_services(make_settings(db_url, running.base_url)) as services:
                await _lose_and_retake_the_lock(services, running.fake, competitor, other_engine)
    finally:  # a failure above must not leave an engine open for a later test to trip on
        await competitor.release()
        await other_engine.dispose()


async def _lose_and_retake_the_lock(
    services: Services, fake: FakeBotAPI, competitor: Leadership, other_engine: AsyncEngine
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(
        service_module._run_bot_when_leader(services, stop, Backoff(initial=0.05, cap=0.2))
    )
    try:
        fake.push_text("/start", chat_id=42)
        await wait_until(lambda: len(fake.messages_to(42)) == 1)

        # This worker's lock connection dies and the competitor takes the lock. Termination is
        # asynchronous (the lock goes with the backend a moment later, seconds on a loaded
        # machine) and this worker retries meanwhile and may win the lock back: terminate
        # whoever holds it until the competitor has it.
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            await terminate_advisory_lock_holders(other_engine)
            for _ in range(10):
                if await competitor.try_acquire():
                    break
                await asyncio.sleep(0.05)
            else:
                assert asyncio.get_running_loop().time() < deadline, "the lock never came free"
                continue
            break
        await wait_until(lambda: not services.leadership("poller").held)
        await asyncio.sleep(2.5)  # any long poll in flight has ended
        fake.push_text("/help", chat_id=42)
        await asyncio.sleep(1.5)
        assert len(fake.messages_to(42)) == 1  # nobody polls here while the other leads

        await competitor.release()
        await wait_until(lambda: len(fake.messages_to(42)) == 2)  # this worker is back
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
        await competitor.release()
