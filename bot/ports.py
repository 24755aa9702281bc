"""Ports the bot depends on but does not implement: checking and trying out watchlist rules.

The themes engine implements them (``models.matching.check_rule`` and
``bot.classification.Classifier.dry_run``); the composition root injects them through
``Services``, and tests may pass fakes. Both are optional: without them, commands that need them
answer that the feature is not available.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.classification import DryRunResult

__all__ = ["DryRunResult", "DryRunner", "RuleChecker"]


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
