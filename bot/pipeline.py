"""The whole ingestion pipeline, wired: poll → store → classify → plan alerts, plus metrics and
admin notices. The scheduler's source tick and ``policywatch poll`` both run ``run_pipeline``.

The after-store hooks run in order inside the transaction that stores a source's items, so the
items, their matches and their outbox rows commit together or not at all.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Services
from bot.notices import notify_admins
from bot.planning import burst_policy, plan_new_items
from bot.polling import (
    STATUS_FAILED,
    AfterStoreHook,
    HealthHook,
    SourcePollSummary,
    poll_due_sources,
)
from models.db.repositories import StoreResult
from models.db.tables import ItemTheme, Theme
from models.schedule import HealthChange


def pipeline_hooks(services: Services) -> tuple[AfterStoreHook, ...]:
    """Classification, then its metrics, then alert planning (which reads the matches)."""
    policy = burst_policy(services.settings)

    async def count_matches(session: AsyncSession, result: StoreResult, now: datetime) -> None:
        ids = [item.id for item in (*result.new, *result.updated)]
        if not ids:
            return
        rows = await session.execute(
            select(Theme.slug, func.count())
            .join(ItemTheme, ItemTheme.theme_id == Theme.id)
            .where(ItemTheme.item_id.in_(ids))
            .group_by(Theme.slug)
        )
        for slug, count in rows.all():
            services.metrics.items_matched.labels(theme=slug).inc(count)

    async def plan(session: AsyncSession, result: StoreResult, now: datetime) -> None:
        await plan_new_items(
            session, result, now, policy=policy, max_age=services.settings.alert_max_age
        )

    return (services.classifier.classify_and_store, count_matches, plan)


def health_notice(summary: SourcePollSummary) -> str:
    """The admin notice for a source that started failing or recovered (Telegram HTML)."""
    name = html.escape(summary.name)
    if summary.health is HealthChange.RECOVERED:
        return f"✅ Source <b>{name}</b> recovered: its last poll succeeded."
    error = html.escape((summary.error or "unknown error")[:500])
    when = summary.next_check_at.strftime("%Y-%m-%d %H:%M UTC") if summary.next_check_at else "?"
    return (
        f"⚠️ Source <b>{name}</b> is failing: {summary.consecutive_failures} polls in a row.\n"
        f"Last error: {error}\nNext try: {when}. /sources shows all sources."
    )


def health_hook(services: Services) -> HealthHook:
    """Tell admins (through the outbox) when a source starts failing and when it recovers."""

    async def on_health(summary: SourcePollSummary) -> None:
        if summary.health is None:
            return
        now = services.clock()
        key = f"source-{summary.health.value}:{summary.name}:{now:%Y%m%dT%H%M%S}"
        async with services.sessions.begin() as session:
            await notify_admins(session, services.settings, health_notice(summary), key, now)

    return on_health


def record_metrics(services: Services, summaries: Sequence[SourcePollSummary]) -> None:
    metrics = services.metrics
    for s in summaries:
        metrics.fetches.labels(source=s.name, outcome=s.status).inc()
        metrics.fetch_seconds.labels(source=s.name).observe(s.duration)
        metrics.items_fetched.labels(source=s.name).inc(s.fetched)
        metrics.items_stored.labels(source=s.name).inc(s.new)
        metrics.items_updated.labels(source=s.name).inc(s.updated)


async def run_pipeline(services: Services, *, due_only: bool = True) -> list[SourcePollSummary]:
    """Poll due (or all enabled) sources through the whole pipeline; one summary per source."""
    summaries = await poll_due_sources(
        services,
        hooks=pipeline_hooks(services),
        on_health=health_hook(services),
        due_only=due_only,
    )
    record_metrics(services, summaries)
    return summaries


def failed_count(summaries: Sequence[SourcePollSummary]) -> int:
    return sum(1 for s in summaries if s.status == STATUS_FAILED)
