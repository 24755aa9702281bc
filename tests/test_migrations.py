"""The schema is built only by alembic, on SQLite and PostgreSQL, and matches the models."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from models.db.engine import make_engine
from models.db.migrate import current_revision, downgrade, head_revision, upgrade
from models.db.tables import Base
from tests.conftest import BACKENDS

EXPECTED_TABLES = {
    "sources",
    "items",
    "themes",
    "theme_rules",
    "item_themes",
    "subscribers",
    "subscriptions",
    "deliveries",
    "audit_log",
    "events",
    "item_events",
    "item_keys",
    "csl_entries",
    "csl_changes",
    "watched_orgs",
    "known_org_names",
    "reminders",
    "theme_models",
    "feedback",
    "neighbour_indexes",
}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


def _diff(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_downgrade_upgrade(
    backend: str, fresh_database: Callable[[str], str]
) -> None:
    engine = make_engine(fresh_database(backend), null_pool=True)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == EXPECTED_TABLES
        assert await current_revision(engine) == head_revision()

        await downgrade(engine, "base")
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()
        assert await current_revision(engine) is None

        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        await upgrade(engine)  # a second upgrade is a no-op
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_autogenerate_finds_no_difference(
    backend: str, fresh_database: Callable[[str], str]
) -> None:
    """The migrations build exactly the schema the models declare."""
    engine = make_engine(fresh_database(backend), null_pool=True)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
