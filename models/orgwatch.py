"""Watched organisations matched in items. Pure.

A watched organisation is a name with aliases (English and Chinese, e.g. 智谱 / Zhipu / Beijing
Zhipu Huazhang Technology). An item names it when:

- its title or summary contains one of the names (or a name without its legal form), matched
  as watchlist terms are (``models.matching``: NFKC, Traditional → Simplified, case folding,
  word boundaries; no fuzziness in running text, where it would misfire), or
- it is a screening-list change (``fields["entities"]``) one of whose entries is the same
  organisation by ``models.orgnames.same_org`` (legal forms, scripts, brands, acronyms, typing
  slips) under its name or any of its listed aliases.

``OrgIndex`` is built once per set of watches; ``matches`` returns one ``ThemeMatch`` per key
(a theme's slug for a theme's watches, any string for a subscriber's), naming the organisation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from models.errors import RuleError
from models.fields import ItemFields
from models.matching import TITLE_WEIGHT, MatchedTerm, ThemeMatch, check_rule, compile_themes
from models.orgnames import KnownOrgs, same_as_any, text_terms


@dataclass(frozen=True, slots=True)
class Watch:
    """One watched organisation under a key (a theme slug, or a subscriber's key)."""

    key: str
    name: str
    names: tuple[str, ...]  # the name and its aliases


def quoted(term: str) -> str:
    """A term as a quoted phrase of the rule language."""
    return '"' + term.replace("\\", "\\\\").replace('"', '\\"') + '"'


def watch_rules(names: Iterable[str]) -> list[str]:
    """The rules that find these names in text (one quoted phrase each; unusable ones left out)."""
    rules: list[str] = []
    for name in names:
        for term in text_terms(name):
            rule = quoted(term)
            if check_rule(rule) is None and rule not in rules:
                rules.append(rule)
    return rules


class OrgIndex:
    def __init__(self, watches: Sequence[Watch], known: KnownOrgs | None = None) -> None:
        """``known``: organisations known by several names (the shipped list when not
        given), for matching the names a list change gives."""
        self.watches = tuple(watches)
        self.known = known
        rules: dict[str, list[str]] = {}
        for index, watch in enumerate(self.watches):
            slot = f"{index}"
            for rule in watch_rules(watch.names):
                rules.setdefault(slot, []).append(rule)
        try:
            self._matcher = compile_themes(rules)
        except RuleError:  # every rule was checked above; this cannot happen
            self._matcher = compile_themes({})

    def matches(self, title: str, summary: str, fields: ItemFields) -> list[ThemeMatch]:
        """One match per key whose organisations the item names (see the module docstring)."""
        found: dict[str, dict[str, MatchedTerm]] = {}
        for hit in self._matcher.classify(title, summary):
            watch = self.watches[int(hit.slug)]
            terms = found.setdefault(watch.key, {})
            for term in hit.terms:
                terms.setdefault(watch.name, MatchedTerm(watch.name, term.field))
        entities = fields.get("entities", [])
        if entities:
            for watch in self.watches:
                if watch.name in found.get(watch.key, {}):
                    continue
                for entity in entities:
                    names = [entity["name"], *entity["aliases"]]
                    if same_as_any(watch.names, names, self.known):
                        found.setdefault(watch.key, {})[watch.name] = MatchedTerm(
                            watch.name, "title"
                        )
                        break
        return [
            ThemeMatch(
                key,
                TITLE_WEIGHT * len(terms),
                tuple(terms.values()),
                tuple(f"watched organisation: {name}" for name in terms),
            )
            for key, terms in found.items()
        ]


def merge_matches(first: Sequence[ThemeMatch], more: Sequence[ThemeMatch]) -> list[ThemeMatch]:
    """Two lists of theme matches as one (per slug: terms and rules joined, scores added),
    strongest first."""
    merged: dict[str, ThemeMatch] = {m.slug: m for m in first}
    for match in more:
        known = merged.get(match.slug)
        if known is None:
            merged[match.slug] = match
            continue
        terms = known.terms + tuple(t for t in match.terms if t not in known.terms)
        rules = known.rules + tuple(r for r in match.rules if r not in known.rules)
        merged[match.slug] = replace(
            known,
            score=known.score + match.score,
            terms=terms,
            rules=rules,
            layer="both" if known.layer == "model" else known.layer,  # a watch is a rule
        )
    return sorted(merged.values(), key=lambda m: (-m.score, m.slug))
