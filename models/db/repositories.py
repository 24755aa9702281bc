"""Repositories: the only code that reads and writes tables. They take an ``AsyncSession``
(the caller owns the transaction) and return plain dataclasses from ``models``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from models.db.tables import (
    STATUS_CANCELLED,
    STATUS_PENDING,
    AuditLog,
    Delivery,
    Item,
    Source,
    Subscriber,
    Theme,
    ThemeRule,
)
from models.items import ItemData, StoredItem
from models.sources import ORIGIN_CHAT, ORIGIN_CONFIG, SourceSpec
from models.themes import ThemeSpec


def insert_ignoring_conflicts(session: AsyncSession, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the session's dialect (any unique constraint)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    msg = f"unsupported dialect {dialect}"  # pragma: no cover - engine.py refuses others
    raise NotImplementedError(msg)


@dataclass(slots=True)
class SyncReport:
    """What a seed did: names created, updated, kept because edited in chat, and disabled."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_chat_edits: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{len(self.created)} created",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged",
        ]
        if self.kept_chat_edits:
            parts.append(f"{len(self.kept_chat_edits)} kept (edited in chat)")
        if self.disabled:
            parts.append(f"{len(self.disabled)} disabled (no longer in the file)")
        return ", ".join(parts)


class SourceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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

    async def get_by_name(self, name: str) -> Source | None:
        return await self.session.scalar(select(Source).where(Source.name == name))


class ThemeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sync_from_config(self, specs: Sequence[ThemeSpec], now: datetime) -> SyncReport:
        """Upsert declared themes by slug and their watchlists.

        A theme edited in chat (origin 'chat') keeps its title, description and priority.
        Rules added in chat stay; rules removed in chat stay removed (disabled tombstones);
        config rules that left the file are deleted.
        """
        report = SyncReport()
        themes = {t.slug: t for t in (await self.session.scalars(select(Theme))).all()}
        for spec in specs:
            theme = themes.get(spec.slug)
            changed = False
            if theme is None:
                theme = Theme(
                    slug=spec.slug,
                    title=spec.title,
                    description=spec.description,
                    priority=spec.priority,
                    enabled=spec.enabled,
                    origin=ORIGIN_CONFIG,
                    created_at=now,
                    updated_at=now,
                )
                self.session.add(theme)
                await self.session.flush()
                report.created.append(spec.slug)
            elif theme.origin == ORIGIN_CONFIG:
                wanted = {
                    "title": spec.title,
                    "description": spec.description,
                    "priority": spec.priority,
                    "enabled": spec.enabled,
                }
                for key, value in wanted.items():
                    if getattr(theme, key) != value:
                        setattr(theme, key, value)
                        changed = True
            else:
                report.kept_chat_edits.append(spec.slug)
            changed |= await self._sync_rules(theme, spec.rules, now)
            if changed:
                theme.updated_at = now
                if spec.slug not in report.created:
                    report.updated.append(spec.slug)
            elif spec.slug not in report.created and spec.slug not in report.kept_chat_edits:
                report.unchanged.append(spec.slug)
        await self.session.flush()
        return report

    async def _sync_rules(self, theme: Theme, wanted: Iterable[str], now: datetime) -> bool:
        rows = {
            r.rule: r
            for r in (
                await self.session.scalars(select(ThemeRule).where(ThemeRule.theme_id == theme.id))
            ).all()
        }
        changed = False
        wanted_set = set(wanted)
        for rule in wanted:
            if rule not in rows:
                self.session.add(ThemeRule(theme_id=theme.id, rule=rule, created_at=now))
                changed = True
        for rule, row in rows.items():
            if row.origin == ORIGIN_CONFIG and rule not in wanted_set:
                await self.session.delete(row)
                changed = True
        return changed

    async def active_rules(self) -> dict[str, list[str]]:
        """Enabled themes and their enabled rules, by slug."""
        result = await self.session.execute(
            select(Theme.slug, ThemeRule.rule)
            .join(ThemeRule, ThemeRule.theme_id == Theme.id)
            .where(Theme.enabled.is_(True), ThemeRule.enabled.is_(True))
            .order_by(Theme.slug, ThemeRule.id)
        )
        rules: dict[str, list[str]] = {}
        for slug, rule in result.all():
            rules.setdefault(slug, []).append(rule)
        return rules


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What storing one poll's items did: the new items, and the items updated in place."""

    new: tuple[StoredItem, ...]
    updated: tuple[StoredItem, ...]


class ItemRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def store(
        self,
        source: Source,
        items: Sequence[ItemData],
        now: datetime,
        *,
        from_first_poll: bool = False,
    ) -> StoreResult:
        """Insert items not stored yet (by ``(source, external_id)``); an item whose title or
        summary changed in place is updated and reported as updated, not new."""
        if not items:
            return StoreResult((), ())
        by_id: dict[str, ItemData] = {}
        for item in items:  # the same id twice in one response: keep the first
            by_id.setdefault(item.external_id, item)
        rows = [
            {
                "source_id": source.id,
                "external_id": item.external_id,
                "url": item.url,
                "title": item.title,
                "summary": item.summary,
                "language": item.language,
                "published_at": item.published_at or now,
                "published_at_guessed": item.published_at is None or item.published_at_guessed,
                "first_seen_at": now,
                "content_hash": item.content_hash,
                "fields": dict(item.fields),
                "from_first_poll": from_first_poll,
            }
            for item in by_id.values()
        ]
        stmt = insert_ignoring_conflicts(self.session, Item.__table__).returning(Item.id)  # type: ignore[arg-type]
        new_ids: list[int] = []
        for start in range(0, len(rows), 500):
            result = await self.session.execute(stmt, rows[start : start + 500])
            new_ids.extend(result.scalars().all())
        new_set = set(new_ids)
        stored = (
            await self.session.scalars(
                select(Item).where(
                    Item.source_id == source.id, Item.external_id.in_(list(by_id.keys()))
                )
            )
        ).all()
        new: list[StoredItem] = []
        updated: list[StoredItem] = []
        for row in stored:
            if row.id in new_set:
                new.append(_stored(row, source.name))
                continue
            data = by_id[row.external_id]
            if row.content_hash != data.content_hash:
                row.title, row.summary = data.title, data.summary
                row.content_hash = data.content_hash
                row.fields = {**row.fields, **dict(data.fields)}
                row.updated_at = now
                updated.append(_stored(row, source.name))
        await self.session.flush()
        new.sort(key=lambda s: s.id)
        return StoreResult(tuple(new), tuple(updated))


def _stored(row: Item, source_name: str) -> StoredItem:
    return StoredItem(
        id=row.id,
        source_id=row.source_id,
        source_name=source_name,
        external_id=row.external_id,
        title=row.title,
        url=row.url,
        summary=row.summary,
        language=row.language,
        published_at=row.published_at,
        published_at_guessed=row.published_at_guessed,
        first_seen_at=row.first_seen_at,
        content_hash=row.content_hash,
        fields=dict(row.fields),
        from_first_poll=row.from_first_poll,
    )


class SubscriberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def register(
        self,
        *,
        chat_id: int,
        chat_type: str,
        user_id: int | None,
        title: str | None,
        now: datetime,
        role: str = "subscriber",
    ) -> Subscriber:
        """Create the subscriber for a chat, or re-activate it; returns the row."""
        row = await self.session.scalar(select(Subscriber).where(Subscriber.chat_id == chat_id))
        if row is None:
            row = Subscriber(
                chat_id=chat_id,
                chat_type=chat_type,
                user_id=user_id,
                title=title,
                role=role,
                created_at=now,
                updated_at=now,
            )
            self.session.add(row)
        else:
            row.active = True
            row.deactivated_reason = None
            row.chat_type, row.title = chat_type, title
            if user_id is not None:
                row.user_id = user_id
            row.updated_at = now
        await self.session.flush()
        return row

    async def deactivate(self, subscriber_id: int, reason: str, now: datetime) -> int:
        """The chat is unreachable (blocked, kicked, deactivated): make the subscriber inactive
        and cancel what is pending for it, so the outbox backlog does not count messages that
        can never go. Returns how many pending deliveries were cancelled."""
        await self.session.execute(
            update(Subscriber)
            .where(Subscriber.id == subscriber_id)
            .values(active=False, deactivated_reason=reason[:2000], updated_at=now)
        )
        result = await self.session.execute(
            update(Delivery)
            .where(Delivery.subscriber_id == subscriber_id, Delivery.status == STATUS_PENDING)
            .values(
                status=STATUS_CANCELLED,
                last_error=f"chat unreachable: {reason}"[:2000],
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(self, rows: Sequence[Mapping[str, Any]], now: datetime) -> list[int]:
        """Add planned messages to the outbox, silently skipping any that would repeat an item or
        a dedupe key for the same chat. Returns the ids actually added."""
        if not rows:
            return []
        values = [
            {
                "status": "pending",
                "payload": {},
                "item_id": None,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
                **dict(row),
            }
            for row in rows
        ]
        stmt = insert_ignoring_conflicts(self.session, Delivery.__table__).returning(Delivery.id)  # type: ignore[arg-type]
        result = await self.session.execute(stmt, values)
        return list(result.scalars().all())


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        now: datetime,
        action: str,
        entity_type: str,
        entity_key: str,
        actor_user_id: int | None = None,
        actor_chat_id: int | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> None:
        self.session.add(
            AuditLog(
                at=now,
                actor_user_id=actor_user_id,
                actor_chat_id=actor_chat_id,
                action=action,
                entity_type=entity_type,
                entity_key=entity_key,
                before=dict(before) if before is not None else None,
                after=dict(after) if after is not None else None,
            )
        )
        await self.session.flush()
