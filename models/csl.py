"""The Consolidated Screening List (CSL) as records: entries, their comparison, the diff of two
snapshots, and the event items a diff becomes. Pure.

An entry is one row of trade.gov's CSL (Entity List, MEU, UVL, SDN… entries of every US
screening list). Values are compared *normalised*: NFKC, control characters dropped, runs of
white space collapsed, trimmed; ``alt_names``, ``addresses`` and ``programs`` are sets (split on
``;``, a leading ``and `` dropped), so re-ordered aliases or a doubled space are not a change,
and neither is the order of rows.

``diff_snapshots`` pairs entries by ``_id`` first, then (for ids that appear on one side only)
by the natural key ``(source, normalised name, start_date)``: trade.gov's ``_id`` is not
guaranteed stable, and an entry whose id churned is the same entry, not a removal and an
addition. The result lists additions, removals and changes with the columns that changed.

``change_batches`` groups a diff into events: the additions to one list under one Federal
Register citation ("14 entities added to the Entity List — China: …"), the removals from one
list, the revisions of one list's entries. ``batch_item`` turns an event into an ``ItemData``
that is classified and alerted like any item; its ``citation`` fact is the Federal Register
rule's (``90 FR 14046``), the same fact a Federal Register document carries, so the two link.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Literal

from models.fields import CslEntity, CslFields, item_fields
from models.items import ItemData

ChangeKind = Literal["added", "removed", "changed"]

# The trade.gov CSV header, in order (``_id`` first; older files lack it).
CSV_COLUMNS = (
    "_id",
    "source",
    "entity_number",
    "type",
    "programs",
    "name",
    "title",
    "addresses",
    "federal_register_notice",
    "start_date",
    "end_date",
    "standard_order",
    "license_requirement",
    "license_policy",
    "call_sign",
    "vessel_type",
    "gross_tonnage",
    "gross_registered_tonnage",
    "vessel_flag",
    "vessel_owner",
    "remarks",
    "source_list_url",
    "alt_names",
    "citizenships",
    "dates_of_birth",
    "nationalities",
    "places_of_birth",
    "source_information_url",
    "ids",
)
SET_COLUMNS = ("alt_names", "addresses", "programs")
# Columns kept verbatim (normalised) in ``CslEntry.other``.
OTHER_COLUMNS = (
    "standard_order",
    "call_sign",
    "vessel_type",
    "gross_tonnage",
    "gross_registered_tonnage",
    "vessel_flag",
    "vessel_owner",
    "citizenships",
    "dates_of_birth",
    "nationalities",
    "places_of_birth",
)
COLUMN_LABELS = {
    "alt_names": "aliases",
    "federal_register_notice": "FR notice",
    "license_policy": "licence policy",
    "license_requirement": "licence requirement",
    "start_date": "start date",
    "end_date": "end date",
    "source_list_url": "list URL",
    "source_information_url": "information URL",
    "entity_number": "entity number",
}
MAX_ENTITIES_IN_FACTS = 200
SUMMARY_LIMIT = 4000
TITLE_NAMES = 3

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACE = re.compile(r"\s+")
_CITATION = re.compile(r"\b(\d{1,3})\s*F\.?\s?R\.?\s*(\d{1,6})\b")
_COUNTRY_CODE = re.compile(r",\s*([A-Z]{2})\s*$")
_ACRONYM = re.compile(r"\s*\([A-Z][A-Za-z-]*\)")


def clean(value: str | None) -> str:
    """A value as compared and shown: NFKC, no control characters, single spaces, trimmed."""
    if not value:
        return ""
    text = _CONTROL.sub(" ", unicodedata.normalize("NFKC", value))
    return _SPACE.sub(" ", text).strip()


def split_list(value: str | None) -> tuple[str, ...]:
    """``"A; B; and C"`` → ``("A", "B", "C")``: cleaned, a leading "and " dropped, no repeats."""
    parts: list[str] = []
    for part in (value or "").split(";"):
        text = clean(part)
        if text[:4].lower() == "and ":
            text = text[4:].strip()
        if text and text not in parts:
            parts.append(text)
    return tuple(parts)


def citations_of(notice: str) -> tuple[str, ...]:
    """The Federal Register citations in a ``federal_register_notice`` value, in order:
    ``"85 FR 83416, 12/22/20; 90 FR 14046"`` → ``("85 FR 83416", "90 FR 14046")``."""
    found = [f"{vol} FR {page}" for vol, page in _CITATION.findall(notice)]
    return tuple(dict.fromkeys(found))


def _citation_order(citation: str) -> tuple[int, int]:
    vol, _, page = citation.partition(" FR ")
    return int(vol), int(page)


def newest_citation(citations: Iterable[str]) -> str | None:
    """The most recent of some citations (highest volume, then page)."""
    return max(citations, key=_citation_order, default=None)


def fr_citation_url(citation: str) -> str | None:
    """The federalregister.gov address that resolves a citation to its document."""
    match = _CITATION.fullmatch(citation.strip())
    return f"https://www.federalregister.gov/citation/{match[1]}-FR-{match[2]}" if match else None


def list_name(source: str) -> str:
    """``"Entity List (EL) - Bureau of Industry and Security"`` → ``"Entity List"``;
    ``"Specially Designated Nationals (SDN) - Treasury Department"`` → ``"… (SDN) list"``."""
    name = clean(source.split(" - ")[0]) or "screening list"
    if "list" in name.lower():
        return clean(_ACRONYM.sub("", name))
    return f"{name} list"


def country_codes(addresses: Sequence[str]) -> tuple[str, ...]:
    """The ISO country codes that end the addresses (``"…, Beijing, CN"`` → ``CN``)."""
    codes = [m[1] for a in addresses if (m := _COUNTRY_CODE.search(a))]
    return tuple(dict.fromkeys(codes))


def country_name(code: str) -> str:
    return COUNTRIES.get(code, code)


# ---------------------------------------------------------------- the entry


@dataclass(frozen=True, slots=True)
class CslEntry:
    """One CSL row, normalised (see the module docstring). Only ``entry_id``, ``source`` and
    ``name`` are required; every other value may be empty."""

    entry_id: str
    source: str
    name: str
    alt_names: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    federal_register_notice: str = ""
    start_date: str = ""
    end_date: str = ""
    license_requirement: str = ""
    license_policy: str = ""
    programs: tuple[str, ...] = ()
    type: str = ""
    entity_number: str = ""
    title: str = ""
    remarks: str = ""
    source_list_url: str = ""
    source_information_url: str = ""
    ids: str = ""
    other: tuple[tuple[str, str], ...] = ()  # OTHER_COLUMNS with a value, sorted

    @property
    def names(self) -> tuple[str, ...]:
        """The name and its aliases."""
        return (self.name, *self.alt_names)

    @property
    def countries(self) -> tuple[str, ...]:
        return country_codes(self.addresses)

    @property
    def citations(self) -> tuple[str, ...]:
        return citations_of(self.federal_register_notice)

    @property
    def list_name(self) -> str:
        return list_name(self.source)

    @property
    def natural_key(self) -> tuple[str, str, str]:
        """``(source, name, start_date)``, case-folded, BIS's "?" for an apostrophe read as one."""
        name = re.sub(r"(?<=\w)\?(?=\w)", "'", self.name).casefold()
        return (self.source.casefold(), name, self.start_date)

    def comparable(self) -> dict[str, Any]:
        """The values that make the entry what it is, by CSV column (sets sorted)."""
        values: dict[str, Any] = {}
        for f in fields(self):
            if f.name in {"entry_id", "other"}:
                continue
            value = getattr(self, f.name)
            values[f.name] = sorted(value) if f.name in SET_COLUMNS else value
        values.update(dict(self.other))
        return values

    @property
    def content_hash(self) -> str:
        blob = json.dumps(self.comparable(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """The stored form (lists for tuples)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "other":
                out[f.name] = dict(value)
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            elif value:
                out[f.name] = value
        return out


def entry_from_values(values: Mapping[str, Any], *, entry_id: str) -> CslEntry | None:
    """An entry from CSV-like values (strings; list columns may also be lists of strings).
    None without a source or a name."""

    def text(key: str) -> str:
        value = values.get(key)
        if isinstance(value, list):
            return "; ".join(str(v) for v in value if v)
        return clean(value) if isinstance(value, str) else ""

    def items(key: str) -> tuple[str, ...]:
        value = values.get(key)
        if isinstance(value, list):
            return tuple(dict.fromkeys(c for v in value if isinstance(v, str) if (c := clean(v))))
        return split_list(value) if isinstance(value, str) else ()

    source, name = text("source"), text("name")
    if not source or not name:
        return None
    other = tuple(sorted((key, v) for key in OTHER_COLUMNS if (v := text(key))))
    return CslEntry(
        entry_id=entry_id,
        source=source,
        name=name,
        alt_names=items("alt_names"),
        addresses=items("addresses"),
        federal_register_notice=text("federal_register_notice"),
        start_date=text("start_date"),
        end_date=text("end_date"),
        license_requirement=text("license_requirement"),
        license_policy=text("license_policy"),
        programs=items("programs"),
        type=text("type"),
        entity_number=text("entity_number"),
        title=text("title"),
        remarks=text("remarks"),
        source_list_url=text("source_list_url"),
        source_information_url=text("source_information_url"),
        ids=text("ids"),
        other=other,
    )


def entry_from_json(raw: Any) -> CslEntry | None:
    """A stored entry read back; None when it is not one (never raises)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("entry_id"), str):
        return None
    values = dict(raw)
    other = raw.get("other")
    if isinstance(other, Mapping):
        values.update({k: v for k, v in other.items() if k in OTHER_COLUMNS})
    return entry_from_values(values, entry_id=raw["entry_id"])


@dataclass(frozen=True, slots=True)
class CslSnapshot:
    """One download of the list: its entries, rows skipped as unusable, a digest of the bytes."""

    entries: tuple[CslEntry, ...]
    skipped: int = 0
    digest: str = ""


# ---------------------------------------------------------------- the diff


@dataclass(frozen=True, slots=True)
class CslChange:
    """One entry revised in place: before, after, and the CSV columns that differ."""

    before: CslEntry
    after: CslEntry
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CslDiff:
    added: tuple[CslEntry, ...] = ()
    removed: tuple[CslEntry, ...] = ()
    changed: tuple[CslChange, ...] = ()
    unchanged: int = 0
    rekeyed: tuple[tuple[str, str], ...] = ()  # (old _id, new _id) of entries whose id churned

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.rekeyed)


def changed_columns(before: CslEntry, after: CslEntry) -> tuple[str, ...]:
    """The CSV columns whose normalised values differ (``type`` is ``type``, sets as sets)."""
    old, new = before.comparable(), after.comparable()
    return tuple(sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k)))


def diff_snapshots(previous: Iterable[CslEntry], current: Iterable[CslEntry]) -> CslDiff:
    """What changed from ``previous`` to ``current`` (see the module docstring)."""
    before: dict[str, CslEntry] = {}
    for entry in previous:
        before.setdefault(entry.entry_id, entry)
    after: dict[str, CslEntry] = {}
    for entry in current:
        after.setdefault(entry.entry_id, entry)
    pairs = [(before[i], after[i]) for i in after if i in before]
    only_before = {i: e for i, e in before.items() if i not in after}
    only_after = {i: e for i, e in after.items() if i not in before}
    rekeyed: list[tuple[str, str]] = []
    keys_before = Counter(e.natural_key for e in only_before.values())
    keys_after = Counter(e.natural_key for e in only_after.values())
    by_key = {e.natural_key: e for e in only_before.values() if keys_before[e.natural_key] == 1}
    for entry_id, entry in list(only_after.items()):
        old = by_key.get(entry.natural_key)
        if old is not None and keys_after[entry.natural_key] == 1:
            pairs.append((old, entry))
            rekeyed.append((old.entry_id, entry_id))
            del only_before[old.entry_id], only_after[entry_id]
    changed: list[CslChange] = []
    unchanged = 0
    for old, new in pairs:
        if old.content_hash == new.content_hash:
            unchanged += 1
        else:
            changed.append(CslChange(old, new, changed_columns(old, new)))
    return CslDiff(
        added=tuple(only_after.values()),
        removed=tuple(only_before.values()),
        changed=tuple(changed),
        unchanged=unchanged,
        rekeyed=tuple(rekeyed),
    )


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class CslBatch:
    """One event of a diff: entries of one list added (under one citation), removed, or
    revised."""

    change: ChangeKind
    source: str
    entries: tuple[CslEntry, ...]
    citation: str | None = None
    start_date: str | None = None
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # entry id → columns


def change_batches(diff: CslDiff) -> list[CslBatch]:
    """Group a diff into events (see the module docstring), additions first."""
    added: dict[tuple[str, str | None, str], list[CslEntry]] = {}
    for entry in diff.added:
        citation = newest_citation(entry.citations)
        added.setdefault((entry.source, citation, entry.start_date), []).append(entry)
    batches = [
        CslBatch("added", source, tuple(entries), citation, start or None)
        for (source, citation, start), entries in sorted(
            added.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])
        )
    ]
    removed: dict[str, list[CslEntry]] = {}
    for entry in diff.removed:
        removed.setdefault(entry.source, []).append(entry)
    batches += [CslBatch("removed", s, tuple(e)) for s, e in sorted(removed.items())]
    revised: dict[tuple[str, str | None], list[CslChange]] = {}
    for change in diff.changed:
        new_cites = set(change.after.citations) - set(change.before.citations)
        key = (change.after.source, newest_citation(new_cites))
        revised.setdefault(key, []).append(change)
    batches += [
        CslBatch(
            "changed",
            source,
            tuple(c.after for c in changes),
            citation,
            columns={c.after.entry_id: c.columns for c in changes},
        )
        for (source, citation), changes in sorted(
            revised.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
        )
    ]
    return batches


def _countries(entries: Sequence[CslEntry]) -> list[tuple[str, int]]:
    counts = Counter(country_name(e.countries[0]) if e.countries else "" for e in entries)
    return [(c, n) for c, n in counts.most_common() if c]


def _title(batch: CslBatch) -> str:
    n = len(batch.entries)
    noun = "entity" if n == 1 else "entities"
    where = list_name(batch.source)
    head = {
        "added": f"{n} {noun} added to the {where}",
        "removed": f"{n} {noun} removed from the {where}",
        "changed": f"{n} {where} {'entry' if n == 1 else 'entries'} revised",
    }[batch.change]
    countries = _countries(batch.entries)
    if len(countries) == 1:
        place = countries[0][0]
    else:
        place = ", ".join(f"{c} ({k})" for c, k in countries[:4])
    names = [e.name for e in batch.entries[:TITLE_NAMES]]
    rest = n - len(names)
    listed = ", ".join(names) + (f" and {rest} more" if rest > 0 else "")
    return f"{head} — {place}: {listed}" if place else f"{head}: {listed}"


def _summary(batch: CslBatch) -> str:
    parts: list[str] = []
    if batch.citation:
        parts.append(f"Federal Register {batch.citation}.")
    if batch.start_date:
        parts.append(f"Start date {batch.start_date}.")
    for entry in batch.entries:
        text = entry.name
        if entry.alt_names:
            text += f" (also {'; '.join(entry.alt_names)})"
        if entry.countries:
            text += f", {', '.join(country_name(c) for c in entry.countries)}"
        columns = batch.columns.get(entry.entry_id)
        if columns:
            text += f" [revised: {', '.join(COLUMN_LABELS.get(c, c) for c in columns)}]"
        parts.append(text + ".")
    summary = " ".join(parts)
    return summary if len(summary) <= SUMMARY_LIMIT else summary[: SUMMARY_LIMIT - 1] + "…"


def batch_item(batch: CslBatch, *, seen_at: datetime) -> ItemData:
    """The event item of a batch, first seen at ``seen_at`` (its publication time: the list
    gives no time of its own)."""
    ids = sorted(e.entry_id for e in batch.entries)
    key = "\x00".join([batch.change, batch.source, batch.citation or "", *ids])
    digest = hashlib.sha256(f"{key}\x00{seen_at.date().isoformat()}".encode()).hexdigest()
    facts = CslFields(
        list_name=list_name(batch.source),
        list_source=batch.source,
        change=batch.change,
        entity_count=len(batch.entries),
        entities=[_entity(e, batch.columns.get(e.entry_id, ())) for e in batch.entries][
            :MAX_ENTITIES_IN_FACTS
        ],
    )
    if countries := _countries(batch.entries):
        facts["countries"] = [c for c, _ in countries]
    if batch.citation:
        facts["citation"] = batch.citation
    if batch.start_date:
        facts["start_date"] = batch.start_date
    policies = {e.license_policy for e in batch.entries}
    if len(policies) == 1 and (policy := policies.pop()):
        facts["license_policy"] = policy
    first_url = next((e.source_list_url for e in batch.entries if e.source_list_url), None)
    return ItemData(
        external_id=f"csl:{batch.change}:{digest[:32]}",
        title=_title(batch),
        url=(fr_citation_url(batch.citation) if batch.citation else None) or first_url,
        summary=_summary(batch),
        language="en",
        published_at=seen_at,
        fields=item_fields(facts),
    )


def _entity(entry: CslEntry, columns: Sequence[str]) -> CslEntity:
    return CslEntity(
        id=entry.entry_id,
        name=entry.name,
        aliases=list(entry.alt_names),
        countries=[country_name(c) for c in entry.countries],
        changed=[COLUMN_LABELS.get(c, c) for c in columns],
    )


def with_linked_document(item: ItemData, number: str, title: str) -> ItemData:
    """The item with the Federal Register document its citation names."""
    facts = item.fields.copy()
    facts["fr_document_number"] = number
    facts["fr_title"] = title
    return replace(item, fields=facts)


# ISO 3166-1 alpha-2 codes as the CSL uses them (others are shown as the code).
COUNTRIES: dict[str, str] = {
    "AE": "United Arab Emirates",
    "AF": "Afghanistan",
    "AM": "Armenia",
    "AR": "Argentina",
    "AT": "Austria",
    "AU": "Australia",
    "AZ": "Azerbaijan",
    "BE": "Belgium",
    "BG": "Bulgaria",
    "BH": "Bahrain",
    "BR": "Brazil",
    "BY": "Belarus",
    "CA": "Canada",
    "CH": "Switzerland",
    "CN": "China",
    "CU": "Cuba",
    "CY": "Cyprus",
    "CZ": "Czechia",
    "DE": "Germany",
    "DK": "Denmark",
    "EE": "Estonia",
    "EG": "Egypt",
    "ES": "Spain",
    "FI": "Finland",
    "FR": "France",
    "GB": "United Kingdom",
    "GE": "Georgia",
    "GR": "Greece",
    "HK": "Hong Kong",
    "HU": "Hungary",
    "ID": "Indonesia",
    "IE": "Ireland",
    "IL": "Israel",
    "IN": "India",
    "IQ": "Iraq",
    "IR": "Iran",
    "IT": "Italy",
    "JO": "Jordan",
    "JP": "Japan",
    "KG": "Kyrgyzstan",
    "KP": "North Korea",
    "KR": "South Korea",
    "KW": "Kuwait",
    "KZ": "Kazakhstan",
    "LB": "Lebanon",
    "LT": "Lithuania",
    "LV": "Latvia",
    "LY": "Libya",
    "MM": "Burma",
    "MO": "Macau",
    "MX": "Mexico",
    "MY": "Malaysia",
    "NL": "Netherlands",
    "NO": "Norway",
    "NZ": "New Zealand",
    "OM": "Oman",
    "PK": "Pakistan",
    "PL": "Poland",
    "PS": "Palestinian Territories",
    "PT": "Portugal",
    "QA": "Qatar",
    "RO": "Romania",
    "RS": "Serbia",
    "RU": "Russia",
    "SA": "Saudi Arabia",
    "SD": "Sudan",
    "SE": "Sweden",
    "SG": "Singapore",
    "SK": "Slovakia",
    "SY": "Syria",
    "TH": "Thailand",
    "TJ": "Tajikistan",
    "TM": "Turkmenistan",
    "TR": "Turkey",
    "TW": "Taiwan",
    "UA": "Ukraine",
    "US": "United States",
    "UZ": "Uzbekistan",
    "VE": "Venezuela",
    "VN": "Vietnam",
    "YE": "Yemen",
    "ZA": "South Africa",
}
