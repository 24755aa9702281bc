"""Events: which stored items report the same real-world happening. Pure and deterministic.

An item is read once into a ``Signature``:

- **keys**: hard identifiers. The canonical URL; a Federal Register document number (and, for a
  correction, the number it corrects); its citation (``90 FR 4544``), RINs and dockets; a CAC
  article id (``c_1769688009588554``); and for Federal Register documents their normalised title
  (a "Public Briefing on X" or "X; Correction" document carries X's).
- **anchors**: what the text names, across languages: concepts of the bilingual lexicon
  (``models.lexicon``: Nvidia = 英伟达 = 輝達), numbers with their scale (5.5 billion = 55亿,
  140 entities = 140家), percentages, process nodes (7nm = 7纳米), filing batches (第九批 =
  ninth batch), day-of-year dates (Aug. 1 = 8月1日) and product codes (H20, 910C, MI308).
- **tokens** of the title, for near-identical headlines in one language (mirrors, reposts).
- **terms**: the words of title and summary as ``models.glossary`` compares them across
  languages (English stems; the English senses of Chinese words): 量子 meets "quantum".

``decide`` compares the new item with the members of candidate events, in this order:

1. A shared hard key joins the item to that event, whatever its wording ("same FR document
   2025-00636"). Keys that several happenings share over time (a RIN, a docket, a FR title)
   count only within ``KEY_WINDOWS``.
2. Otherwise each candidate event within ``WINDOW`` (``REGULATION_LAG`` for a Federal Register
   document after its announcement) is judged by the learned pair model
   (``models.event_model``) on ``pair_features``: the weights of the anchors both name (in
   titles, in summaries, by tier), conflicting names, title overlap in one language, shared
   terms across languages, the time between them, document flags, and the hand-set score of
   earlier versions (anchors + title overlap − a requirement that grows by the day). The most
   probable event at or above the model's threshold wins ("shares Nvidia, H20, 5.5 billion").
3. Otherwise the item starts a new event.

Ties go to the older event, so the same items in the same order always give the same events.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TypeVar

from models.event_model import PairModel, shipped_model
from models.fields import ItemFields, fields_from_json
from models.glossary import terms as glossary_terms
from models.lexicon import CONCEPTS, GENERIC, NAMED
from models.matching import Matcher, compile_themes, normalize
from models.numbers import chinese_number
from models.themes import quote_term

WINDOW = timedelta(days=4)
REGULATION_LAG = timedelta(days=14)  # a Federal Register document follows its announcement
KEY_WINDOWS: Mapping[str, timedelta] = {
    "rin": timedelta(days=14),
    "docket": timedelta(days=14),
    "frtitle": timedelta(days=45),
}
HARD_WINDOW = timedelta(days=180)  # a correction or a repost much later is still the same act
MEMBERS_PER_EVENT = 12  # the latest members of an event an item is compared with
THRESHOLD = 2.5
PER_DAY = 0.5  # extra score needed per day between two items
TITLE_BONUS = 6.0
NUMBER_WEIGHT = 2.5
CODE_WEIGHT = 2.5
DATE_WEIGHT = 1.5
MAX_REASON_ANCHORS = 4
SUMMARY_FACTOR = 0.5  # an anchor named only in the summary (context, often) counts half
NEAR_TITLE = 0.5  # title overlap that alone makes two items one event (mirrors, reposts)

KEY_REASONS = {
    "url": "same URL",
    "doc": "same FR document {}",
    "cite": "same citation {}",
    "cac": "same CAC article {}",
    "rin": "same RIN {}",
    "docket": "same docket {}",
    "frtitle": "same FR title",
}


@dataclass(frozen=True, slots=True)
class EventItem:
    """What event grouping reads of an item (the ``policywatch events`` input shape)."""

    id: str
    title: str
    published_at: datetime
    summary: str = ""
    url: str | None = None
    source: str = ""
    language: str | None = None
    fields: ItemFields = field(default_factory=ItemFields)


@dataclass(frozen=True, slots=True)
class Signature:
    """An item as event grouping compares it (stored beside the assignment, as JSON)."""

    when: datetime
    language: str
    keys: frozenset[str]
    anchors: Mapping[str, float]  # anchor → weight
    labels: Mapping[str, str]  # anchor → how a reason names it
    tokens: frozenset[str]
    in_title: frozenset[str] = frozenset()  # the anchors the title itself names
    terms: frozenset[str] = frozenset()  # the title's terms (models.glossary)
    summary_terms: frozenset[str] = frozenset()
    # A Federal Register document that names another by its title ("Public Briefing on X",
    # "X; Correction"): its ``frtitle`` key joins X. Two documents that are each their own
    # (both numbered, neither naming the other) are not joined by a shared title: BIS prints
    # "Additions to the Entity List" for different rules days apart.
    refers_by_title: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            **({"refers_by_title": True} if self.refers_by_title else {}),
            "when": self.when.isoformat(),
            "language": self.language,
            "keys": sorted(self.keys),
            "anchors": {a: [w, self.labels.get(a, a)] for a, w in sorted(self.anchors.items())},
            "tokens": sorted(self.tokens),
            "in_title": sorted(self.in_title),
            "terms": sorted(self.terms),
            "summary_terms": sorted(self.summary_terms),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> Signature:
        anchors_raw = raw.get("anchors")
        anchors: dict[str, float] = {}
        labels: dict[str, str] = {}
        if isinstance(anchors_raw, Mapping):
            for name, value in anchors_raw.items():
                if isinstance(value, list) and len(value) == 2:
                    anchors[str(name)] = float(value[0])
                    labels[str(name)] = str(value[1])
        keys = raw.get("keys")
        tokens = raw.get("tokens")
        in_title = raw.get("in_title")

        def strings(value: object) -> frozenset[str]:
            return frozenset(str(t) for t in value) if isinstance(value, list) else frozenset()

        return cls(
            when=datetime.fromisoformat(str(raw["when"])),
            language=str(raw.get("language") or ""),
            keys=strings(keys),
            anchors=anchors,
            labels=labels,
            tokens=strings(tokens),
            in_title=strings(in_title),
            terms=strings(raw.get("terms")),
            summary_terms=strings(raw.get("summary_terms")),
            refers_by_title=raw.get("refers_by_title") is True,
        )


@dataclass(frozen=True, slots=True)
class Member:
    """An item already in an event, as a candidate to compare with."""

    event_id: int
    signature: Signature


@dataclass(frozen=True, slots=True)
class Decision:
    """Where an item goes: an existing event (``event_id``) or a new one (None), and why."""

    event_id: int | None
    reason: str
    score: float = 0.0


def item_from_json(record: object) -> EventItem:
    """An item of the ``policywatch events`` input (``id``, ``source``, ``url``, ``title``,
    ``summary``, ``published_at`` with an offset, ``language``, ``fields``); ValueError says
    what is wrong with a record."""
    if not isinstance(record, Mapping):
        msg = "not a JSON object"
        raise ValueError(msg)
    title, summary = record.get("title"), record.get("summary") or ""
    if not isinstance(title, str) or not title.strip() or not isinstance(summary, str):
        msg = "a title (a non-empty string) is required, and a summary must be a string"
        raise ValueError(msg)
    raw_when = record.get("published_at")
    try:
        when = datetime.fromisoformat(str(raw_when))
    except ValueError:
        msg = f"published_at is not an ISO 8601 time: {raw_when!r}"
        raise ValueError(msg) from None
    if when.tzinfo is None:
        msg = "published_at needs a UTC offset (e.g. 2025-01-13T15:04:00+00:00)"
        raise ValueError(msg)
    url, source, language = record.get("url"), record.get("source"), record.get("language")
    return EventItem(
        id=str(record.get("id", "")),
        title=title,
        summary=summary,
        url=url if isinstance(url, str) and url else None,
        source=source if isinstance(source, str) else "",
        language=language if isinstance(language, str) and language else None,
        published_at=when,
        fields=fields_from_json(record.get("fields")),
    )


# ---------------------------------------------------------------- reading an item


@lru_cache(maxsize=1)
def _concepts() -> tuple[Matcher, dict[str, tuple[float, str]]]:
    """The lexicon as one automaton (concept id → rule of its forms), built on first use."""
    rules: dict[str, list[str]] = {}
    info: dict[str, tuple[float, str]] = {}
    for concept in CONCEPTS:
        forms = [
            ("=" + quote_term(f[1:])) if f.startswith("=") else quote_term(f) for f in concept.forms
        ]
        rules[concept.id] = [" OR ".join(forms)]
        info[concept.id] = (concept.weight, concept.forms[0].lstrip("="))
    return compile_themes(rules), info


@lru_cache(maxsize=1)
def _known_codes() -> frozenset[str]:
    """Lexicon forms that look like product codes (so the code pattern does not count twice)."""
    return frozenset(
        f.lstrip("=").lower().replace("-", "")
        for c in CONCEPTS
        for f in c.forms
        if _CODE.fullmatch(f.lstrip("=").rstrip("*"))
    )


_SCALES = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "mn": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "万": 1e4,
    "萬": 1e4,
    "亿": 1e8,
    "億": 1e8,
    "千": 1e3,
}
_NUMBER = re.compile(
    r"(?<![0-9A-Za-z.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*"
    r"(%|percent|per cent|thousand|million|billion|trillion|bn|mn|万|萬|亿|億|千"
    r"|-?nanomet(?:er|re)s?|-?nm|纳米|奈米|納米)?(?![a-z])",
    re.IGNORECASE,
)
_YEAR_AFTER = re.compile(r"^\s*(年|年度|财年|fiscal)")
_MONTHS = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_EN_DATE = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b",
    re.IGNORECASE,
)
_ZH_DATE = re.compile(r"(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_ZH_BATCH = re.compile(r"第\s*([零一二三四五六七八九十百\d]+)\s*批")
_EN_BATCH = re.compile(
    r"\b(?:batch\s+(\d+)|(\d+)(?:st|nd|rd|th)\s+batch|"
    r"(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth)"
    r"\s+batch)\b",
    re.IGNORECASE,
)
_ORDINALS = {
    name: n
    for n, name in enumerate(
        (
            "first",
            "second",
            "third",
            "fourth",
            "fifth",
            "sixth",
            "seventh",
            "eighth",
            "ninth",
            "tenth",
            "eleventh",
            "twelfth",
            "thirteenth",
            "fourteenth",
            "fifteenth",
            "sixteenth",
            "seventeenth",
            "eighteenth",
            "nineteenth",
            "twentieth",
        ),
        start=1,
    )
}
_QUARTER = re.compile(
    r"(?<![0-9A-Za-z])(?:q([1-4])|(first|second|third|fourth)[- ]quarter)(?![0-9A-Za-z])"
    r"|第?([一二三四])季度",
    re.IGNORECASE,
)
_QUARTER_WORDS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
}
_VERSION = re.compile(r"(?<![A-Za-z0-9.])([A-Za-z]{1,8}-?\d{1,2}(?:\.\d{1,2})+)(?![0-9A-Za-z.])")
_CODE = re.compile(
    r"(?<![A-Za-z0-9])([A-Za-z]{1,3}-?\d{2,4}[A-Za-z]{0,2}|\d{3,4}[A-Za-z]{1,2})(?![A-Za-z0-9])"
)
_CAC_ID = re.compile(r"/c_(\d{10,20})\.htm")
_PUBLISHER = re.compile(r"\s+[-–—|]\s+[^-–—|]{2,40}$")  # " - Reuters" (Google News titles)
_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "over",
        "says",
        "that",
        "the",
        "their",
        "to",
        "was",
        "were",
        "will",
        "with",
        "after",
        "amid",
        "new",
        "us",
        "u",
        "s",
        "china",
        "chinese",
    ]
)


def _scaled(value: float) -> str:
    """A number rounded to two significant digits, as an anchor: 557.6万 and $5.6 million meet."""
    if value == 0:
        return "0"
    digits = 1 - math.floor(math.log10(abs(value)))
    return f"{round(value, digits):.6g}"


def _label(value: float) -> str:
    for scale, name in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if value >= scale:
            return f"{value / scale:.3g} {name}"
    return f"{value:.6g}"


def numbers(text: str) -> dict[str, str]:
    """Number anchors in ``text`` (anchor → label): amounts with their scale, percentages,
    process nodes. Years and bare numbers below 10 say too little and are left out."""
    found: dict[str, str] = {}
    for match in _NUMBER.finditer(text):
        raw, unit = match.group(1).replace(",", ""), (match.group(2) or "").lower()
        try:
            value = float(raw)
        except ValueError:
            continue
        if unit in {"%", "percent", "per cent"}:
            found[f"pct:{_scaled(value)}"] = f"{value:g}%"
        elif unit.lstrip("-").startswith(("nm", "nanomet")) or unit in {"纳米", "奈米", "納米"}:
            found[f"node:{value:g}"] = f"{value:g}nm"
        elif unit in _SCALES:
            total = value * _SCALES[unit]
            found[f"num:{_scaled(total)}"] = _label(total)
        elif (
            value >= 10
            and not (1900 <= value <= 2100 and "." not in raw)
            and not _YEAR_AFTER.match(text[match.end() :])
        ):
            found[f"num:{_scaled(value)}"] = _label(value)
    return found


def dates(text: str) -> dict[str, str]:
    """Day-of-year anchors: ``Aug. 1`` and ``8月1日`` both give ``md:8-1``."""
    found: dict[str, str] = {}
    for match in _EN_DATE.finditer(text):
        month = _MONTHS.index(match.group(1).lower()[:3]) + 1
        day = int(match.group(2))
        if 1 <= day <= 31:
            found[f"md:{month}-{day}"] = f"{month}/{day}"
    for match in _ZH_DATE.finditer(text):
        month, day = int(match.group(1)), int(match.group(2))
        if 1 <= month <= 12 and 1 <= day <= 31:
            found[f"md:{month}-{day}"] = f"{month}/{day}"
    return found


def batches(text: str) -> dict[str, str]:
    """Filing-batch anchors: 第九批, ninth batch and batch 9 are ``batch:9``."""
    found: dict[str, str] = {}
    for match in _ZH_BATCH.finditer(text):
        n = chinese_number(match.group(1))
        if n is not None:
            found[f"batch:{n}"] = f"batch {n}"
    for match in _EN_BATCH.finditer(text):
        raw = match.group(1) or match.group(2)
        n = int(raw) if raw else _ORDINALS.get(match.group(3).lower())
        if n is not None:
            found[f"batch:{n}"] = f"batch {n}"
    return found


def quarters(text: str) -> dict[str, str]:
    """Quarter anchors: Q1, first-quarter and 一季度 are ``quarter:1``."""
    found: dict[str, str] = {}
    for match in _QUARTER.finditer(text):
        raw = match.group(1) or match.group(2) or match.group(3)
        n = int(raw) if raw.isdigit() else _QUARTER_WORDS[raw.lower()]
        found[f"quarter:{n}"] = f"Q{n}"
    return found


def codes(text: str) -> dict[str, str]:
    """Product-code anchors (H20, 910C, MI308) and model versions (k1.5, Qwen2.5) not already
    known to the lexicon."""
    known = _known_codes()
    found: dict[str, str] = {}
    for match in _VERSION.finditer(text):
        found[f"code:{match.group(1).lower().replace('-', '')}"] = match.group(1)
    for match in _CODE.finditer(text):
        code = match.group(1)
        key = code.lower().replace("-", "")
        if key in known or key.isdigit():
            continue
        found[f"code:{key}"] = code
    return found


def title_tokens(title: str) -> frozenset[str]:
    """The words of an English title (stop words out) or the character pairs of a Chinese one,
    after normalisation (Traditional → Simplified, case folded, a " - Publisher" suffix cut)."""
    text = normalize(_PUBLISHER.sub("", title))
    chars = _CJK.findall(text)
    if len(chars) >= 4:
        return frozenset(a + b for a, b in itertools.pairwise(chars))
    return frozenset(w for w in _WORD.findall(text) if w not in STOPWORDS)


_BRIEFING = re.compile(r"^public briefing on\s+")
_CORRECTION_TITLE = re.compile(r";\s*corrections?$")


def _fr_title(title: str) -> str:
    text = normalize(title)
    text = _BRIEFING.sub("", text)
    text = _CORRECTION_TITLE.sub("", text)
    return re.sub(r"[^\w]+", " ", text).strip()


def _refers_by_title(title: str) -> bool:
    text = normalize(title)
    return bool(_BRIEFING.search(text) or _CORRECTION_TITLE.search(text))


def _day(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def read(item: EventItem) -> Signature:
    """The signature of an item (see the module docstring)."""
    fields = item.fields
    keys: set[str] = set()
    if item.url:
        keys.add(f"url:{item.url}")
        cac = _CAC_ID.search(item.url)
        if cac:
            keys.add(f"cac:c_{cac.group(1)}")
    when = item.published_at
    if number := fields.get("document_number"):
        keys.add(f"doc:{number.removeprefix('C1-').removeprefix('C2-')}")
        keys.add(f"frtitle:{_fr_title(item.title)}")
        effective = _day(fields.get("effective_on"))
        if effective is not None and effective < when.date():
            # A rule in force before it is published happened when it took effect.
            when = when - timedelta(days=(when.date() - effective).days)
    if original := fields.get("correction_of"):
        keys.add(f"doc:{original}")
    if citation := fields.get("citation"):
        keys.add(f"cite:{citation.strip()}")
    for rin in fields.get("regulation_id_numbers", []):
        keys.add(f"rin:{rin}")
    for docket in fields.get("docket_ids", []):
        keys.add(f"docket:{docket}")
    anchors: dict[str, float] = {}
    labels: dict[str, str] = {}

    titled: set[str] = set()

    def add(anchor: str, weight: float, label: str, in_title: bool) -> None:
        if in_title:
            titled.add(anchor)
        weight = weight if in_title else weight * SUMMARY_FACTOR
        if weight > anchors.get(anchor, 0.0):
            anchors[anchor], labels[anchor] = weight, label

    # A Federal Register title is a formal label ("Additions to the Entity List"); what the
    # document is about (who is added, which chips) is in its abstract, which counts in full.
    whole = bool(fields.get("document_number"))
    matcher, info = _concepts()
    for match in matcher.classify(item.title, item.summary):
        weight, label = info[match.slug]
        add(match.slug, weight, label, whole or any(t.field == "title" for t in match.terms))
    for text, in_title in ((item.title, True), (item.summary, whole)):
        for found, weight in (
            (numbers(text), NUMBER_WEIGHT),
            (batches(text), NUMBER_WEIGHT),
            (dates(text), DATE_WEIGHT),
            (quarters(text), DATE_WEIGHT),
            (codes(text), CODE_WEIGHT),
        ):
            for anchor, label in found.items():
                add(anchor, weight, label, in_title)
    for key in ("services_filed_total", "services_filed_new", "apps_registered_total"):
        value = fields.get(key)
        if isinstance(value, int) and value >= 10:
            add(f"num:{_scaled(value)}", NUMBER_WEIGHT, _label(value), True)
    language = item.language or ("zh" if len(_CJK.findall(item.title)) >= 4 else "en")
    return Signature(
        refers_by_title=bool(fields.get("document_number")) and _refers_by_title(item.title),
        when=when,
        language=language,
        keys=frozenset(keys),
        anchors=anchors,
        labels=labels,
        tokens=title_tokens(item.title),
        in_title=frozenset(titled),
        terms=glossary_terms(item.title, _glossary_language(language)),
        summary_terms=glossary_terms(item.summary, _glossary_language(language)),
    )


def _glossary_language(language: str) -> str:
    return "zh" if language.lower().startswith("zh") else "en"


# ---------------------------------------------------------------- deciding


def key_applies(key: str, gap: timedelta) -> bool:
    kind = key.split(":", 1)[0]
    return gap <= KEY_WINDOWS.get(kind, HARD_WINDOW)


def _key_reason(key: str) -> str:
    kind, _, value = key.partition(":")
    return KEY_REASONS.get(kind, "same {}").format(value.removeprefix("c_") if kind else value)


def required(gap: timedelta) -> float:
    """The hand-set score two items ``gap`` apart needed to be one event (a model feature)."""
    return THRESHOLD + PER_DAY * gap.total_seconds() / 86400


FEATURES: tuple[str, ...] = (
    "anchor_score",
    "anchor_score_item_title",
    "anchor_score_both_titles",
    "strong_shared",
    "named_in_both_titles",
    "generic_shared",
    "item_names_unshared",
    "event_names_unshared",
    "title_jaccard",
    "title_overlap_min",
    "title_tokens_shared",
    "same_language_member",
    "gap_days",
    "log_gap_hours",
    "item_is_document",
    "event_has_document",
    "both_documents",
    "log_event_size",
    "anchor_score_capped",
    "terms_across_titles",
    "terms_across_summaries",
    "terms_same_language",
    "hand_margin",
    "same_half_day",
)


def pair_features(signature: Signature, others: Sequence[Signature]) -> list[float]:
    """What the pair model reads of an item and a candidate event's members (``FEATURES``)."""
    profile: dict[str, float] = {}
    for other in others:
        for anchor, weight in other.anchors.items():
            profile[anchor] = max(profile.get(anchor, 0.0), weight)
    titled = set().union(*(o.in_title for o in others))
    anchors = signature.anchors
    shared = [a for a in anchors if a in profile]
    score = sum(min(anchors[a], profile[a]) for a in shared)
    in_item_title = sum(min(anchors[a], profile[a]) for a in shared if a in signature.in_title)
    in_both = sum(
        min(anchors[a], profile[a]) for a in shared if a in signature.in_title and a in titled
    )
    strong = sum(1 for a in shared if min(anchors[a], profile[a]) >= NAMED)
    both_named = sum(
        1 for a in shared if a in signature.in_title and a in titled and anchors[a] >= NAMED
    )
    generic = sum(1 for a in shared if anchors[a] <= GENERIC)
    item_only = sum(
        w for a, w in anchors.items() if a in signature.in_title and w >= NAMED and a not in profile
    )
    event_only = sum(
        profile[a] for a in titled if profile.get(a, 0.0) >= NAMED and a not in anchors
    )
    same = [o for o in others if o.language == signature.language and o.tokens and signature.tokens]
    tokens = signature.tokens
    jaccard = max((len(tokens & o.tokens) / len(tokens | o.tokens) for o in same), default=0.0)
    overlap = max(
        (len(tokens & o.tokens) / min(len(tokens), len(o.tokens)) for o in same), default=0.0
    )
    tokens_shared = max((len(tokens & o.tokens) for o in same), default=0)
    gap = min(abs(signature.when - o.when) for o in others)
    days = gap.total_seconds() / 86400
    item_doc = 1.0 if _is_document(signature) else 0.0
    event_doc = 1.0 if any(_is_document(o) for o in others) else 0.0
    across_titles = across_summaries = same_language = 0
    for other in others:
        if other.language != signature.language:
            across_titles = max(across_titles, len(signature.terms & other.terms))
            across_summaries = max(
                across_summaries,
                len(signature.terms & other.summary_terms)
                + len(signature.summary_terms & other.terms),
            )
        else:
            same_language = max(same_language, len(signature.terms & other.terms))
    hand = score + TITLE_BONUS * jaccard - required(gap)
    return [
        score,
        in_item_title,
        in_both,
        float(strong),
        float(both_named),
        float(generic),
        item_only,
        event_only,
        jaccard,
        overlap,
        float(tokens_shared),
        1.0 if same else 0.0,
        days,
        math.log1p(days * 24),
        item_doc,
        event_doc,
        item_doc * event_doc,
        math.log(len(others)),
        min(score, 6.0),
        float(across_titles),
        float(min(across_summaries, 6)),
        float(same_language),
        hand,
        1.0 if days < 0.5 else 0.0,
    ]


def default_model() -> PairModel:
    """The pair model shipped with the package."""
    return shipped_model(FEATURES)


Story = TypeVar("Story", int, str)  # an event id, or a labelled story while training


def reachable(
    signature: Signature, by_event: Mapping[Story, Sequence[Signature]]
) -> dict[Story, Sequence[Signature]]:
    """The events the stored lookup offers an item: those with a member it ``may_join``."""
    return {
        event: others
        for event, others in by_event.items()
        if any(may_join(signature, other) for other in others)
    }


def hard_join(
    signature: Signature, by_event: Mapping[Story, Sequence[Signature]]
) -> tuple[Story, str] | None:
    """The event with a member sharing a hard key within its window, and why. A key that
    names the act (its number, citation, URL, RIN, docket) beats a shared title; among
    events sharing only a title (a correction or briefing naming "Additions to the Entity
    List", of which BIS prints several), the nearest in time wins; then the oldest event."""
    best: tuple[tuple[bool, timedelta, Story], str] | None = None
    for event in sorted(by_event):
        for other in by_event[event]:
            gap = abs(signature.when - other.when)
            shared = sorted(
                k
                for k in signature.keys & other.keys
                if key_applies(k, gap)
                and not (k.startswith("frtitle:") and _distinct_documents(signature, other))
            )
            if not shared:
                continue
            named = [k for k in shared if not k.startswith("frtitle:")]
            rank = (not named, gap if not named else timedelta(0), event)
            if best is None or rank < best[0]:
                best = (rank, _key_reason((named or shared)[0]))
    return None if best is None else (best[0][2], best[1])


def _distinct_documents(one: Signature, other: Signature) -> bool:
    """Two numbered documents, each its own (see ``Signature.refers_by_title``)."""
    ours = {k for k in one.keys if k.startswith("doc:")}
    theirs = {k for k in other.keys if k.startswith("doc:")}
    return (
        bool(ours and theirs)
        and not ours & theirs
        and not (one.refers_by_title or other.refers_by_title)
    )


def judged(
    signature: Signature, by_event: Mapping[Story, Sequence[Signature]]
) -> list[tuple[Story, list[Signature]]]:
    """The events the pair model judges an item against (by id), each with the latest members
    it is compared with: those within ``join_window`` of the item."""
    out: list[tuple[Story, list[Signature]]] = []
    for event in sorted(by_event):
        others = latest(by_event[event])
        gap = min(abs(signature.when - o.when) for o in others)
        if gap <= join_window(signature, others):
            out.append((event, others))
    return out


def decide(
    signature: Signature, members: Iterable[Member], model: PairModel | None = None
) -> Decision:
    """Where an item with ``signature`` goes, given the members of candidate events."""
    model = model or default_model()
    by_event: dict[int, list[Signature]] = {}
    for member in members:
        by_event.setdefault(member.event_id, []).append(member.signature)
    hit = hard_join(signature, by_event)
    if hit is not None:
        return Decision(hit[0], hit[1], math.inf)
    # Another numbered document is another act, however alike the titles: the item is judged
    # against the other members of its event only (the pair model was trained on every pair).
    comparable = {
        event: kept
        for event, others in by_event.items()
        if (kept := [o for o in others if not _distinct_documents(signature, o)])
    }
    best: tuple[float, int, str] | None = None  # (probability, -event, reason)
    for event_id, others in judged(signature, comparable):
        probability = model.probability(pair_features(signature, others))
        if probability < model.threshold:
            continue
        if best is None or (probability, -event_id) > (best[0], best[1]):
            best = (probability, -event_id, _soft_reason(signature, others))
    if best is not None:
        return Decision(-best[1], best[2], round(best[0], 4))
    return Decision(None, "new event")


def latest(others: Sequence[Signature]) -> list[Signature]:
    """The ``MEMBERS_PER_EVENT`` latest members of an event (a story of hundreds of items is
    judged by its newest ones; hard keys are checked against every member given)."""
    return sorted(others, key=lambda o: o.when)[-MEMBERS_PER_EVENT:]


def _is_document(signature: Signature) -> bool:
    return any(key.startswith("doc:") for key in signature.keys)


def join_window(signature: Signature, others: Sequence[Signature]) -> timedelta:
    """How far apart an item and an event may be: a Federal Register document may come up to
    ``REGULATION_LAG`` after the announcement it publishes."""
    if _is_document(signature) and min(o.when for o in others) <= signature.when:
        return REGULATION_LAG
    return WINDOW


def _soft_reason(signature: Signature, others: Sequence[Signature]) -> str:
    """Why the model joined them, in words: the strongest anchors both name, a near-identical
    title, or the words they share across languages."""
    profile = set().union(*(o.anchors for o in others))
    named = sorted(
        (a for a in signature.anchors if a in profile and signature.anchors[a] > GENERIC),
        key=lambda a: (-signature.anchors[a], a),
    )[:MAX_REASON_ANCHORS]
    parts = [signature.labels.get(a, a) for a in named]
    tokens = signature.tokens
    if any(
        o.language == signature.language
        and o.tokens
        and tokens
        and len(tokens & o.tokens) / len(tokens | o.tokens) >= NEAR_TITLE
        for o in others
    ):
        parts.append("a near-identical title")
    if not parts:
        words = sorted(set().union(*(signature.terms & o.terms for o in others)))
        if words:
            return "similar wording (" + ", ".join(words[:MAX_REASON_ANCHORS]) + ")"
    return "shares " + ", ".join(parts) if parts else "similar title"


def window_keys(signature: Signature) -> tuple[list[str], list[str]]:
    """What to look candidates up by: (hard keys, soft keys: the anchors worth an index lookup
    and the title's terms). Generic anchors are left out: they would fetch half the window."""
    soft = sorted(a for a, w in signature.anchors.items() if w > GENERIC)
    return sorted(signature.keys), [*soft, *(f"term:{t}" for t in sorted(signature.terms))]


def may_join(signature: Signature, other: Signature) -> bool:
    """Whether ``other`` is a candidate for ``signature`` as the stored lookup finds them: a
    hard key within ``HARD_WINDOW`` or a soft key within ``REGULATION_LAG``."""
    gap = abs(signature.when - other.when)
    if gap <= HARD_WINDOW and signature.keys & other.keys:
        return True
    if gap > REGULATION_LAG:
        return False
    _, mine = window_keys(signature)
    _, theirs = window_keys(other)
    return not set(mine).isdisjoint(theirs)


def group(items: Sequence[EventItem], model: PairModel | None = None) -> list[tuple[int, Decision]]:
    """Assign ``items`` in order (oldest first) without a database: event numbers from 1.

    The same rules and the same candidates as the stored assignment (``may_join``);
    ``policywatch events``, the evaluation and training use it.
    """
    model = model or default_model()
    by_event: dict[int, list[Signature]] = {}
    out: list[tuple[int, Decision]] = []
    for item in items:
        signature = read(item)
        candidates = reachable(signature, by_event)
        decision = decide(
            signature,
            [Member(e, o) for e, others in candidates.items() for o in others],
            model,
        )
        event = decision.event_id if decision.event_id is not None else len(by_event) + 1
        by_event.setdefault(event, []).append(signature)
        out.append((event, decision))
    return out
