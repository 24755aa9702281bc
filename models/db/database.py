"""The database as the rest of the program sees it: a ``Database`` (engine and sessions, built
once by the composition root) and a ``UnitOfWork`` (one transaction's repositories).

Nothing outside ``models.db`` imports SQLAlchemy: the pipeline, delivery and the bot open
``db.transaction()`` (commits on success, rolls back on an exception) or ``db.reading()``
(read-only, never commits) and call repository methods that take and return plain data.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from functools import cached_property

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.db.audit import AuditRepository
from models.db.csl import CslRepository
from models.db.deliveries import DeliveryRepository
from models.db.engine import PoolConfig, make_engine, make_session_factory
from models.db.events import EventRepository
from models.db.feedback import FeedbackRepository
from models.db.items import ItemRepository
from models.db.knownorgs import KnownOrgRepository
from models.db.leadership import Leadership, lock_key
from models.db.learned import LearnedModelRepository
from models.db.matches import MatchRepository
from models.db.migrate import current_revision, head_revision, upgrade
from models.db.queries import Queries
from models.db.reminders import ReminderRepository
from models.db.retention import PurgeReport, RetentionPolicy, compact_sqlite, purge
from models.db.sources import SourceRepository
from models.db.subscribers import SubscriberRepository
from models.db.themes import ThemeRepository
from models.db.watched import WatchedOrgRepository


class UnitOfWork:
    """The repositories of one transaction (the caller of ``Database.transaction`` owns it)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @cached_property
    def sources(self) -> SourceRepository:
        return SourceRepository(self._session)

    @cached_property
    def items(self) -> ItemRepository:
        return ItemRepository(self._session)

    @cached_property
    def themes(self) -> ThemeRepository:
        return ThemeRepository(self._session)

    @cached_property
    def events(self) -> EventRepository:
        return EventRepository(self._session)

    @cached_property
    def matches(self) -> MatchRepository:
        return MatchRepository(self._session)

    @cached_property
    def subscribers(self) -> SubscriberRepository:
        return SubscriberRepository(self._session)

    @cached_property
    def deliveries(self) -> DeliveryRepository:
        return DeliveryRepository(self._session)

    @cached_property
    def audit(self) -> AuditRepository:
        return AuditRepository(self._session)

    @cached_property
    def reminders(self) -> ReminderRepository:
        return ReminderRepository(self._session)

    @cached_property
    def watched(self) -> WatchedOrgRepository:
        return WatchedOrgRepository(self._session)

    @cached_property
    def known(self) -> KnownOrgRepository:
        return KnownOrgRepository(self._session)

    @cached_property
    def csl(self) -> CslRepository:
        return CslRepository(self._session)

    @cached_property
    def feedback(self) -> FeedbackRepository:
        return FeedbackRepository(self._session)

    @cached_property
    def learned(self) -> LearnedModelRepository:
        return LearnedModelRepository(self._session)

    @cached_property
    def queries(self) -> Queries:
        return Queries(self._session)

    async def serialize(self, name: str, *, shared: bool = False) -> None:
        """Take a transaction-level lock named ``name`` (PostgreSQL; SQLite has one writer):
        workers doing the same thing at once (seeding, say) take turns. ``shared`` holders run
        together and only wait for (and hold off) the one that takes it alone."""
        if self._session.get_bind().dialect.name == "postgresql":
            key = lock_key(f"policywatch:{name}")
            call = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
            await self._session.execute(text(f"SELECT {call}(:k)"), {"k": key})

    async def purge(self, policy: RetentionPolicy, now: datetime) -> PurgeReport:
        """Delete what the retention policy says has expired, then the events it emptied."""
        report = await purge(self._session, policy, now)
        if policy.unmatched_items is None:
            return report
        return replace(report, events=await self.events.prune(policy.unmatched_items, now))


class Database:
    """An engine and its session factory; ``await db.dispose()`` when done."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = make_session_factory(engine)
        self._write_lock = asyncio.Lock()

    @classmethod
    def connect(
        cls, url: str | URL, *, null_pool: bool = False, pool: PoolConfig | None = None
    ) -> Database:
        return cls(make_engine(url, null_pool=null_pool, pool=pool))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def transaction(self, *, serialized: bool = False) -> AsyncIterator[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back if it raises.

        ``serialized``: on SQLite, take this process's write lock first. SQLite has one writer,
        and a read snapshot that later writes fails with SQLITE_BUSY instead of waiting, so
        concurrent writers in one process (polls in parallel tasks) queue here. PostgreSQL needs
        no such lock.
        """
        if serialized and not self.is_postgres:
            async with self._write_lock, self.sessions.begin() as session:
                yield UnitOfWork(session)
        else:
            async with self.sessions.begin() as session:
                yield UnitOfWork(session)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[UnitOfWork]:
        """A read-only unit of work (it is never committed)."""
        async with self.sessions() as session:
            yield UnitOfWork(session)

    def leadership(self, job: str) -> Leadership:
        """The advisory lock that makes one process the only one doing ``job``."""
        return Leadership(self.engine, job)

    async def ping(self) -> None:
        """Raise unless the database answers ``SELECT 1`` (callers bound the wait)."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def revision(self) -> tuple[str | None, str | None]:
        """(the database's schema revision, the newest one this code knows)."""
        return await current_revision(self.engine), head_revision()

    async def migrate(self) -> tuple[str | None, str | None]:
        """Upgrade to the newest schema (a no-op when current; safe when workers start
        together). Returns the revisions before and after."""
        before = await current_revision(self.engine)
        await upgrade(self.engine, "head")
        return before, await current_revision(self.engine)

    async def compact(self) -> bool:
        """Checkpoint and, when worthwhile, VACUUM a SQLite file; False elsewhere."""
        return await compact_sqlite(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()
