"""Classification in the shell: load the watchlists from the database, keep the compiled matcher,
store matches in ``item_themes``, reclassify recent items and dry-run a rule.

The matcher is rebuilt when the enabled rules change. The check reads the enabled
``(theme, rule)`` pairs (one indexed join over a few hundred rows) and compares them with the
ones the cached matcher was built from: a rule disabled in chat changes no timestamp, so a
max(updated_at) check would miss it. A rule that does not parse (stored before validation, or
edited in the database by hand) is skipped and logged; it never stops items from being stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db.repositories import StoreResult
from models.db.tables import Item, ItemTheme, Theme, ThemeRule
from models.errors import RuleError
from models.matching import Matcher, ThemeMatch, check_rule, compile_themes

log = structlog.get_logger(__name__)

BATCH = 500


@dataclass(frozen=True, slots=True)
class ReclassifyReport:
    """What a reclassification did. ``added``/``removed`` count (item, theme) pairs."""

    since: datetime
    items: int
    matched_items: int
    added: int
    removed: int
    kept: int
    by_theme: Mapping[str, int]

    def summary(self) -> str:
        themes = ", ".join(f"{slug} {n}" for slug, n in sorted(self.by_theme.items()))
        return (
            f"{self.items} items since {self.since.isoformat()}: {self.matched_items} matched "
            f"({self.added} matches added, {self.removed} removed, {self.kept} kept)"
            + (f"; by theme: {themes}" if themes else "")
        )


@dataclass(frozen=True, slots=True)
class DryRunExample:
    item_id: int
    title: str
    published_at: datetime
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DryRunResult:
    """How many of the last ``days`` days' items ``rule`` would match, with recent examples.

    ``new_to_theme`` counts the matched items the theme does not match already.
    """

    slug: str
    rule: str
    days: int
    items: int
    matched: int
    new_to_theme: int
    examples: tuple[DryRunExample, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class _Loaded:
    key: tuple[tuple[int, str, str], ...]
    matcher: Matcher
    theme_ids: Mapping[str, int]
    skipped: tuple[tuple[str, str, str], ...]  # slug, rule, error


class Classifier:
    """Holds the compiled matcher for the enabled watchlists; one per process (in ``Services``)."""

    def __init__(self) -> None:
        self._loaded: _Loaded | None = None

    @property
    def skipped_rules(self) -> tuple[tuple[str, str, str], ...]:
        """Rules left out of the last build because they do not parse: (slug, rule, error)."""
        return self._loaded.skipped if self._loaded else ()

    async def matcher(self, session: AsyncSession) -> Matcher:
        """The matcher for the currently enabled themes and rules (rebuilt when they change)."""
        return (await self._load(session)).matcher

    async def _load(self, session: AsyncSession) -> _Loaded:
        rows = (
            await session.execute(
                select(Theme.id, Theme.slug, ThemeRule.rule)
                .join(ThemeRule, ThemeRule.theme_id == Theme.id)
                .where(Theme.enabled.is_(True), ThemeRule.enabled.is_(True))
                .order_by(Theme.slug, ThemeRule.id)
            )
        ).all()
        key = tuple((int(r[0]), str(r[1]), str(r[2])) for r in rows)
        if self._loaded is not None and self._loaded.key == key:
            return self._loaded
        rules: dict[str, list[str]] = {}
        theme_ids: dict[str, int] = {}
        skipped: list[tuple[str, str, str]] = []
        for theme_id, slug, rule in key:
            theme_ids[slug] = theme_id
            error = check_rule(rule)
            if error is not None:
                skipped.append((slug, rule, error))
                log.warning("rule skipped", theme=slug, rule=rule, error=error)
                continue
            rules.setdefault(slug, []).append(rule)
        self._loaded = _Loaded(key, compile_themes(rules), theme_ids, tuple(skipped))
        log.info("watchlists compiled", themes=len(rules), rules=len(key) - len(skipped))
        return self._loaded

    async def classify_and_store(
        self, session: AsyncSession, result: StoreResult, now: datetime
    ) -> None:
        """The after-store hook: classify new and updated items and write their matches.

        Runs inside the caller's transaction. An updated item's matches are replaced (for the
        enabled themes; matches of disabled themes are history and stay).
        """
        items = [*result.new, *result.updated]
        if not items:
            return
        loaded = await self._load(session)
        matches = {item.id: loaded.matcher.classify(item.title, item.summary) for item in items}
        fresh = {item.id for item in result.new}  # just inserted: they have no matches yet
        await _replace_matches(session, loaded, matches, now, fresh=fresh)

    async def reclassify(
        self, session: AsyncSession, since: datetime, now: datetime
    ) -> ReclassifyReport:
        """Re-run the current watchlists over items published since ``since``."""
        loaded = await self._load(session)
        items = matched = added = removed = kept = 0
        by_theme: dict[str, int] = {}
        async for batch in _items_since(session, since):
            results = {row.id: loaded.matcher.classify(row.title, row.summary) for row in batch}
            counts = await _replace_matches(session, loaded, results, now)
            items += len(batch)
            matched += sum(1 for found in results.values() if found)
            added, removed, kept = added + counts[0], removed + counts[1], kept + counts[2]
            for found in results.values():
                for match in found:
                    by_theme[match.slug] = by_theme.get(match.slug, 0) + 1
        return ReclassifyReport(since, items, matched, added, removed, kept, by_theme)

    async def dry_run(
        self,
        session: AsyncSession,
        slug: str,
        rule: str,
        now: datetime,
        days: int = 30,
        examples: int = 5,
    ) -> DryRunResult:
        """How many of the last ``days`` days' items would ``rule`` match? Writes nothing.

        Raises ``RuleError`` (with the parser's message) when the rule does not parse.
        """
        if days < 1:
            msg = "days must be at least 1"
            raise RuleError(msg)
        error = check_rule(rule)
        if error is not None:
            raise RuleError(error)
        matcher = compile_themes({slug: [rule]})
        since = now - timedelta(days=days)
        scanned = 0
        hits: list[tuple[Any, ThemeMatch]] = []
        async for batch in _items_since(session, since):
            scanned += len(batch)
            for row in batch:
                found = matcher.classify(row.title, row.summary)
                if found:
                    hits.append((row, found[0]))
        already: set[int] = set()
        hit_ids = [row.id for row, _ in hits]
        for start in range(0, len(hit_ids), BATCH):
            already.update(
                (
                    await session.scalars(
                        select(ItemTheme.item_id)
                        .join(Theme, Theme.id == ItemTheme.theme_id)
                        .where(
                            Theme.slug == slug,
                            ItemTheme.item_id.in_(hit_ids[start : start + BATCH]),
                        )
                    )
                ).all()
            )
        hits.sort(key=lambda hit: (hit[0].published_at, hit[0].id), reverse=True)
        return DryRunResult(
            slug=slug,
            rule=rule,
            days=days,
            items=scanned,
            matched=len(hits),
            new_to_theme=sum(1 for i in hit_ids if i not in already),
            examples=tuple(
                DryRunExample(
                    item_id=row.id,
                    title=row.title,
                    published_at=row.published_at,
                    terms=tuple(dict.fromkeys(t.term for t in match.terms)),
                )
                for row, match in hits[:examples]
            ),
        )


async def _items_since(session: AsyncSession, since: datetime) -> Any:
    """Items published since ``since``, in id order, in batches (keyset pagination)."""
    last_id = 0
    while True:
        batch = (
            await session.execute(
                select(Item.id, Item.title, Item.summary, Item.published_at)
                .where(Item.published_at >= since, Item.id > last_id)
                .order_by(Item.id)
                .limit(BATCH)
            )
        ).all()
        if not batch:
            return
        yield batch
        last_id = batch[-1].id


async def _replace_matches(
    session: AsyncSession,
    loaded: _Loaded,
    results: Mapping[int, Sequence[ThemeMatch]],
    now: datetime,
    *,
    fresh: Set[int] = frozenset(),
) -> tuple[int, int, int]:
    """Make ``item_themes`` of these items agree with ``results`` for the enabled themes.

    A pair that still matches keeps its ``matched_at`` (its score and explanation are
    refreshed); new pairs get ``now``. Items in ``fresh`` are known to have no matches yet (they
    were inserted in this transaction), so they are not looked up. New pairs are inserted in
    one multi-row statement. Returns (added, removed, kept).
    """
    active = set(loaded.theme_ids.values())
    lookup = [item_id for item_id in results if item_id not in fresh]
    existing: dict[tuple[int, int], ItemTheme] = {}
    for start in range(0, len(lookup), BATCH):
        chunk = lookup[start : start + BATCH]
        rows = await session.scalars(
            select(ItemTheme).where(ItemTheme.item_id.in_(chunk), ItemTheme.theme_id.in_(active))
        )
        existing.update({(r.item_id, r.theme_id): r for r in rows})
    kept = 0
    wanted: set[tuple[int, int]] = set()
    inserts: list[dict[str, object]] = []
    for item_id, found in results.items():
        for match in found:
            theme_id = loaded.theme_ids[match.slug]
            pair = (item_id, theme_id)
            wanted.add(pair)
            explanation = [term.to_json() for term in match.terms]
            row = existing.get(pair)
            if row is None:
                inserts.append(
                    {
                        "item_id": item_id,
                        "theme_id": theme_id,
                        "score": match.score,
                        "matched": explanation,
                        "matched_at": now,
                    }
                )
            else:
                row.score, row.matched = match.score, explanation
                kept += 1
    gone = [row for pair, row in existing.items() if pair not in wanted]
    for row in gone:
        await session.delete(row)
    await session.flush()
    for start in range(0, len(inserts), BATCH):
        await session.execute(insert(ItemTheme), inserts[start : start + BATCH])
    return len(inserts), len(gone), kept
