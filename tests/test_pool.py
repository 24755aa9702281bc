"""How many database connections one process holds: the operator's settings are the cap.

On PostgreSQL every worker may hold POLICYWATCH_DB_POOL_SIZE + POLICYWATCH_DB_MAX_OVERFLOW
connections, and all workers together must fit the server's max_connections; a unit of work
that finds none free waits POLICYWATCH_DB_POOL_TIMEOUT and then fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from sqlalchemy import exc, text
from sqlalchemy.pool import QueuePool

from models.db import Database
from models.db.engine import PoolConfig
from models.errors import ConfigError
from policywatch.app import build_services
from policywatch.settings import load_settings
from tests.conftest import BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_process_opens_no_more_connections_than_its_pool_allows(
    backend: str, fresh_database: Callable[[str], str]
) -> None:
    db = Database.connect(fresh_database(backend), pool=PoolConfig(size=1, overflow=1, timeout=0.5))
    release, both_held = asyncio.Event(), asyncio.Event()
    holding = 0

    async def hold() -> None:
        nonlocal holding
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            holding += 1
            if holding == 2:
                both_held.set()
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    try:
        await asyncio.wait_for(both_held.wait(), 10)
        started = time.monotonic()
        with pytest.raises(exc.TimeoutError):
            async with db.engine.connect() as conn:  # a third: none left
                await conn.execute(text("SELECT 1"))
        assert time.monotonic() - started >= 0.4  # it waited for one, as long as configured
        release.set()
        await asyncio.gather(*holders)
        async with db.engine.connect() as conn:  # and gets one once they are back
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        release.set()
        await asyncio.gather(*holders, return_exceptions=True)
        await db.dispose()


async def test_pool_settings_reach_the_services_engine(
    monkeypatch: pytest.MonkeyPatch, fresh_database: Callable[[str], str]
) -> None:
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", fresh_database("sqlite"))
    monkeypatch.setenv("POLICYWATCH_DB_POOL_SIZE", "3")
    monkeypatch.setenv("POLICYWATCH_DB_MAX_OVERFLOW", "2")
    monkeypatch.setenv("POLICYWATCH_DB_POOL_TIMEOUT", "5s")
    settings = load_settings(env_file=None)
    assert settings.db_pool == PoolConfig(size=3, overflow=2, timeout=5.0)
    async with build_services(settings) as services:
        pool = services.db.engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 2, 5.0)


def test_a_pool_too_small_for_the_two_leaders_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POLICYWATCH_DB_POOL_SIZE", "2")
    monkeypatch.setenv("POLICYWATCH_DB_MAX_OVERFLOW", "1")  # 3 in all: the locks keep 2
    with pytest.raises(ConfigError) as info:
        load_settings(env_file=None)
    assert "POLICYWATCH_DB_MAX_OVERFLOW" in str(info.value)
    assert "at least 4 (got 2 + 1)" in str(info.value)
