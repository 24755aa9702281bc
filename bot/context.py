"""What the bot works with, built by the composition root and handed to ``build_application``:
the bot's settings, the database, the classifier (rule checks and dry runs) and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from models.db import Database
from models.feedback import WaryPolicy
from models.timeutil import utcnow
from pipeline.classification import Classifier
from pipeline.entities import EntityLookup
from scrapers.http import Fetcher, Resolver, resolve_host


@dataclass(frozen=True, slots=True)
class BotConfig:
    token: str
    base_url: str = "https://api.telegram.org/bot"
    admin_ids: frozenset[int] = frozenset()
    allow_private_sources: bool = False
    max_concurrent_updates: int = 64  # updates handled at once, across chats
    chat_burst: int = 10  # commands one chat may send at once ...
    chat_per_minute: float = 30.0  # ... and then per minute; the excess is dropped
    wary: WaryPolicy = field(default_factory=WaryPolicy)  # as the planner's (/watch stats)


@dataclass(slots=True)
class BotContext:
    config: BotConfig
    db: Database
    classifier: Classifier = field(default_factory=Classifier)
    clock: Callable[[], datetime] = utcnow
    resolve: Resolver = resolve_host  # for the checks of /source add
    fetcher: Fetcher | None = None  # /source add tries a URL once before adding it
    entities: EntityLookup = field(default_factory=EntityLookup)  # /entity's name index
