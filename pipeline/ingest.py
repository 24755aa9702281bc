"""The whole ingestion pipeline, wired: poll → store → classify → plan alerts, plus admin notices
when a source starts failing or recovers. The scheduler's source tick and ``policywatch poll``
both run a ``Poller`` built by ``build_poller``.

The after-store hooks run in order inside the transaction that stores a source's items, so the
items, their matches and their outbox rows commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from delivery.notices import notify_admins
from delivery.render import local_time
from delivery.telegram_html import esc
from models.alerts import BurstPolicy, UpdatePolicy
from models.db import Database, UnitOfWork
from models.db.items import StoreResult
from models.feedback import WaryPolicy
from models.localtime import zone_name
from models.schedule import HealthChange
from models.timeutil import describe_duration
from pipeline.classification import Classifier
from pipeline.grouping import group_new_items
from pipeline.planning import plan_new_items
from pipeline.polling import (
    STATUS_FAILED,
    AfterStoreHook,
    HealthHook,
    PollConfig,
    Poller,
    SourcePollSummary,
)
from pipeline.watching import PersonalWatches
from scrapers.http import Fetcher

MatchCounter = Callable[[Mapping[str, int]], None]
"""Told how many stored items each theme (by slug) matched in one poll (e.g. metrics)."""


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """What becomes an alert: the burst limit, how often an event's updates may follow its
    alert, how old news may be, who hears of failures, when a source's unsure matches of a
    theme wait for digests."""

    burst: BurstPolicy = field(default_factory=BurstPolicy)
    updates: UpdatePolicy = field(default_factory=UpdatePolicy)
    max_age: timedelta | None = timedelta(days=3)
    admin_ids: Collection[int] = frozenset()
    wary: WaryPolicy = field(default_factory=WaryPolicy)


def pipeline_hooks(
    classifier: Classifier, policy: AlertPolicy, on_matches: MatchCounter | None = None
) -> tuple[AfterStoreHook, ...]:
    """Classification (theme rules and the themes' watched organisations), its counts, event
    grouping, then alert planning (which reads the matches, the events and subscribers' own
    watched organisations)."""

    async def count_matches(uow: UnitOfWork, result: StoreResult, now: datetime) -> None:
        ids = [item.id for item in (*result.new, *result.updated)]
        if ids and on_matches is not None:
            on_matches(await uow.matches.count_by_theme(ids))

    personal = PersonalWatches()

    async def plan(uow: UnitOfWork, result: StoreResult, now: datetime) -> None:
        await plan_new_items(
            uow,
            result,
            now,
            policy=policy.burst,
            updates=policy.updates,
            max_age=policy.max_age,
            watches=personal,
            wary=policy.wary,
        )

    return (classifier.classify_and_store, count_matches, group_new_items, plan)


def health_notice(summary: SourcePollSummary, zone: str | None = None) -> str:
    """The admin notice for a source that started failing or recovered, or turned quiet or
    active again (Telegram HTML), with its time in the admin's ``zone``, labelled."""
    name = esc(summary.name)
    if summary.health is HealthChange.RECOVERED:
        return f"✅ Source <b>{name}</b> recovered: its last poll succeeded."
    if summary.health is HealthChange.ACTIVE:
        return f"✅ Source <b>{name}</b> brings new items again."
    if summary.health is HealthChange.QUIET:
        silent = describe_duration(summary.silent_for) if summary.silent_for else "long"
        expected = (
            f" (new items are expected within {describe_duration(summary.expected_within)})"
            if summary.expected_within
            else ""
        )
        return (
            f"💤 Source <b>{name}</b> has brought nothing new for {silent}{expected}, though "
            "its polls succeed: the feed may have moved or stopped, or the page changed shape. "
            f"/sources shows all sources; /source expect {name} &lt;period&gt; (or off) sets "
            "the period."
        )
    error = esc((summary.error or "unknown error")[:500])
    when = (
        f"{local_time(summary.next_check_at, zone, abbreviation=False)} ({esc(zone_name(zone))})"
        if summary.next_check_at
        else "?"
    )
    return (
        f"⚠️ Source <b>{name}</b> is failing: {summary.consecutive_failures} polls in a row.\n"
        f"Last error: {error}\nNext try: {when}. /sources shows all sources."
    )


def health_hook(
    db: Database, admin_ids: Collection[int], clock: Callable[[], datetime]
) -> HealthHook:
    """Tell admins (through the outbox) when a source starts failing and when it recovers, and
    when it turns quiet and when it brings new items again."""

    async def on_health(summary: SourcePollSummary) -> None:
        if summary.health is None:
            return
        now = clock()
        key = f"source-{summary.health.value}:{summary.name}:{now:%Y%m%dT%H%M%S}"
        async with db.transaction() as uow:
            await notify_admins(uow, admin_ids, lambda zone: health_notice(summary, zone), key, now)

    return on_health


def build_poller(
    db: Database,
    fetcher: Fetcher,
    config: PollConfig,
    *,
    classifier: Classifier,
    policy: AlertPolicy,
    clock: Callable[[], datetime],
    on_matches: MatchCounter | None = None,
) -> Poller:
    """The poller with the whole pipeline behind it."""
    return Poller(
        db,
        fetcher,
        config,
        clock,
        hooks=pipeline_hooks(classifier, policy, on_matches),
        on_health=health_hook(db, policy.admin_ids, clock),
        before_store=(lambda items: classifier.prepare(db, items),),
    )


def failed_count(summaries: Sequence[SourcePollSummary]) -> int:
    return sum(1 for s in summaries if s.status == STATUS_FAILED)
