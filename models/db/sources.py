"""Sources: declarations from the config file or the chat, and sources as a work queue.

Claims are short transactions: ``next_check_at <= now`` and no live lease, oldest first,
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (so several workers never poll one source twice; SQLite
does not render it and is single-process). The lease expires, so a crashed worker's claim is
picked up again later. Fetching happens outside any transaction; ``record_poll`` writes the
outcome with the items in one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.configdoc import SyncReport
from models.db.tables import Source
from models.schedule import EXPECT_OPTION, HealthChange, expected_within, quiet_change
from models.sources import (
    ALERT_CHOICES,
    ALERTS_DIGEST,
    MAX_ETAG,
    MAX_LAST_MODIFIED,
    ORIGIN_CHAT,
    ORIGIN_CONFIG,
    ClaimedSource,
    PollRecord,
    RecordedPoll,
    SourceSpec,
    usable_validator,
)
from models.timeutil import parse_duration
from models.views import SourceView, ThemeList


class SourceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------ declarations

    async def sync_from_config(self, specs: Sequence[SourceSpec], now: datetime) -> SyncReport:
        """Upsert declared sources by name. Sources added or edited in chat are left alone;
        config sources that left the file are disabled (their items and history are kept)."""
        report = SyncReport()
        existing = {s.name: s for s in (await self.session.scalars(select(Source))).all()}
        for spec in specs:
            row = existing.pop(spec.name, None)
            if row is None:
                self.session.add(
                    Source(
                        name=spec.name,
                        kind=spec.kind,
                        url=spec.url,
                        options=dict(spec.options),
                        enabled=spec.enabled,
                        interval_seconds=spec.interval_seconds,
                        alerts=spec.alerts,
                        digest_themes=list(spec.digest_themes),
                        origin=ORIGIN_CONFIG,
                        next_check_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
                report.created.append(spec.name)
                continue
            if row.origin == ORIGIN_CHAT:
                report.kept_chat_edits.append(spec.name)
                continue
            wanted = {
                "kind": spec.kind,
                "url": spec.url,
                "options": dict(spec.options),
                "enabled": spec.enabled,
                "interval_seconds": spec.interval_seconds,
                "alerts": spec.alerts,
                "digest_themes": list(spec.digest_themes),
            }
            if all(getattr(row, key) == value for key, value in wanted.items()):
                report.unchanged.append(spec.name)
                continue
            if row.url != spec.url or row.kind != spec.kind:
                # A different resource: validators and cursors of the old one do not apply.
                row.etag = row.last_modified = None
                row.cursor = None
            for key, value in wanted.items():
                setattr(row, key, value)
            row.updated_at = now
            report.updated.append(spec.name)
        for row in existing.values():
            if row.origin == ORIGIN_CONFIG and row.enabled:
                row.enabled = False
                row.updated_at = now
                report.disabled.append(row.name)
        await self.session.flush()
        return report

    async def get(self, name: str) -> SourceView | None:
        row = await self.session.scalar(select(Source).where(Source.name == name))
        return _view(row) if row is not None else None

    async def all(self) -> list[SourceView]:
        """Every source, by name."""
        rows = (await self.session.scalars(select(Source).order_by(Source.name))).all()
        return [_view(r) for r in rows]

    async def names_starting(self, prefix: str) -> set[str]:
        rows = await self.session.scalars(
            select(Source.name).where(Source.name.startswith(prefix, autoescape=True))
        )
        return set(rows.all())

    async def add_from_chat(
        self,
        *,
        name: str,
        kind: str,
        url: str,
        options: Mapping[str, Any],
        interval_seconds: int,
        now: datetime,
    ) -> SourceView:
        """A source added in chat, due at once."""
        row = Source(
            name=name,
            kind=kind,
            url=url,
            options=dict(options),
            enabled=True,
            interval_seconds=interval_seconds,
            origin=ORIGIN_CHAT,
            next_check_at=now,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return _view(row)

    async def set_enabled(self, name: str, enabled: bool, now: datetime) -> SourceView | None:
        """Pause or resume a source (a chat edit: re-seeding leaves it alone); a resumed source
        is due at once. None when there is no such source."""
        row = await self.session.scalar(select(Source).where(Source.name == name))
        if row is None:
            return None
        row.enabled, row.origin, row.updated_at = enabled, ORIGIN_CHAT, now
        if enabled:
            row.next_check_at = now
        await self.session.flush()
        return _view(row)

    async def set_alerts(self, name: str, alerts: str, now: datetime) -> SourceView | None:
        """``instant`` or ``digest`` (``models.sources.ALERT_CHOICES``) for a source's matches
        (a chat edit: re-seeding leaves it alone). None when there is no such source."""
        if alerts not in ALERT_CHOICES:
            msg = f"alerts must be one of {', '.join(ALERT_CHOICES)}, not {alerts!r}"
            raise ValueError(msg)
        row = await self.session.scalar(select(Source).where(Source.name == name))
        if row is None:
            return None
        row.alerts, row.origin, row.updated_at = alerts, ORIGIN_CHAT, now
        if alerts != ALERTS_DIGEST:
            row.digest_themes = []  # instant again: every theme
        await self.session.flush()
        return _view(row)

    async def set_expectation(self, name: str, period: str, now: datetime) -> SourceView | None:
        """How long a source may bring nothing new (``7d``, or ``off``) before it is reported
        quiet (``models.schedule``; a chat edit). None when there is no such source; a period
        that does not parse is a ValueError."""
        if period != "off":
            parse_duration(period)
        row = await self.session.scalar(select(Source).where(Source.name == name))
        if row is None:
            return None
        row.options = {**(row.options or {}), EXPECT_OPTION: period}
        row.quiet_since = None  # judged again against the new period at the next poll
        row.origin, row.updated_at = ORIGIN_CHAT, now
        await self.session.flush()
        return _view(row)

    async def digest_routes(self, source_ids: Collection[int]) -> dict[int, frozenset[str] | None]:
        """Of these sources, those whose matches wait for digests: source id → the themes
        (slugs) whose matches wait, or None when all of them do."""
        if not source_ids:
            return {}
        rows = await self.session.execute(
            select(Source.id, Source.alerts, Source.digest_themes).where(
                Source.id.in_(list(source_ids))
            )
        )
        routes: dict[int, frozenset[str] | None] = {}
        for source_id, alerts, themes in rows.all():
            if alerts == ALERTS_DIGEST:
                routes[source_id] = None
            elif slugs := _slugs(themes):
                routes[source_id] = slugs
        return routes

    async def trusted_pairs(self, names: Collection[str] | None = None) -> set[tuple[str, str]]:
        """(source name, theme slug) pairs an admin trusts: the source's unsure matches of the
        theme alert at once whatever feedback says. Of these sources (every one with None)."""
        stmt = select(Source.name, Source.trusted_themes)
        if names is not None:
            stmt = stmt.where(Source.name.in_(sorted(names)))
        rows = await self.session.execute(stmt)
        return {(name, slug) for name, themes in rows.all() for slug in _slugs(themes)}

    async def set_theme_listed(
        self, name: str, column: ThemeList, slug: str, listed: bool, now: datetime
    ) -> SourceView | None:
        """Put ``slug`` in a source's ``column`` list of themes or take it out (a chat edit):
        ``digest_themes``, whose matches from it wait for digests (``/source digest <name>
        <theme>``), or ``trusted_themes``, whose unsure matches alert at once whatever feedback
        says (``/source trust``). None when there is no such source."""
        row = await self.session.scalar(select(Source).where(Source.name == name))
        if row is None:
            return None
        themes = [t for t in _slugs(getattr(row, column)) if t != slug]
        setattr(row, column, sorted({*themes, slug}) if listed else sorted(themes))
        row.origin, row.updated_at = ORIGIN_CHAT, now
        await self.session.flush()
        return _view(row)

    # ------------------------------------------------------------ the work queue

    async def claim_due(
        self,
        *,
        now: datetime,
        worker_id: str,
        lease: timedelta,
        limit: int,
        due_only: bool = True,
        exclude: Sequence[int] = (),
    ) -> list[ClaimedSource]:
        """Lease up to ``limit`` enabled sources that are due (or all, with ``due_only=False``)."""
        conditions = [
            Source.enabled.is_(True),
            or_(Source.lease_until.is_(None), Source.lease_until < now),
        ]
        if due_only:
            conditions.append(or_(Source.next_check_at.is_(None), Source.next_check_at <= now))
        if exclude:
            conditions.append(Source.id.not_in(list(exclude)))
        due = (
            select(Source.id)
            .where(*conditions)
            .order_by(Source.next_check_at, Source.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list((await self.session.scalars(due)).all())
        if not ids:
            return []
        # The lease condition is checked again in the UPDATE: on SQLite (no FOR UPDATE) another
        # claim may have leased some of these rows between our SELECT and our write, and
        # RETURNING says which rows this claim really got.
        won = set(
            (
                await self.session.execute(
                    update(Source)
                    .where(
                        Source.id.in_(ids),
                        or_(Source.lease_until.is_(None), Source.lease_until < now),
                    )
                    .values(lease_owner=worker_id, lease_until=now + lease, last_attempt_at=now)
                    .returning(Source.id)
                )
            )
            .scalars()
            .all()
        )
        if not won:
            return []
        rows = (await self.session.scalars(select(Source).where(Source.id.in_(won)))).all()
        by_id = {row.id: row for row in rows}
        return [_claimed(by_id[i]) for i in ids if i in by_id]

    async def release(self, source_ids: Sequence[int], worker_id: str) -> int:
        """Give back claims this worker will not finish (a graceful stop): the sources stay due,
        so another worker polls them on its next tick instead of after the lease."""
        if not source_ids:
            return 0
        result = await self.session.execute(
            update(Source)
            .where(Source.id.in_(list(source_ids)), Source.lease_owner == worker_id)
            .values(lease_owner=None, lease_until=None)
            .returning(Source.id)
        )
        return len(result.scalars().all())

    async def exists(self, source_id: int) -> bool:
        return await self.session.get(Source, source_id) is not None

    async def record_poll(
        self,
        source_id: int,
        record: PollRecord,
        *,
        now: datetime,
        next_check_at: datetime,
        failing_after: int = 1,
    ) -> RecordedPoll:
        """Write the outcome, the next check and the validators; clear the lease. Returns
        consecutive failures before and after and, for a success after a success, whether the
        source turned quiet or active again (``models.schedule.quiet_change``; not in the poll
        that ends ``failing_after`` or more failures, which is told as a recovery)."""
        row = await self.session.get(Source, source_id, with_for_update=True)
        if row is None:
            return RecordedPoll(0, 0)
        before = row.consecutive_failures or 0
        outcome = RecordedPoll(before, before + 1)
        row.next_check_at = next_check_at
        row.lease_owner = None
        row.lease_until = None
        row.last_attempt_at = now
        if record.error is None:
            row.consecutive_failures = 0
            row.last_error = None
            row.last_success_at = now
            row.items_last_poll = record.items
            expect = expected_within(row.kind, row.options or {})
            quiet, row.quiet_since = quiet_change(
                quiet_since=row.quiet_since,
                last_new=row.last_new_item_at,
                since=row.created_at,
                now=now,
                expect=expect,
                new=record.new,
            )
            if before >= failing_after and quiet is HealthChange.QUIET:
                # Told recovered now: that is the news; quiet is judged (and told) next poll.
                quiet, row.quiet_since = None, None
            silent = now - (row.last_new_item_at or row.created_at) if not record.new else None
            outcome = RecordedPoll(before, 0, quiet, silent, expect, row.quiet_since is not None)
            if record.new:
                row.last_new_item_at = now
            if record.etag is not None or not record.not_modified:
                row.etag = usable_validator(record.etag, MAX_ETAG)
            if record.last_modified is not None or not record.not_modified:
                row.last_modified = usable_validator(record.last_modified, MAX_LAST_MODIFIED)
            if record.cursor is not None:
                row.cursor = dict(record.cursor)
        else:
            row.consecutive_failures = before + 1
            row.last_error = record.error[:2000]
            row.items_last_poll = 0
        await self.session.flush()
        return outcome


def _slugs(value: object) -> frozenset[str]:
    """The theme slugs a stored ``digest_themes`` or ``trusted_themes`` holds (anything else
    ignored)."""
    return (
        frozenset(v for v in value if isinstance(v, str))
        if isinstance(value, list)
        else frozenset()
    )


def _claimed(row: Source) -> ClaimedSource:
    return ClaimedSource(
        id=row.id,
        name=row.name,
        kind=row.kind,
        url=row.url,
        options=dict(row.options or {}),
        interval_seconds=row.interval_seconds,
        etag=row.etag,
        last_modified=row.last_modified,
        cursor=dict(row.cursor) if row.cursor is not None else None,
        consecutive_failures=row.consecutive_failures or 0,
        first_poll=row.last_success_at is None,
    )


def _view(row: Source) -> SourceView:
    return SourceView(
        id=row.id,
        name=row.name,
        kind=row.kind,
        url=row.url,
        enabled=row.enabled,
        origin=row.origin,
        last_success_at=row.last_success_at,
        last_new_item_at=row.last_new_item_at,
        consecutive_failures=row.consecutive_failures or 0,
        last_error=row.last_error,
        alerts=row.alerts,
        quiet_since=row.quiet_since,
        expected_within=expected_within(row.kind, row.options or {}),
        digest_themes=tuple(sorted(_slugs(row.digest_themes))),
        trusted_themes=tuple(sorted(_slugs(row.trusted_themes))),
    )
