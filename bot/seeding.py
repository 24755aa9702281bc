"""``policywatch seed``: load the sources and themes files into the database, idempotently."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from bot.app import Services
from bot.config_files import load_source_specs, load_theme_specs
from models.db.leadership import lock_key
from models.db.repositories import AuditRepository, SourceRepository, SyncReport, ThemeRepository

SEED_LOCK = lock_key("policywatch:seed")


@dataclass(frozen=True, slots=True)
class SeedReport:
    sources: SyncReport
    themes: SyncReport


async def seed(services: Services) -> SeedReport:
    """Upsert sources and themes from the configured files in one transaction.

    Both files are validated before anything is written, so a broken file changes nothing.
    """
    source_specs = load_source_specs(services.settings.sources_file)
    theme_specs = load_theme_specs(services.settings.themes_file)
    now = services.clock()
    async with services.sessions.begin() as session:
        if services.engine.dialect.name == "postgresql":  # workers starting together seed in turn
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEED_LOCK})
        sources = await SourceRepository(session).sync_from_config(source_specs, now)
        themes = await ThemeRepository(session).sync_from_config(theme_specs, now)
        if sources.created or sources.updated or sources.disabled:
            await AuditRepository(session).record(
                now=now,
                action="seed",
                entity_type="sources",
                entity_key=str(services.settings.sources_file),
                after={
                    "created": sources.created,
                    "updated": sources.updated,
                    "disabled": sources.disabled,
                },
            )
        if themes.created or themes.updated:
            await AuditRepository(session).record(
                now=now,
                action="seed",
                entity_type="themes",
                entity_key=str(services.settings.themes_file),
                after={"created": themes.created, "updated": themes.updated},
            )
    return SeedReport(sources=sources, themes=themes)
