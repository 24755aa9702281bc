"""/healthz and /metrics: real HTTP on loopback, with the database cut and restored."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from models.db import Database as ProgramDatabase
from models.db.tables import Delivery, Subscriber
from policywatch.health import HealthServer, Heartbeats
from policywatch.metrics import Metrics
from tests.conftest import Database
from tests.fakes.tcpproxy import TcpProxy


def test_heartbeats_go_stale() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    beats = Heartbeats()
    beats.expect("scheduler", timedelta(seconds=5))
    beats.expect("notifier", timedelta(seconds=1))
    assert beats.stale(now) == ["notifier", "scheduler"]  # never ran
    beats.beat("scheduler", now)
    beats.beat("notifier", now)
    assert beats.stale(now + timedelta(seconds=9)) == []
    assert beats.stale(now + timedelta(seconds=16)) == ["notifier", "scheduler"]


async def get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{port}{path}", timeout=5)


@pytest.mark.postgres
async def test_healthz_follows_the_database_without_restart(
    fresh_database: Callable[[str], str],
) -> None:
    url = urlsplit(fresh_database("postgresql"))
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    database = ProgramDatabase.connect(f"postgresql://postgres@127.0.0.1:{proxy.port}{url.path}")
    beats = Heartbeats()
    beats.expect("scheduler", timedelta(seconds=5))
    metrics = Metrics()
    server = HealthServer(
        db=database, heartbeats=beats, metrics=metrics, clock=lambda: datetime.now(UTC)
    )
    await server.start()
    try:
        beats.beat("scheduler", datetime.now(UTC))
        ok = await get(server.port, "/healthz")
        assert ok.status_code == 200, ok.text
        assert ok.json()["checks"]["database"] == "ok"

        await proxy.cut()
        down = await get(server.port, "/healthz")
        assert down.status_code == 503
        assert down.json()["checks"]["database"].startswith("down")

        await proxy.restore()
        await asyncio.sleep(0.05)
        back = await get(server.port, "/healthz")
        assert back.status_code == 200, back.text
    finally:
        await server.stop()
        await database.dispose()
        await proxy.cut()


async def test_healthz_reports_a_stalled_scheduler_and_metrics_render(tmp_path: object) -> None:
    database = ProgramDatabase.connect(f"sqlite:///{tmp_path}/h.db")
    beats = Heartbeats()
    beats.expect("scheduler", timedelta(seconds=1))
    clock_now = [datetime(2026, 11, 26, tzinfo=UTC)]
    metrics = Metrics()
    server = HealthServer(
        db=database, heartbeats=beats, metrics=metrics, clock=lambda: clock_now[0]
    )
    await server.start()
    try:
        beats.beat("scheduler", clock_now[0])
        assert (await get(server.port, "/healthz")).status_code == 200
        clock_now[0] += timedelta(minutes=5)  # no tick for five minutes
        stalled = await get(server.port, "/healthz")
        assert stalled.status_code == 503
        assert stalled.json()["checks"]["scheduler"].startswith("stale since")

        metrics.deliveries.labels(outcome="sent").inc(3)
        metrics.telegram_retry_after.inc()
        body = (await get(server.port, "/metrics")).text
        assert 'policywatch_deliveries_total{outcome="sent"} 3.0' in body
        assert "policywatch_telegram_retry_after_total 1.0" in body
        assert (await get(server.port, "/nope")).status_code == 404
    finally:
        await server.stop()
        await database.dispose()


async def test_outbox_gauges_come_from_the_database(db: Database) -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    async with db.sessions.begin() as session:
        sub = Subscriber(chat_id=5, chat_type="private")
        session.add(sub)
        await session.flush()
        for n, age in enumerate((30, 300)):
            session.add(
                Delivery(
                    subscriber_id=sub.id,
                    kind="notice",
                    dedupe_key=f"k{n}",
                    next_attempt_at=now,
                    created_at=now - timedelta(seconds=age),
                )
            )
        session.add(
            Delivery(
                subscriber_id=sub.id,
                kind="notice",
                dedupe_key="done",
                status="sent",
                next_attempt_at=now,
                created_at=now - timedelta(hours=5),
            )
        )
    async with db.reading() as uow:
        backlog = await uow.deliveries.backlog(now)
    assert backlog.pending == 2
    assert backlog.oldest_seconds == 300
