"""Classification in the shell: load the watchlists and the learned models from the database,
keep the compiled matcher and models, store matches in ``item_themes``, reclassify recent items
and dry-run a rule.

An item matches a theme when its rules match OR its learned model (``models.learned``, the
active version, unless an editor turned the theme's model off) reaches its threshold; each
match records which layer matched. The models are reloaded when the active versions change
(a training, a rollback, a switch). A stored model that cannot be read is skipped and logged:
its theme is classified by its rules alone.

The matcher is rebuilt when the enabled rules change. The check reads the enabled
``(theme, rule)`` pairs (one indexed join over a few hundred rows) and compares them with the
ones the cached matcher was built from: a rule disabled in chat changes no timestamp, so a
max(updated_at) check would miss it. A rule that does not parse (stored before validation, or
edited in the database by hand) is skipped and logged; it never stops items from being stored.

When the active models carry an encoder head (``models.learned.EmbeddingHead``) and this
process has that encoder (``pipeline.encoder``), items are encoded in a thread and both heads
decide, with the vote of the item's nearest labelled items when the models name a neighbour
index (``pipeline.neighbours``, loaded from the database once); otherwise the n-gram head
decides alone. A poll's new and changed items are encoded before the transaction that stores
them (``prepare``, a before-store hook), so that transaction does not wait for the encoder;
what ``prepare`` missed is encoded in the transaction.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from models.db import Database, UnitOfWork
from models.db.items import ItemText, StoreResult
from models.errors import RuleError
from models.fields import ItemFields
from models.items import ItemData
from models.learned import (
    ModelFormatError,
    ModelSet,
    TextVector,
    classify_with_model,
    theme_model_from_json,
)
from models.matching import Matcher, ThemeMatch, check_rule, compile_themes, scope_body
from models.orgnames import EditorsNames, known_with
from models.orgwatch import OrgIndex, Watch, merge_matches
from models.views import DryRunExample, DryRunResult, WatchedOrgView
from pipeline.encoder import Encoder, encode_items_async

if TYPE_CHECKING:
    from pipeline.neighbours import LoadedIndex

log = structlog.get_logger(__name__)


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
class _Loaded:
    # the enabled rules, the themes' watched organisations, editors' known names
    key: tuple[tuple[tuple[int, str, str], ...], tuple[WatchedOrgView, ...], EditorsNames]
    matcher: Matcher
    orgs: OrgIndex  # the themes' watched organisations
    theme_ids: Mapping[str, int]
    skipped: tuple[tuple[str, str, str], ...]  # slug, rule, error
    models: ModelSet
    models_key: tuple[tuple[int, int], ...]
    indexes: tuple[LoadedIndex, ...] = ()  # the neighbour indexes the models read

    def classify(
        self, title: str, summary: str, fields: ItemFields, vector: TextVector | None = None
    ) -> list[ThemeMatch]:
        """The themes an item matches: by their rules OR their learned model, and by their
        watched organisations."""
        found = classify_with_model(self.matcher, self.models, title, summary, vector)
        if not self.orgs.watches:
            return found
        return merge_matches(found, self.orgs.matches(title, summary, fields))


class Classifier:
    """Holds the compiled matcher for the enabled watchlists and the active learned models; one
    per process (in ``Services``), with the process's sentence encoder (None: none)."""

    PREPARED_MAX = 4096  # vectors kept from ``prepare`` until their items are stored

    def __init__(self, encoder: Encoder | None = None) -> None:
        self._loaded: _Loaded | None = None
        self._encoder = encoder
        self._prepared: OrderedDict[tuple[str, str], TextVector] = OrderedDict()
        self._indexes: dict[str, LoadedIndex] = {}

    @property
    def encoder(self) -> Encoder | None:
        return self._encoder

    async def prepare(self, db: Database, items: Sequence[ItemData]) -> None:
        """Encode items about to be stored, outside the storing transaction (a before-store
        hook); ``classify_and_store`` then finds their vectors here instead of encoding."""
        if self._encoder is None or not items:
            return
        async with db.reading() as uow:
            loaded = await self._load(uow)
        texts = list(dict.fromkeys((i.title, i.summary) for i in items))
        texts = [t for t in texts if t not in self._prepared]
        vectors = await encode_items_async(self._encoder, loaded.models.encoders, texts)
        for text, vector in zip(texts, vectors, strict=True):
            if vector is not None:
                self._prepared[text] = vector
        while len(self._prepared) > self.PREPARED_MAX:  # prepared but never stored
            self._prepared.popitem(last=False)

    async def _vectors(
        self, loaded: _Loaded, texts: list[tuple[str, str]]
    ) -> list[TextVector | None]:
        found = [self._prepared.get(text) for text in texts]
        missing = [i for i, vector in enumerate(found) if vector is None]
        if missing:
            encoded = await encode_items_async(
                self._encoder, loaded.models.encoders, [texts[i] for i in missing]
            )
            for i, vector in zip(missing, encoded, strict=True):
                found[i] = vector
        for text in texts:
            self._prepared.pop(text, None)
        if loaded.indexes and any(found):
            from pipeline.neighbours import vote

            found = await asyncio.to_thread(vote, loaded.indexes, found)
        return found

    async def _load_indexes(self, uow: UnitOfWork, models: ModelSet) -> tuple[LoadedIndex, ...]:
        """The neighbour indexes the models read, when this process has their encoder (kept
        between reloads). One that is missing or unreadable is logged and left out: its models
        decide with their two heads."""
        encoder = self._encoder
        if encoder is None or encoder.name not in models.encoders:
            return ()
        wanted = models.indexes
        missing = wanted - self._indexes.keys()
        if missing:
            from pipeline.neighbours import load_index

            stored = await uow.learned.indexes(missing)
            for digest in sorted(missing):
                data = stored.get(digest)
                if data is None:
                    log.warning("neighbour index missing", index=digest)
                    continue
                try:
                    self._indexes[digest] = await asyncio.to_thread(load_index, digest, data)
                except ModelFormatError as exc:
                    log.warning("neighbour index skipped", index=digest, error=str(exc))
        for digest in self._indexes.keys() - wanted:
            del self._indexes[digest]
        return tuple(self._indexes[d] for d in sorted(wanted) if d in self._indexes)

    @property
    def skipped_rules(self) -> tuple[tuple[str, str, str], ...]:
        """Rules left out of the last build because they do not parse: (slug, rule, error)."""
        return self._loaded.skipped if self._loaded else ()

    async def matcher(self, uow: UnitOfWork) -> Matcher:
        """The matcher for the currently enabled themes and rules (rebuilt when they change)."""
        return (await self._load(uow)).matcher

    async def _load(self, uow: UnitOfWork) -> _Loaded:
        rule_rows = tuple(await uow.themes.enabled_rules())
        org_rows = tuple(await uow.watched.of_enabled_themes())
        known = await uow.known.edits()
        key = (rule_rows, org_rows, known)
        models_key = await uow.learned.active_key()
        loaded = self._loaded
        if loaded is not None and loaded.key == key:
            if loaded.models_key != models_key:
                models = await _load_models(uow)
                ids = dict(loaded.theme_ids)
                ids.update(await _model_only_themes(uow, ids, models))
                loaded = self._loaded = replace(
                    loaded,
                    theme_ids=ids,
                    models=models,
                    models_key=models_key,
                    indexes=await self._load_indexes(uow, models),
                )
            return loaded
        rules: dict[str, list[str]] = {}
        theme_ids: dict[str, int] = {}
        skipped: list[tuple[str, str, str]] = []
        for org in org_rows:
            if org.theme_slug is not None and org.theme_id is not None:
                theme_ids[org.theme_slug] = org.theme_id
        orgs = OrgIndex(
            [Watch(o.theme_slug, o.name, o.names) for o in org_rows if o.theme_slug is not None],
            known_with(known),
        )
        for theme_id, slug, rule in rule_rows:
            theme_ids[slug] = theme_id
            error = check_rule(rule)
            if error is not None:
                skipped.append((slug, rule, error))
                log.warning("rule skipped", theme=slug, rule=rule, error=error)
                continue
            rules.setdefault(slug, []).append(rule)
        models = await _load_models(uow)
        theme_ids.update(await _model_only_themes(uow, theme_ids, models))
        self._loaded = _Loaded(
            key,
            compile_themes(rules),
            orgs,
            theme_ids,
            tuple(skipped),
            models,
            models_key,
            await self._load_indexes(uow, models),
        )
        log.info(
            "watchlists compiled",
            themes=len(rules),
            rules=len(rule_rows) - len(skipped),
            watched_orgs=len(org_rows),
        )
        return self._loaded

    async def classify_and_store(self, uow: UnitOfWork, result: StoreResult, now: datetime) -> None:
        """The after-store hook: classify new and updated items and write their matches.

        Runs inside the caller's transaction. An updated item's matches are replaced (for the
        enabled themes; matches of disabled themes are history and stay).
        """
        items = [*result.new, *result.updated]
        if not items:
            return
        loaded = await self._load(uow)
        vectors = await self._vectors(loaded, [(item.title, item.summary) for item in items])
        matches = {
            item.id: loaded.classify(item.title, item.summary, item.fields, vector)
            for item, vector in zip(items, vectors, strict=True)
        }
        fresh = {item.id for item in result.new}  # just inserted: they have no matches yet
        await uow.matches.replace(matches, loaded.theme_ids, now, fresh=fresh)

    async def classify(self, uow: UnitOfWork, title: str, summary: str = "") -> list[ThemeMatch]:
        """Classify one text as stored items are (rules OR model), storing nothing."""
        loaded = await self._load(uow)
        (vector,) = await self._vectors(loaded, [(title, summary)])
        return loaded.classify(title, summary, ItemFields(), vector)

    async def reclassify(self, uow: UnitOfWork, since: datetime, now: datetime) -> ReclassifyReport:
        """Re-run the current watchlists over items published since ``since``."""
        loaded = await self._load(uow)
        items = matched = added = removed = kept = 0
        by_theme: dict[str, int] = {}
        async for batch in uow.items.texts_since(since):
            vectors = await self._vectors(loaded, [(row.title, row.summary) for row in batch])
            results = {
                row.id: loaded.classify(row.title, row.summary, row.fields, vector)
                for row, vector in zip(batch, vectors, strict=True)
            }
            counts = await uow.matches.replace(results, loaded.theme_ids, now)
            items += len(batch)
            matched += sum(1 for found in results.values() if found)
            added, removed, kept = (
                added + counts.added,
                removed + counts.removed,
                kept + counts.kept,
            )
            for found in results.values():
                for match in found:
                    by_theme[match.slug] = by_theme.get(match.slug, 0) + 1
        return ReclassifyReport(since, items, matched, added, removed, kept, by_theme)

    async def dry_run(
        self,
        uow: UnitOfWork,
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
        matcher = compile_themes({slug: [scope_body(rule) or rule]})  # a scope: what it finds
        since = now - timedelta(days=days)
        scanned = 0
        hits: list[tuple[ItemText, ThemeMatch]] = []
        async for batch in uow.items.texts_since(since):
            scanned += len(batch)
            for row in batch:
                found = matcher.classify(row.title, row.summary)
                if found:
                    hits.append((row, found[0]))
        hit_ids = [row.id for row, _ in hits]
        already = await uow.matches.matched_by(slug, hit_ids)
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


async def _load_models(uow: UnitOfWork) -> ModelSet:
    models = []
    for stored in await uow.learned.active():
        try:
            models.append(theme_model_from_json(stored.model, version=stored.version))
        except ModelFormatError as exc:
            log.warning("model skipped", theme=stored.slug, version=stored.version, error=str(exc))
    if models:
        log.info("learned models loaded", themes=[m.slug for m in models])
    return ModelSet(models)


async def _model_only_themes(
    uow: UnitOfWork, theme_ids: Mapping[str, int], models: ModelSet
) -> list[tuple[str, int]]:
    """Themes with a model but no enabled rule still need their id to store matches."""
    missing = [slug for slug in models.slugs if slug not in theme_ids]
    if not missing:
        return []
    return [(t.slug, t.id) for t in await uow.themes.enabled() if t.slug in missing]
