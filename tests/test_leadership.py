"""One sender at a time: the advisory lock is exclusive and passes on when its holder goes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from models.db.engine import make_engine
from models.db.leadership import Leadership, lock_key
from tests.conftest import terminate_advisory_lock_holders


async def eventually(attempt: Callable[[], Awaitable[bool]], within: float = 5.0) -> bool:
    for _ in range(int(within / 0.05)):
        if await attempt():
            return True
        await asyncio.sleep(0.05)
    return False


def test_lock_keys_are_stable_and_distinct() -> None:
    assert lock_key("policywatch:sender") == lock_key("policywatch:sender")
    assert lock_key("policywatch:sender") != lock_key("policywatch:poller")
    assert -(2**63) <= lock_key("x") < 2**63


@pytest.mark.postgres
async def test_only_one_holder_and_takeover(fresh_database: Callable[[str], str]) -> None:
    url = fresh_database("postgresql")
    first_engine, second_engine = make_engine(url), make_engine(url)
    first = Leadership(first_engine, "sender")
    second = Leadership(second_engine, "sender")
    other_job = Leadership(second_engine, "poller")
    try:
        assert await first.try_acquire() is True
        assert await first.try_acquire() is True  # still ours
        assert await second.try_acquire() is False
        assert await other_job.try_acquire() is True  # a different job is independent
        # The holder's connection dies (as when its process is killed): the lock goes with it.
        await terminate_advisory_lock_holders(second_engine)
        # Termination is asynchronous: the backend (and its lock) goes a moment later, which
        # the service covers by trying again on its next tick.
        assert await eventually(second.try_acquire)
        assert await first.try_acquire() is False  # notices it lost the lock, does not steal it
        await second.release()
        assert second.held is False
        assert await second.try_acquire() is True
    finally:
        for lead in (first, second, other_job):
            await lead.release()
        await first_engine.dispose()
        await second_engine.dispose()


async def test_sqlite_process_always_leads(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    try:
        assert await Leadership(engine, "sender").try_acquire() is True
    finally:
        await engine.dispose()
