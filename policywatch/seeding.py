"""Bringing a database to a working state: migrate to the newest schema, then load the sources
and themes files (and give each theme without a learned model the shipped default).
``policywatch run`` does both before it starts, ``migrate`` and ``seed`` one each; all are
idempotent and safe when several workers start together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from models.configdoc import SyncReport
from models.db import Database, UnitOfWork
from models.sources import SourceSpec
from pipeline.training import install_shipped_models
from policywatch.config_files import load_source_specs, load_theme_specs

CONSOLE_CHAT = 0  # the console "chat" of a run without a bot token
DEMO_SOURCE = SourceSpec(
    name="demo",
    kind="demo",
    url="https://policywatch.invalid/demo",  # never fetched: the demo kind needs no network
    interval_seconds=15,
)


@dataclass(frozen=True, slots=True)
class SeedReport:
    sources: SyncReport
    themes: SyncReport
    models: tuple[str, ...] = ()  # themes that got the shipped default model


async def seed(
    db: Database, sources_file: Path, themes_file: Path, now: datetime, *, console: bool = False
) -> SeedReport:
    """Upsert sources and themes from the files in one transaction.

    Both files are validated before anything is written, so a broken file changes nothing.
    Workers seeding at once take turns (a transaction-level lock on PostgreSQL).

    ``console`` (a run without a bot token, ``POLICYWATCH_DEMO``): also the built-in demo source
    and a console chat that follows every theme, so a first run prints the alerts the pipeline
    would send. Without it both are switched off (a config source that leaves the list is
    disabled; the console chat is deactivated), so a bot never sends to the console chat.
    """
    source_specs = load_source_specs(sources_file)
    theme_specs = load_theme_specs(themes_file)
    if console:
        source_specs = [*source_specs, DEMO_SOURCE]
    async with db.transaction() as uow:
        await uow.serialize("seed")
        sources = await uow.sources.sync_from_config(source_specs, now)
        themes = await uow.themes.sync_from_config(theme_specs, now)
        await console_chat(uow, console, now)
        models = await install_shipped_models(uow, now)
        if sources.created or sources.updated or sources.disabled:
            await uow.audit.record(
                now=now,
                action="seed",
                entity_type="sources",
                entity_key=str(sources_file),
                after={
                    "created": sources.created,
                    "updated": sources.updated,
                    "disabled": sources.disabled,
                },
            )
        if themes.created or themes.updated:
            await uow.audit.record(
                now=now,
                action="seed",
                entity_type="themes",
                entity_key=str(themes_file),
                after={"created": themes.created, "updated": themes.updated},
            )
    return SeedReport(sources=sources, themes=themes, models=tuple(models))


async def console_chat(uow: UnitOfWork, enabled: bool, now: datetime) -> None:
    """The console chat follows every enabled theme, with instant alerts (``enabled``), or is
    deactivated when a bot token is set."""
    row = await uow.subscribers.get_by_chat(CONSOLE_CHAT)
    if not enabled:
        if row is not None and row.active:
            await uow.subscribers.deactivate(row.id, "a bot token is set", now)
        return
    chat = await uow.subscribers.ensure(
        chat_id=CONSOLE_CHAT, chat_type="console", user_id=None, title="console", now=now
    )
    for theme in await uow.themes.enabled():
        await uow.subscribers.subscribe(chat.id, theme.id, "instant", now)
