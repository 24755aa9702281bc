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

``decide`` compares the new item with the members of candidate events, in this order:

1. A shared hard key joins the item to that event, whatever its wording ("same FR document
   2025-00636"). Keys that several happenings share over time (a RIN, a docket, a FR title)
   count only within ``KEY_WINDOWS``.
2. Otherwise the item scores against each member published within ``WINDOW`` of it: the
   weights of the anchors both name, plus ``TITLE_BONUS`` times the overlap of their titles
   (one language only). The required score grows with the time between them, so two stories on
   the same beat weeks apart (an H20 licence in April, H20 sales resuming in July) stay apart.
   The best event at or above ``THRESHOLD`` wins ("shares Nvidia, H20, 5.5 billion").
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

from models.fields import ItemFields, fields_from_json
from models.lexicon import CONCEPTS, GENERIC, TOPIC
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

    def to_json(self) -> dict[str, object]:
        return {
            "when": self.when.isoformat(),
            "language": self.language,
            "keys": sorted(self.keys),
            "anchors": {a: [w, self.labels.get(a, a)] for a, w in sorted(self.anchors.items())},
            "tokens": sorted(self.tokens),
            "in_title": sorted(self.in_title),
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
        return cls(
            when=datetime.fromisoformat(str(raw["when"])),
            language=str(raw.get("language") or ""),
            keys=frozenset(str(k) for k in keys) if isinstance(keys, list) else frozenset(),
            anchors=anchors,
            labels=labels,
            tokens=frozenset(str(t) for t in tokens) if isinstance(tokens, list) else frozenset(),
            in_title=(
                frozenset(str(t) for t in in_title) if isinstance(in_title, list) else frozenset()
            ),
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


def _fr_title(title: str) -> str:
    text = normalize(title)
    text = re.sub(r"^public briefing on\s+", "", text)
    text = re.sub(r";\s*corrections?$", "", text)
    return re.sub(r"[^\w]+", " ", text).strip()


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
        when=when,
        language=language,
        keys=frozenset(keys),
        anchors=anchors,
        labels=labels,
        tokens=title_tokens(item.title),
        in_title=frozenset(titled),
    )


# ---------------------------------------------------------------- deciding


def _key_applies(key: str, gap: timedelta) -> bool:
    kind = key.split(":", 1)[0]
    return gap <= KEY_WINDOWS.get(kind, HARD_WINDOW)


def _key_reason(key: str) -> str:
    kind, _, value = key.partition(":")
    return KEY_REASONS.get(kind, "same {}").format(value.removeprefix("c_") if kind else value)


def similarity(a: Signature, b: Signature) -> tuple[float, list[str]]:
    """How strongly two signatures say "the same happening", and the anchors both name."""
    shared = [x for x in a.anchors if x in b.anchors]
    score = sum(min(a.anchors[x], b.anchors[x]) for x in shared)
    if a.language == b.language and a.tokens and b.tokens:
        overlap = len(a.tokens & b.tokens) / len(a.tokens | b.tokens)
        score += TITLE_BONUS * overlap
    return score, shared


def required(gap: timedelta) -> float:
    """The score two items ``gap`` apart need to be one event."""
    return THRESHOLD + PER_DAY * gap.total_seconds() / 86400


def decide(signature: Signature, members: Iterable[Member]) -> Decision:
    """Where an item with ``signature`` goes, given the members of candidate events."""
    by_event: dict[int, list[Signature]] = {}
    for member in members:
        by_event.setdefault(member.event_id, []).append(member.signature)
    best: tuple[float, int, float, str] | None = None  # (margin, -event, score, reason)
    for event_id in sorted(by_event):
        others = by_event[event_id]
        for other in sorted(others, key=lambda o: o.when):
            gap = abs(signature.when - other.when)
            shared_keys = sorted(k for k in signature.keys & other.keys if _key_applies(k, gap))
            if shared_keys:
                return Decision(event_id, _key_reason(shared_keys[0]), math.inf)
        gap = min(abs(signature.when - o.when) for o in others)
        if gap > _window(signature, others):
            continue
        score, shared, title = _event_similarity(signature, others)
        margin = score - required(gap)
        if margin < 0 or not (title >= NEAR_TITLE or _named_in_title(signature, shared)):
            continue
        if best is None or (margin, -event_id) > (best[0], best[1]):
            best = (margin, -event_id, score, _soft_reason(signature, shared, title))
    if best is not None:
        return Decision(-best[1], best[3], best[2])
    return Decision(None, "new event")


def _named_in_title(signature: Signature, shared: Sequence[str]) -> bool:
    """Does the item's title itself name something the event names (not just its summary)?"""
    return any(a in signature.in_title and signature.anchors[a] >= TOPIC for a in shared)


def _is_document(signature: Signature) -> bool:
    return any(key.startswith("doc:") for key in signature.keys)


def _window(signature: Signature, others: Sequence[Signature]) -> timedelta:
    """How far apart an item and an event may be: a Federal Register document may come up to
    ``REGULATION_LAG`` after the announcement it publishes."""
    if _is_document(signature) and min(o.when for o in others) <= signature.when:
        return REGULATION_LAG
    return WINDOW


def _event_similarity(
    signature: Signature, others: Sequence[Signature]
) -> tuple[float, list[str], float]:
    """Score against an event: the anchors the item shares with any of its members, plus the
    closest title in the item's language. Returns (score, shared anchors, title overlap)."""
    profile: dict[str, float] = {}
    for other in others:
        for anchor, weight in other.anchors.items():
            profile[anchor] = max(profile.get(anchor, 0.0), weight)
    shared = [a for a in signature.anchors if a in profile]
    score = sum(min(signature.anchors[a], profile[a]) for a in shared)
    title = max(
        (
            len(signature.tokens & o.tokens) / len(signature.tokens | o.tokens)
            for o in others
            if o.language == signature.language and o.tokens and signature.tokens
        ),
        default=0.0,
    )
    return score + TITLE_BONUS * title, shared, title


def _soft_reason(signature: Signature, shared: Sequence[str], title: float) -> str:
    named = sorted(
        (x for x in shared if signature.anchors[x] > GENERIC),
        key=lambda x: (-signature.anchors[x], x),
    )[:MAX_REASON_ANCHORS]
    parts = [signature.labels.get(x, x) for x in named]
    if title >= NEAR_TITLE:
        parts.append("a near-identical title")
    return "shares " + ", ".join(parts) if parts else "similar title"


def window_keys(signature: Signature) -> tuple[list[str], list[str]]:
    """What to look candidates up by: (hard keys, anchors worth an index lookup). Generic
    anchors are left out of lookups: they would fetch half the window."""
    soft = sorted(a for a, w in signature.anchors.items() if w > GENERIC)
    return sorted(signature.keys), soft


def group(items: Sequence[EventItem]) -> list[tuple[int, Decision]]:
    """Assign ``items`` in order (oldest first) without a database: event numbers from 1.

    The same rules as the stored assignment; ``policywatch events`` and the evaluation use it.
    """
    members: list[Member] = []
    out: list[tuple[int, Decision]] = []
    next_id = 1
    for item in items:
        signature = read(item)
        low, high = signature.when - HARD_WINDOW, signature.when + HARD_WINDOW
        candidates = [m for m in members if low <= m.signature.when <= high]
        decision = decide(signature, candidates)
        event = decision.event_id
        if event is None:
            event, next_id = next_id, next_id + 1
        members.append(Member(event, signature))
        out.append((event, decision))
    return out
