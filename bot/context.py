"""What the bot works with, built by the composition root and handed to ``build_application``:
the bot's settings, the database, the classifier (rule checks and dry runs) and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from models.db import Database
from models.timeutil import utcnow
from pipeline.classification import Classifier
from pipeline.entities import EntityLookup
from scrapers.http import Resolver, resolve_host


@dataclass(frozen=True, slots=True)
class BotConfig:
    token: str
    base_url: str = "https://api.telegram.org/bot"
    admin_ids: frozenset[int] = frozenset()
    allow_private_sources: bool = False


@dataclass(slots=True)
class BotContext:
    config: BotConfig
    db: Database
    classifier: Classifier = field(default_factory=Classifier)
    clock: Callable[[], datetime] = utcnow
    resolve: Resolver = resolve_host  # for the checks of /source add
    entities: EntityLookup = field(default_factory=EntityLookup)  # /entity's name index
