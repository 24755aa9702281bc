"""Engine and session factory. SQLite runs in WAL mode with a busy timeout and foreign keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """How many connections one process keeps (``size``) and may open beyond them
    (``overflow``), and how long a unit of work waits for one (``timeout``, seconds) before it
    fails. The defaults are SQLAlchemy's. On PostgreSQL every worker may hold size + overflow
    connections, and the server's ``max_connections`` (100 by default) bounds their sum."""

    size: int = 5
    overflow: int = 10
    timeout: float = 30.0


def normalize_database_url(url: str) -> URL:
    """Map the URL forms people write onto the async drivers we ship.

    ``sqlite:///x.db`` → aiosqlite; ``postgres://`` / ``postgresql://`` → psycopg 3.
    Raises ValueError for anything else.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+psycopg")
    msg = f"unsupported database {backend!r}: use sqlite:///path.db or postgresql://..."
    raise ValueError(msg)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(
    url: str | URL,
    *,
    null_pool: bool = False,
    pool: PoolConfig | None = None,
    echo: bool = False,
) -> AsyncEngine:
    """Build the async engine for ``url``; creates a SQLite file's directory if needed.
    ``null_pool``: a connection per unit of work (one-shot commands); else pooled by ``pool``."""
    parsed = normalize_database_url(url if isinstance(url, str) else url.render_as_string(False))
    kwargs: dict[str, Any] = {"echo": echo}
    if null_pool:
        kwargs["poolclass"] = NullPool
    elif parsed.database not in (None, "", ":memory:"):  # an in-memory SQLite has one connection
        config = pool or PoolConfig()
        kwargs |= {
            "pool_size": config.size,
            "max_overflow": config.overflow,
            "pool_timeout": config.timeout,
        }
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """One session per unit of work; objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"
