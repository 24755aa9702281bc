"""What an Entity List rule does, read from its abstract: how many entities it adds, removes or
revises, and under which destinations. Pure.

BIS's titles do not say it ("Additions to the Entity List", "Revisions to the Entity List"); the
abstract does, in a few stock phrasings (``reference/sources.md`` §1.5), all real::

    ... by adding 29 entries (26 entities and 3 addresses) to the Entity List under the
    destinations of People's Republic of China (China) (19), Turkey (9), and the United Arab
    Emirates (UAE) (1).
    ... by adding 12 entities to the Entity List. These 12 entities will be listed on the Entity
    List under the destinations of China (11) and Taiwan (1).
    The Bureau of Industry and Security (BIS) is removing one entity from the Entity List under
    the destination of China, People's Republic of (China).
    This final rule also modifies 14 existing entries on the Entity List ...

A rule about the Entity List that lists nobody ("Authorization of Certain Items to Entities on
the Entity List ...") gives nothing: no count, no destination.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.fields import FederalRegisterFields

_UNITS = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen"),
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_NUMBER = (
    r"(\d[\d,]*|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:-[a-z]+)?"
    r"|[a-z]+teen|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
)
_WHAT = (
    r"(?:new\s+|additional\s+|existing\s+)?(?:entit(?:y|ies)|entr(?:y|ies)|persons?|parties"
    r"|party|organizations?|companies|individuals)"
)
_ADDED = re.compile(rf"\badd(?:ing|s|ed)?\s+{_NUMBER}\s+{_WHAT}", re.IGNORECASE)
_REMOVED = re.compile(rf"\bremov(?:ing|es|ed|e)\s+{_NUMBER}\s+{_WHAT}", re.IGNORECASE)
_REVISED = re.compile(
    rf"\b(?:modif(?:ying|ies|ied|y)|revis(?:ing|es|ed|e))\s+{_NUMBER}\s+{_WHAT}", re.IGNORECASE
)
_DESTINATIONS = re.compile(r"\bunder\s+the\s+destinations?\s+of\s+", re.IGNORECASE)
_LIST_END = re.compile(
    r"\.(?:\s|$)|;|\s+(?:and\s+)?(?:have|has|had|were|was|are|is|will|with|as|because|for|"
    r"based|which|who|that|on|in|to)\s",
)
_CHINA = re.compile(
    r"China,\s+People's\s+Republic\s+of|People's\s+Republic\s+of\s+China", re.IGNORECASE
)
_COUNTED = re.compile(r"^(.*?)\s*\((\d[\d,]*)\)$")
_ALIAS = re.compile(r"\(([^()\d][^()]*)\)")
# The first list a count is said to go to, come from or be on ("... to the Entity List",
# "... from the Unverified List", "... from the Validated End-User (VEU) Program").
_NEXT_LIST = re.compile(
    r"[^.]{0,80}?\b(?:to|from|on)\s+the\s+((?:[\w()'-]+\s+){0,5}?(?:List|Program|Programme))\b",
    re.IGNORECASE,
)
# Destinations whose names hold a comma or "and" (BIS writes "Korea, North").
_WHOLE_NAMES = (
    "Bosnia and Herzegovina",
    "Trinidad and Tobago",
    "Antigua and Barbuda",
    "Saint Kitts and Nevis",
    "Saint Vincent and the Grenadines",
    "Sao Tome and Principe",
    "Korea, North",
    "Korea, South",
    "Korea, Democratic People's Republic of",
    "Congo, Democratic Republic of the",
    "Congo, Republic of the",
    "Iran, Islamic Republic of",
)
MAX_DESTINATIONS = 30


@dataclass(frozen=True, slots=True)
class Destination:
    name: str
    entries: int | None = None  # as the abstract counts them, when it does


@dataclass(frozen=True, slots=True)
class ListChange:
    added: int | None = None
    removed: int | None = None
    revised: int | None = None
    destinations: tuple[Destination, ...] = ()


def english_number(text: str) -> int | None:
    """``12``, ``1,000``, ``twelve``, ``twenty-eight`` → the number; anything else None."""
    word = text.strip().lower().replace(",", "")
    if word.isdigit():
        return int(word)
    if word in _UNITS:
        return _UNITS.index(word)
    tens, _, unit = word.partition("-")
    if tens in _TENS and (not unit or unit in _UNITS[1:10]):
        return 20 + 10 * _TENS.index(tens) + (_UNITS.index(unit) if unit else 0)
    return None


def list_change(title: str, abstract: str) -> ListChange | None:
    """What an Entity List document does, or None when it is not about additions, removals
    or revisions of entries (or says nothing countable about them)."""
    if "entity list" not in f"{title} {abstract}".lower():
        return None
    added = _first_count(_ADDED, abstract)
    removed = _first_count(_REMOVED, abstract)
    revised = _first_count(_REVISED, abstract)
    destinations = destinations_of(abstract)
    if added is None and removed is None and revised is None and not destinations:
        return None
    return ListChange(added, removed, revised, destinations)


def destinations_of(abstract: str) -> tuple[Destination, ...]:
    """The destinations an abstract lists entries under, each once, in its order."""
    found: dict[str, Destination] = {}
    for match in _DESTINATIONS.finditer(abstract):
        rest = _CHINA.sub("China", abstract[match.end() : match.end() + 600])
        for whole in _WHOLE_NAMES:  # kept whole through the split below
            rest = rest.replace(whole, whole.replace(",", "\x01").replace(" and ", "\x02"))
        end = _LIST_END.search(rest)
        listed = rest[: end.start()] if end else rest
        for part in re.split(r",\s*(?:and\s+)?|\s+and\s+", listed):
            destination = _destination(part.replace("\x01", ",").replace("\x02", " and "))
            if destination is not None and destination.name not in found:
                found[destination.name] = destination
    return tuple(found.values())[:MAX_DESTINATIONS]


def _destination(part: str) -> Destination | None:
    text = part.strip().removeprefix("the ").strip()
    entries: int | None = None
    counted = _COUNTED.match(text)
    if counted:
        text, entries = counted.group(1), english_number(counted.group(2))
    alias = _ALIAS.search(text)
    name = alias.group(1).strip() if alias else text  # "United Arab Emirates (UAE)" → "UAE"
    name = name.strip(" .")
    if not name or len(name) > 60 or not name[0].isupper():
        return None
    return Destination(name, entries)


def _first_count(pattern: re.Pattern[str], text: str) -> int | None:
    """The first count the pattern finds that is about the Entity List ("removing three
    entities from the Validated End-User (VEU) Program" is not)."""
    for match in pattern.finditer(text):
        value = english_number(match.group(1))
        listed = _NEXT_LIST.match(text, match.end())
        if (
            value is not None
            and listed
            and " ".join(listed.group(1).split()).lower() == ("entity list")
        ):
            return value
    return None


def list_fields(title: str, abstract: str) -> FederalRegisterFields:
    """``list_change`` as a document's facts (none when it says nothing countable)."""
    change = list_change(title, abstract)
    fields = FederalRegisterFields()
    if change is None:
        return fields
    if change.added is not None:
        fields["entities_added"] = change.added
    if change.removed is not None:
        fields["entities_removed"] = change.removed
    if change.revised is not None:
        fields["entries_revised"] = change.revised
    if change.destinations:
        fields["destinations"] = [
            d.name if d.entries is None else f"{d.name} ({d.entries})" for d in change.destinations
        ]
    return fields


def counts_text(fields: FederalRegisterFields) -> str:
    """``29 added, 14 revised``: what a document's facts count ("" when nothing)."""
    counted = (
        (fields.get("entities_added"), "added"),
        (fields.get("entities_removed"), "removed"),
        (fields.get("entries_revised"), "revised"),
    )
    return ", ".join(f"{count} {verb}" for count, verb in counted if count is not None)
