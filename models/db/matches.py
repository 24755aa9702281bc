"""Matches: which item matched which theme (``item_themes``), with the terms for the
explanation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.items import chunks
from models.db.tables import ItemTheme, Theme
from models.matching import ThemeMatch

# Taken shared by a transaction that stores matches (stamped once it holds the lock) and alone
# by the digest tick, so a digest never closes a period over matches not committed yet.
MATCHES_LOCK = "matches"


@dataclass(frozen=True, slots=True)
class MatchRow:
    """One (item, theme) match with the terms that made it."""

    item_id: int
    theme_id: int
    terms: tuple[str, ...]
    layer: str = "rules"  # rules, model or both
    similar_to: str | None = None  # explains a match of the learned model alone


@dataclass(frozen=True, slots=True)
class ReplaceCounts:
    added: int
    removed: int
    kept: int


def matched_terms(matched: Any) -> tuple[str, ...]:
    """The terms in an ``item_themes.matched`` value (a list of strings, or of objects with a
    ``term``); anything else is ignored."""
    if not isinstance(matched, list):
        return ()
    terms: list[str] = []
    for entry in matched:
        term = entry.get("term") if isinstance(entry, Mapping) else entry
        if isinstance(term, str) and term.strip() and term not in terms:
            terms.append(term)
    return tuple(terms)


def _model_json(match: ThemeMatch) -> dict[str, Any] | None:
    if match.probability is None:
        return None
    model: dict[str, Any] = {"probability": round(match.probability, 4)}
    if match.model_version is not None:
        model["version"] = match.model_version
    if match.similar_to is not None:
        model["similar_to"] = match.similar_to
    return model


def similar_to(model: Any) -> str | None:
    """The labelled headline stored with a match of the learned model (``None`` if absent or
    malformed)."""
    value = model.get("similar_to") if isinstance(model, Mapping) else None
    return value if isinstance(value, str) and value.strip() else None


class MatchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def replace(
        self,
        results: Mapping[int, Sequence[ThemeMatch]],
        theme_ids: Mapping[str, int],
        now: datetime,
        *,
        fresh: Set[int] = frozenset(),
    ) -> ReplaceCounts:
        """Make ``item_themes`` of these items agree with ``results`` for the themes in
        ``theme_ids`` (matches of other themes are history and stay).

        A pair that still matches keeps its ``matched_at`` (its score and explanation are
        refreshed); new pairs get ``now``. Items in ``fresh`` are known to have no matches yet
        (they were inserted in this transaction), so they are not looked up.
        """
        active = list(set(theme_ids.values()))
        lookup = [item_id for item_id in results if item_id not in fresh]
        existing: dict[tuple[int, int], ItemTheme] = {}
        for chunk in chunks(lookup):
            rows = await self.session.scalars(
                select(ItemTheme).where(
                    ItemTheme.item_id.in_(chunk), ItemTheme.theme_id.in_(active)
                )
            )
            existing.update({(r.item_id, r.theme_id): r for r in rows})
        kept = 0
        wanted: set[tuple[int, int]] = set()
        inserts: list[dict[str, object]] = []
        for item_id, found in results.items():
            for match in found:
                theme_id = theme_ids[match.slug]
                pair = (item_id, theme_id)
                wanted.add(pair)
                explanation = [term.to_json() for term in match.terms]
                model = _model_json(match)
                row = existing.get(pair)
                if row is None:
                    inserts.append(
                        {
                            "item_id": item_id,
                            "theme_id": theme_id,
                            "score": match.score,
                            "matched": explanation,
                            "matched_at": now,
                            "layer": match.layer,
                            "rules": list(match.rules),
                            "model": model,
                        }
                    )
                else:
                    row.score, row.matched = match.score, explanation
                    row.layer, row.rules, row.model = match.layer, list(match.rules), model
                    kept += 1
        gone = [row for pair, row in existing.items() if pair not in wanted]
        for row in gone:
            await self.session.delete(row)
        await self.session.flush()
        for part in chunks(inserts):
            await self.session.execute(insert(ItemTheme), list(part))
        return ReplaceCounts(added=len(inserts), removed=len(gone), kept=kept)

    async def of_items(self, item_ids: Sequence[int]) -> list[MatchRow]:
        """Every match of these items."""
        found: list[MatchRow] = []
        for chunk in chunks(list(item_ids)):
            rows = await self.session.execute(
                select(
                    ItemTheme.item_id,
                    ItemTheme.theme_id,
                    ItemTheme.matched,
                    ItemTheme.layer,
                    ItemTheme.model,
                ).where(ItemTheme.item_id.in_(chunk))
            )
            found.extend(
                MatchRow(
                    r.item_id,
                    r.theme_id,
                    matched_terms(r.matched),
                    r.layer,
                    similar_to(r.model) if r.layer == "model" else None,
                )
                for r in rows
            )
        return found

    async def count_by_theme(self, item_ids: Sequence[int]) -> dict[str, int]:
        """How many of these items each theme matched, by slug."""
        counts: dict[str, int] = {}
        for chunk in chunks(list(item_ids)):
            rows = await self.session.execute(
                select(Theme.slug, func.count())
                .join(ItemTheme, ItemTheme.theme_id == Theme.id)
                .where(ItemTheme.item_id.in_(chunk))
                .group_by(Theme.slug)
            )
            for slug, count in rows.all():
                counts[slug] = counts.get(slug, 0) + int(count)
        return counts

    async def matched_by(self, slug: str, item_ids: Sequence[int]) -> set[int]:
        """The items among ``item_ids`` that theme ``slug`` already matches."""
        found: set[int] = set()
        for chunk in chunks(list(item_ids)):
            found.update(
                (
                    await self.session.scalars(
                        select(ItemTheme.item_id)
                        .join(Theme, Theme.id == ItemTheme.theme_id)
                        .where(Theme.slug == slug, ItemTheme.item_id.in_(chunk))
                    )
                ).all()
            )
        return found
