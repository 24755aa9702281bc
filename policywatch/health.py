"""``/healthz`` and ``/metrics`` over a tiny asyncio HTTP server on the service's own loop.

Because the server runs on the same event loop as the ticks, an answer at all proves the loop is
alive. ``/healthz`` is 200 only when the database answers a query within a second, the scheduler
has ticked recently and the notifier (where this process runs one) has run recently; otherwise
503 with the failing checks named. ``/metrics`` is the Prometheus text format.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.db import Database
from policywatch.metrics import Metrics

MAX_REQUEST_BYTES = 8192


@dataclass
class Heartbeats:
    """When each periodic part of the service last completed a run, and how often it should."""

    expected: dict[str, timedelta] = field(default_factory=dict)
    last: dict[str, datetime] = field(default_factory=dict)

    def expect(self, name: str, every: timedelta) -> None:
        self.expected[name] = every

    def beat(self, name: str, now: datetime) -> None:
        self.last[name] = now

    def stale(
        self, now: datetime, *, grace: float = 3.0, minimum: timedelta = timedelta(seconds=10)
    ) -> list[str]:
        """Names whose last beat is older than ``grace`` × their interval (at least ``minimum``)."""
        late = []
        for name, every in self.expected.items():
            allowed = max(every * grace, minimum)
            last = self.last.get(name)
            if last is None or now - last > allowed:
                late.append(name)
        return sorted(late)


@dataclass(frozen=True, slots=True)
class HealthReport:
    ok: bool
    checks: dict[str, str]

    def to_json(self) -> bytes:
        return json.dumps({"ok": self.ok, "checks": self.checks}, sort_keys=True).encode()


async def check_health(
    db: Database,
    heartbeats: Heartbeats,
    now: datetime,
    *,
    db_timeout: float = 1.0,
    started_at: datetime | None = None,
) -> HealthReport:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(db_timeout):
            await db.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure to answer is "down", whatever its type
        checks["database"] = f"down: {type(exc).__name__}"
    # Right after start nothing has ticked yet; that is not a failure.
    warming = started_at is not None and now - started_at < timedelta(seconds=15)
    for name in heartbeats.expected:
        checks[name] = "ok"
    if not warming:
        for name in heartbeats.stale(now):
            last = heartbeats.last.get(name)
            checks[name] = f"stale since {last.isoformat()}" if last else "never ran"
    return HealthReport(ok=all(v == "ok" for v in checks.values()), checks=checks)


class HealthServer:
    """Serves /healthz and /metrics on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        *,
        db: Database,
        heartbeats: Heartbeats,
        metrics: Metrics,
        clock: Callable[[], datetime],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.db, self.heartbeats, self.metrics, self.clock = db, heartbeats, metrics, clock
        self.host, self.port = host, port
        self.started_at = clock()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        try:
            request_line = head[:MAX_REQUEST_BYTES].split(b"\r\n", 1)[0].decode("latin-1")
            method, path, _ = request_line.split(" ", 2)
        except ValueError:
            await self._reply(writer, 400, b"bad request\n", "text/plain")
            return
        path = path.split("?", 1)[0]
        if method not in {"GET", "HEAD"}:
            await self._reply(writer, 405, b"method not allowed\n", "text/plain")
        elif path == "/healthz":
            report = await check_health(
                self.db, self.heartbeats, self.clock(), started_at=self.started_at
            )
            await self._reply(
                writer, 200 if report.ok else 503, report.to_json(), "application/json"
            )
        elif path == "/metrics":
            await self._reply(
                writer, 200, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8"
            )
        else:
            await self._reply(writer, 404, b"not found\n", "text/plain")

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str) -> None:
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            503: "Service Unavailable",
        }[status]
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        writer.write(head + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
