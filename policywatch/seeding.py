"""Bringing a database to a working state: migrate to the newest schema, then load the sources
and themes files (and give each theme without a learned model the shipped default).
``policywatch run`` does both before it starts, ``migrate`` and ``seed`` one each; all are
idempotent and safe when several workers start together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from models.configdoc import SyncReport
from models.db import Database
from pipeline.training import install_shipped_models
from policywatch.config_files import load_source_specs, load_theme_specs


@dataclass(frozen=True, slots=True)
class SeedReport:
    sources: SyncReport
    themes: SyncReport
    models: tuple[str, ...] = ()  # themes that got the shipped default model


async def seed(db: Database, sources_file: Path, themes_file: Path, now: datetime) -> SeedReport:
    """Upsert sources and themes from the files in one transaction.

    Both files are validated before anything is written, so a broken file changes nothing.
    Workers seeding at once take turns (a transaction-level lock on PostgreSQL).
    """
    source_specs = load_source_specs(sources_file)
    theme_specs = load_theme_specs(themes_file)
    async with db.transaction() as uow:
        await uow.serialize("seed")
        sources = await uow.sources.sync_from_config(source_specs, now)
        themes = await uow.themes.sync_from_config(theme_specs, now)
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
