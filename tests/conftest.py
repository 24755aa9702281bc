"""Shared fixtures: databases (SQLite and PostgreSQL, both built by ``alembic upgrade head``),
and a guard that fails any test trying to reach a non-loopback address.

PostgreSQL: the admin URL is POLICYWATCH_TEST_PG_URL (default: postgres@127.0.0.1:5432, trust
auth). Each run creates databases of its own (``pw_test_<pid>_<random>_*``) and drops them at
the end. With CI=true an unreachable server fails the run; otherwise those tests are skipped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import models.db
from models.db.engine import make_engine
from models.db.migrate import upgrade
from tests.fakes.feeds import FeedServer, feed_server
from tests.fakes.telegram import FakeBotAPI, RunningFake, serve_fake_bot_api

os.environ.setdefault("PTB_TIMEDELTA", "true")
# In-process tests parse inline; the process tests (which drop POLICYWATCH_* variables) and
# tests/test_parser_pool.py use worker processes.
os.environ.setdefault("POLICYWATCH_PARSE_WORKERS", "0")
# The sentence encoder costs tens of milliseconds an item: in-process tests classify with the
# n-gram head alone unless they are about the encoder (tests/test_encoder.py turns it on).
os.environ.setdefault("POLICYWATCH_ENCODER", "off")

PG_ADMIN_URL = os.environ.get(
    "POLICYWATCH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# One name per run, shared by pytest-xdist's workers (they inherit the controller's environment),
# each of which names its databases after itself as well: ``<RUN_ID>_<worker>_<suffix>``.
RUN_ID = os.environ.setdefault(
    "_POLICYWATCH_TEST_RUN", f"pw_test_{os.getpid()}_{secrets.token_hex(3)}"
)
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

# ---------------------------------------------------------------- network guard


def _is_local(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0]
    if host in {"localhost", ""}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _is_local(address):
        msg = f"tests may only connect to loopback addresses, not {address!r}"
        raise ConnectionRefusedError(msg)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _is_local(address):
        msg = f"tests may only connect to loopback addresses, not {address!r}"
        raise ConnectionRefusedError(msg)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_external_network() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _guarded_connect)
        mp.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
        yield


# ---------------------------------------------------------------- PostgreSQL administration


def _pg_conninfo(database: str | None = None) -> str:
    url = PG_ADMIN_URL
    if database is not None:
        url = url.rsplit("/", 1)[0] + "/" + database
    return url


class PostgresServer:
    """Creates and drops this run's databases on the test server."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create_database(self, suffix: str) -> str:
        name = f"{RUN_ID}_{WORKER}_{suffix}"
        with psycopg.connect(_pg_conninfo(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return _pg_conninfo(name)

    def drop_all(self) -> None:
        with psycopg.connect(_pg_conninfo(), autocommit=True, connect_timeout=5) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        with psycopg.connect(_pg_conninfo(), autocommit=True, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL at {PG_ADMIN_URL} does not answer: {exc}")
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL}: {exc}")
    server = PostgresServer()
    yield server
    server.drop_all()


# ---------------------------------------------------------------- migrated databases


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per run; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"

    async def build() -> None:
        engine = make_engine(f"sqlite:///{path}", null_pool=True)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def postgres_migrated(postgres: PostgresServer) -> str:
    """A PostgreSQL database migrated once per run; tests truncate it before use."""
    url = postgres.create_database("shared")

    async def build() -> None:
        engine = make_engine(url, null_pool=True)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(build())
    return url


def _truncate_all(url: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        ).fetchall()
        if rows:
            tables = ", ".join(f'"{r[0]}"' for r in rows)
            conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


class Database(models.db.Database):
    """A migrated, empty database for one test (the program's ``Database``, with its URL)."""

    def __init__(self, url: str) -> None:
        super().__init__(make_engine(url))
        self.url = url

    @property
    def backend(self) -> str:  # "sqlite" or "postgresql"
        return self.dialect


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated, empty database, for each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "policywatch.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_migrated")
    _truncate_all(url)
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """Make an empty, unmigrated database of the given backend; returns its URL."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'fresh-{secrets.token_hex(3)}.db'}"
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.create_database(f"fresh_{secrets.token_hex(3)}")

    return make


async def terminate_advisory_lock_holders(engine: AsyncEngine) -> None:
    """Kill every other backend holding an advisory lock in this PostgreSQL database, as when
    a worker's process dies. Asynchronous: the backend (and its lock) goes a moment later."""
    async with engine.connect() as admin:
        await admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )


# ---------------------------------------------------------------- loopback peers


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    """A loopback feed server (``tests.fakes.feeds``)."""
    with feed_server() as server:
        yield server


@pytest.fixture
def telegram() -> Iterator[RunningFake]:
    """A loopback fake Bot API (``tests.fakes.telegram``)."""
    with serve_fake_bot_api(FakeBotAPI()) as running:
        yield running


# ---------------------------------------------------------------- reporting


_pg_passed: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and "postgres" in report.keywords:
        _pg_passed.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(
        f"PostgreSQL: {len(_pg_passed)} tests passed against {PG_ADMIN_URL.rsplit('/', 1)[0]} "
        f"(databases {RUN_ID}_*, dropped after the run)"
    )
