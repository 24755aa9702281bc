"""``/entity`` lookups: which screening lists name an organisation, fuzzy and bilingual.

The name index (every stored entry's names, parsed once) is kept in memory and rebuilt when the
stored lists change. A query is widened with the other names of a known organisation it names
(``models/data/known_orgs.json`` and what editors added with ``/names``: 寒武纪 → Cambricon) and
the aliases of a watched organisation it names (so 智谱 finds the Entity List's "Beijing Zhipu
Huazhang Technology Co., Ltd." when someone watches 智谱 / Zhipu), candidates are short-listed
by rapidfuzz over the romanised names, and ``models.orgnames.same_org`` decides; without a match
the closest names are offered.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz, process

from models.db import UnitOfWork
from models.orgnames import known_with, parse_org, romanised, same_as_any, similarity
from models.views import EntityRecord

SHORTLIST = 60
CLOSEST = 5
MAX_RESULTS = 5


def _key(name: str) -> str:
    return " ".join(romanised(parse_org(name)).tokens)


@dataclass(frozen=True, slots=True)
class EntityAnswer:
    """What a lookup found: matching entries, or the closest names when none matched."""

    records: tuple[EntityRecord, ...] = ()
    closest: tuple[str, ...] = ()
    queried: tuple[str, ...] = ()  # the names looked for (the query and a watch's aliases)
    empty: bool = False  # no screening list is stored at all


class EntityLookup:
    def __init__(self) -> None:
        self._version: object = None
        self._ids: list[int] = []
        self._names: list[tuple[str, ...]] = []
        self._keys: list[str] = []
        self._owner: list[int] = []  # key index -> entry index

    async def _refresh(self, uow: UnitOfWork) -> None:
        version = await uow.csl.version()
        if version == self._version:
            return
        index = await uow.csl.name_index()
        self._ids = [row_id for row_id, _ in index]
        self._names = [names for _, names in index]
        self._keys, self._owner = [], []
        for position, names in enumerate(self._names):
            for name in names:
                self._keys.append(_key(name))
                self._owner.append(position)
        self._version = version

    async def lookup(
        self, uow: UnitOfWork, query: str, *, subscriber_id: int | None = None
    ) -> EntityAnswer:
        await self._refresh(uow)
        if not self._ids:
            return EntityAnswer(empty=True)
        queries = [query]
        known = known_with(await uow.known.edits())
        watches = await uow.watched.of_enabled_themes()
        if subscriber_id is not None:
            watches += await uow.watched.of_subscriber(subscriber_id)
        for org in watches:
            if same_as_any([query], org.names, known):
                queries.extend(n for n in org.names if n not in queries)
        # A known organisation's other names (寒武纪 → Cambricon) are searched for too: the short
        # list is by spelling, and a brand that is not pinyin is spelt nothing alike. They are
        # not queries of their own: same_org weighs them (as names, not brands of a company).
        searched = queries + [n for n in known.names_of(query) if n not in queries]
        shortlist: dict[int, float] = {}
        for name in searched:
            key = _key(name)
            if not key:
                continue
            for _, score, at in process.extract(
                key, self._keys, scorer=fuzz.WRatio, limit=SHORTLIST
            ):
                owner = self._owner[at]
                shortlist[owner] = max(shortlist.get(owner, 0.0), float(score))
        hits = [p for p in shortlist if same_as_any(queries, self._names[p], known)]
        hits.sort(key=lambda p: -shortlist[p])
        if hits:
            records = await uow.csl.records([self._ids[p] for p in hits[:MAX_RESULTS]])
            return EntityAnswer(records=tuple(records), queried=tuple(searched))
        ranked = sorted(
            shortlist, key=lambda p: -max(similarity(q, self._names[p][0]) for q in queries)
        )
        closest = tuple(dict.fromkeys(self._names[p][0] for p in ranked))[:CLOSEST]
        return EntityAnswer(closest=closest, queried=tuple(searched))
