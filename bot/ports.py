"""Ports the bot depends on but does not implement: checking and trying out watchlist rules.

The themes engine implements them (``models.matching.check_rule`` and
``bot.classification.Classifier.dry_run``); the composition root injects them through
``Services``. Both are optional so that the bot runs before they are wired: commands that need
them answer that the feature is not available.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class DryRunResult:
    """How many of the recent items a rule would match, out of how many, with a few titles."""

    count: int
    total: int
    examples: list[str] = field(default_factory=list)


class RuleChecker(Protocol):
    """Checks rule text; returns an error message, or None when the rule is valid."""

    def __call__(self, text: str, /) -> str | None: ...


class DryRunner(Protocol):
    """Runs a rule of theme ``slug`` over the items of the last ``days`` days."""

    async def __call__(
        self,
        session: AsyncSession,
        slug: str,
        rule: str,
        now: datetime,
        days: int = 30,
        examples: int = 5,
    ) -> DryRunResult: ...
