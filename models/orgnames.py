"""Organisation names: normalising them and deciding whether two name the same organisation. Pure.

Used for watched organisations (a watch against the names of a list change), for ``/entity``
lookups (a typed name against the screening list) and measured on a labelled set of name pairs
(``tests/data/entities/name_pairs.jsonl``; see ``tests/test_orgnames_eval.py``).

A name is read into an ``OrgName``:

- the text is normalised as watchlists are (``models.matching.normalize``: NFKC so full-width
  ``Ｚｈｉｐｕ`` is ``zhipu``, Traditional → Simplified Chinese with OpenCC, case folding); the
  "?" that stands for an apostrophe in BIS names (``Xi?an``) is an apostrophe;
- an address after the name (``"Inspur Group Co., Ltd., No. 1036 Langchao Road, …"``) is cut off;
- legal forms at the end are dropped (``Co., Ltd.``, ``Corporation Limited``, ``Inc.``,
  ``LLC``, ``GmbH``, ``有限公司``, ``有限责任公司``, ``股份有限公司``, ``股份公司``…), and a branch
  (``…上海分公司``: no legal personality of its own) is its company;
- a parenthesised place (``(Beijing)``, ``（上海）``) is kept as part of the name: it usually
  marks a subsidiary; other parenthesised text (``(CETC 13)``, ``(SMIC)``) is an alias;
- numbers are read, Chinese numerals included (``第十三研究所`` and ``13th`` are 13).

Two names are the same organisation (``same_org``) when, for some pair of their forms:

1. their numbers agree (CETC 13 is not CETC 14, nor CETC), and
2. their cores are equal ignoring spaces (``Deep Seek`` = ``DeepSeek``), or one typing slip
   apart where that is safe (a transposition, or one edit in a long name; never in an acronym
   or a two-character Chinese name: Zhipu is not Zhihu, 华为 not 华帝), or
3. one side is a bare brand and the other its principal company: the company's name without
   its leading city and generic words (Technology, Information, Intelligent, 科技, 信息, 集团…)
   is the brand (``Megvii`` = ``Beijing Megvii Technology Co., Ltd.``, ``华为`` =
   ``华为技术有限公司``), unless the company carries a parenthesised place the brand lacks; or
4. one side is an acronym of the other's words (``CETC``, ``YMTC``), or its parenthesised alias.

Chinese against Latin script is compared through a romanisation: generic words translated
(科技 → technology, 存储 → memory, 大学 → university, 哈尔滨 → Harbin), the rest in pinyin
(``智谱华章`` → zhipu huazhang). Brand names that are not pinyin (寒武纪 = Cambricon) are not
guessed: the organisations of the domain that users ask about most are listed with their
brands, legal, former and Chinese names (``models/data/known_orgs.json``: Chinese AI and chip
firms, CETC's numbered institutes by their descriptive names, universities and supercomputing
centres on the Entity List). Two names of known organisations are the same exactly when they
name the same one (CETC 14 is not the Nanjing Research Institute of Electronic Engineering,
which is CETC 28); a known name against an unknown one is compared by the rules above, and the
known organisation's other names count too, as written or romanised (``Yuezhi Anmian`` =
月之暗面 = Moonshot AI), never by the looser rules (so ``Chengdu Zhipu Huazhang`` is not Zhipu
AI). Anything else, list as aliases of a watched organisation.

``similarity`` is a graded score (0–100, rapidfuzz) for ranking the closest names when nothing
is the same.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from pypinyin import lazy_pinyin
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from models.matching import normalize
from models.numbers import chinese_number

# ---------------------------------------------------------------- vocabulary

# Legal forms, as token sequences, dropped at the end of a Latin-script name (longest first).
_LEGAL_EN: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            tuple(form.split())
            for form in (
                "limited liability company",
                "joint stock company",
                "public joint stock company",
                "company limited",
                "corporation limited",
                "co limited",
                "co ltd",
                "co",
                "ltd",
                "limited",
                "inc",
                "incorporated",
                "corp",
                "corporation",
                "company",
                "llc",
                "plc",
                "gmbh",
                "ag",
                "sa",
                "s a",
                "bv",
                "nv",
                "jsc",
                "pjsc",
                "ojsc",
                "cjsc",
                "ooo",
                "ltda",
                "srl",
                "spa",
                "kk",
            )
        ),
        key=len,
        reverse=True,
    )
)
_LEGAL_ZH = ("股份有限公司", "有限责任公司", "有限公司", "股份公司", "责任公司", "公司")

# Generic words: a brand's principal company is the brand plus these (and a city).
_GENERIC_EN = frozenset(
    {
        "technology",
        "technologies",
        "tech",
        "information",
        "intelligent",
        "intelligence",
        "ai",
        "digital",
        "group",
        "electronics",
        "electronic",
        "semiconductor",
        "microelectronics",
    }
)
_GENERIC_ZH = (
    "人工智能",
    "信息技术",
    "微电子",
    "半导体",
    "科技",
    "技术",
    "信息",
    "智能",
    "电子",
    "数字",
    "集团",
)

# Places that lead a company's name (its registration city) or sit in parentheses after it.
_PLACES: dict[str, str] = {
    "北京": "beijing",
    "上海": "shanghai",
    "天津": "tianjin",
    "重庆": "chongqing",
    "深圳": "shenzhen",
    "广州": "guangzhou",
    "杭州": "hangzhou",
    "南京": "nanjing",
    "苏州": "suzhou",
    "无锡": "wuxi",
    "成都": "chengdu",
    "武汉": "wuhan",
    "合肥": "hefei",
    "西安": "xian",
    "长沙": "changsha",
    "济南": "jinan",
    "青岛": "qingdao",
    "厦门": "xiamen",
    "福州": "fuzhou",
    "郑州": "zhengzhou",
    "沈阳": "shenyang",
    "大连": "dalian",
    "哈尔滨": "harbin",
    "长春": "changchun",
    "昆明": "kunming",
    "南昌": "nanchang",
    "石家庄": "shijiazhuang",
    "太原": "taiyuan",
    "珠海": "zhuhai",
    "东莞": "dongguan",
    "宁波": "ningbo",
    "昆山": "kunshan",
    "香港": "hong kong",
    "澳门": "macau",
    "河北": "hebei",
    "江苏": "jiangsu",
    "浙江": "zhejiang",
    "广东": "guangdong",
    "四川": "sichuan",
    "湖北": "hubei",
    "湖南": "hunan",
    "安徽": "anhui",
    "山东": "shandong",
    "福建": "fujian",
    "陕西": "shaanxi",
}
_PLACES_EN = frozenset(_PLACES.values()) | {"xi'an", "hongkong", "hk", "prc", "china"}

# Chinese generic words romanised by meaning rather than by sound (longest match first).
_GLOSSARY: dict[str, str] = {
    **_PLACES,
    "人工智能": "artificial intelligence",
    "集成电路": "integrated circuit",
    "信息技术": "information technology",
    "研究院": "research institute",
    "研究所": "research institute",
    "实验室": "laboratory",
    "微电子": "microelectronics",
    "半导体": "semiconductor",
    "科技": "technology",
    "技术": "technology",
    "信息": "information",
    "智能": "intelligent",
    "电子": "electronics",
    "数字": "digital",
    "集团": "group",
    "存储": "memory",
    "大学": "university",
    "学院": "institute",
    "工程": "engineering",
    "国际": "international",
    "产业": "industry",
    "工业": "industry",
    "设备": "equipment",
    "制造": "manufacturing",
    "中国": "china",
    "国防": "national defense",
    "航天": "aerospace",
    "研究": "research",
    "计算": "computing",
    "控股": "holding",
    "投资": "investment",
}
_GLOSSARY_KEYS = tuple(sorted(_GLOSSARY, key=len, reverse=True))

_STOP = frozenset({"of", "and", "the", "for", "&"})
_ACRONYM_OPTIONAL = frozenset(
    {"group", "co", "company", "corporation", "corp", "inc", "ltd", "limited", "llc", "china"}
)

_ZH_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百]+(?=所|研究|院|厂|局|号|\b|$)")
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")
_NUMBER = re.compile(r"\d+")
_PAREN = re.compile(r"\(([^()]*)\)")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\W_]+(?:'[^\W_]+)?")
_BRANCH = re.compile(r"(?:" + "|".join(_PLACES) + r")?分公司$")
_MOJIBAKE_APOSTROPHE = re.compile(r"(?<=[A-Za-z])\?(?=[a-z])")
_FULL_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")
_ZH_ABBREVIATIONS = {"科学技术": "科技"}
_NUMBERED_INSTITUTE = re.compile(r"第?\s*(\d+)\s*(?:研究)?所")


def _chinese_numbers(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        value = chinese_number(match.group(0))  # 十三 → 13, 一百零五 → 105
        return f" {value} " if value else match.group(0)

    return _ZH_NUMBER.sub(repl, text)


# ---------------------------------------------------------------- the parsed name


@dataclass(frozen=True, slots=True)
class OrgName:
    """A name as compared: its core tokens, what was stripped, and its aliases."""

    text: str  # as given
    tokens: tuple[str, ...]  # the core, legal forms dropped (Chinese runs are one token)
    legal_form: bool  # a legal form was dropped
    place_in_parens: str | None  # "(Beijing)": usually a subsidiary's mark
    numbers: frozenset[int]
    aliases: tuple[str, ...]  # parenthesised non-place text: "(CETC 13)"
    cjk: bool  # written in Chinese characters
    words: tuple[str, ...] = ()  # every word, legal forms kept, hyphenated words whole

    @property
    def compact(self) -> str:
        return "".join(self.tokens)


def head_of(text: str) -> str:
    """The name before an address: ``"Inspur Group Co., Ltd., No. 1036 …"`` → its first part."""
    parts = [p.strip() for p in re.split(r",(?![^()]*\))", text)]
    kept = [parts[0]]
    for part in parts[1:]:
        words = normalize(part).replace(".", " ").split()
        if words and tuple(words) in _LEGAL_EN_SET:
            kept.append(part)
            continue
        break
    return ", ".join(kept)


_LEGAL_EN_SET = frozenset(_LEGAL_EN)


@lru_cache(maxsize=65536)
def parse_org(text: str) -> OrgName:
    """Read a name (see the module docstring). Never raises; an empty name has no tokens."""
    raw = _MOJIBAKE_APOSTROPHE.sub("'", text)
    raw = unicodedata.normalize("NFKC", raw)
    raw = head_of(raw)
    norm = normalize(raw)
    norm = _BRANCH.sub("", norm.strip()) if _CJK.search(norm) else norm
    aliases: list[str] = []
    place: str | None = None
    for inner in _PAREN.findall(norm):
        value = inner.strip()
        key = _PLACES.get(value, value)
        if key in _PLACES_EN:
            place = key
        elif value and value not in {"group", "集团"}:
            aliases.extend(a.strip() for a in re.split(r"[/;]", value) if a.strip())
    base = _PAREN.sub(" ", norm)
    words = tuple(
        _FULL_WORD.findall(_PAREN.sub(" ", unicodedata.normalize("NFKC", raw).casefold()))
    )
    for long, short in _ZH_ABBREVIATIONS.items():
        base = base.replace(long, short)
    base = _chinese_numbers(base)
    base = _NUMBERED_INSTITUTE.sub(r" \1 研究所", base)  # 第13研究所 = 13所
    base = _ORDINAL.sub(r"\1", base)
    numbers = frozenset(int(n) for n in _NUMBER.findall(base))
    tokens = [t for t in _WORD.findall(base.replace("'", "")) if t]
    legal = False
    changed = True
    while changed and tokens:
        changed = False
        last = tokens[-1]
        if _CJK.fullmatch(last[-1]):
            for suffix in _LEGAL_ZH:
                if last.endswith(suffix) and len(last) > len(suffix):
                    tokens[-1] = last[: -len(suffix)]
                    legal = changed = True
                    break
            continue
        for form in _LEGAL_EN:
            if len(tokens) > len(form) and tuple(tokens[-len(form) :]) == form:
                del tokens[-len(form) :]
                legal = changed = True
                break
    if place is not None:
        tokens.append(place)
    return OrgName(
        text=text,
        tokens=tuple(tokens),
        legal_form=legal,
        place_in_parens=place,
        numbers=numbers,
        aliases=tuple(aliases),
        cjk=bool(_CJK.search(base)),
        words=words,
    )


# ---------------------------------------------------------------- forms for comparison


def _strip_generic_zh(token: str) -> str:
    for place in sorted(_PLACES, key=len, reverse=True):
        if token.startswith(place) and len(token) > len(place) + 1:
            token = token[len(place) :].removeprefix("市")
            break
    for word in _GENERIC_ZH:
        stripped = token.replace(word, "")
        if len(stripped) >= 2:
            token = stripped
    return token


def brand_core(name: OrgName) -> str:
    """The name without its leading place and generic words: what a brand would be."""
    tokens = list(name.tokens)
    if name.place_in_parens is not None:
        tokens = tokens[:-1]
    if not name.cjk:
        while len(tokens) > 1 and tokens[0] in _PLACES_EN:
            tokens.pop(0)
        kept = [t for t in tokens if t not in _GENERIC_EN]
        return "".join(kept or tokens)
    return "".join(_strip_generic_zh(t) if _CJK.search(t) else t for t in tokens)


def romanised(name: OrgName) -> OrgName:
    """A Chinese name in Latin script: generic words by meaning, the rest in pinyin."""
    if not name.cjk:
        return name
    words: list[str] = []
    for token in name.tokens:
        if not _CJK.search(token):
            words.append(token)
            continue
        i = 0
        run: list[str] = []
        while i < len(token):
            key = next((k for k in _GLOSSARY_KEYS if token.startswith(k, i)), None)
            if key is None:
                run.append(token[i])
                i += 1
                continue
            if run:
                words.append("".join(lazy_pinyin("".join(run))))
                run = []
            words.extend(_GLOSSARY[key].split())
            i += len(key)
        if run:
            words.append("".join(lazy_pinyin("".join(run))))
    place = name.place_in_parens
    if place is not None and words and words[-1] != place:
        words.append(place)
    return OrgName(
        text=name.text,
        tokens=tuple(words),
        legal_form=name.legal_form,
        place_in_parens=place,
        numbers=name.numbers,
        aliases=name.aliases,
        cjk=False,
    )


# ---------------------------------------------------------------- decisions


def _typo_close(a: str, b: str, *, cjk: bool) -> bool:
    """One typing slip apart, where that is safe (see the module docstring)."""
    if a == b:
        return True
    shortest = min(len(a), len(b))
    if cjk:
        if shortest < 3 or len(a) != len(b):
            return False
        slips = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
        # one character typed for another that sounds alike (an input-method slip)
        return len(slips) == 1 and _sounds_alike(*slips[0])
    if shortest < 5:
        return False
    distance = OSA.distance(a, b)
    if distance == 0:
        return True
    if shortest >= 14:
        return distance <= 2
    if shortest >= 7:
        return distance <= 1
    # 5-6 letters: a transposition or a dropped letter, never a different letter
    return distance == 1 and (len(a) != len(b) or sorted(a) == sorted(b))


def _sounds_alike(a: str, b: str) -> bool:
    """Two Chinese characters whose toneless pinyin is equal or one letter apart."""
    pa, pb = lazy_pinyin(a)[0], lazy_pinyin(b)[0]
    return pa == pb or (len(pa) == len(pb) and OSA.distance(pa, pb) <= 1)


def _acronym_of(acronym: str, words: Sequence[str]) -> bool:
    """Is ``acronym`` the initials of ``words`` (some generic words may be skipped)?"""
    words = [w for w in words if w not in _STOP]

    @cache
    def walk(i: int, j: int) -> bool:
        if i == len(acronym):
            return all(w in _ACRONYM_OPTIONAL or w.isdigit() for w in words[j:])
        if j == len(words):
            return False
        word = words[j]
        if word[0] == acronym[i] and walk(i + 1, j + 1):
            return True
        return (word in _ACRONYM_OPTIONAL or word.isdigit()) and walk(i, j + 1)

    return walk(0, 0)


def _acronym(name: OrgName) -> str | None:
    """The name as an acronym (``YMTC``, ``C.E.T.C.``), or None."""
    if name.cjk or len(name.tokens) > 2:
        return None
    letters = [t for t in name.tokens if not t.isdigit()]
    if len(letters) != 1:
        joined = "".join(letters)
        if not all(len(t) == 1 for t in letters):
            return None
        letters = [joined]
    word = letters[0]
    original = re.sub(r"[^A-Za-z]", "", name.text)
    looks_like = original.isupper() or all(len(t) == 1 for t in name.tokens if not t.isdigit())
    return word if 2 <= len(word) <= 6 and looks_like else None


def _acronym_match(a: OrgName, b: OrgName) -> bool:
    acronym = _acronym(a)
    if acronym is None or b.cjk:
        return False
    if _acronym(b) is not None:  # two acronyms: equal, or one transposition
        other = _acronym(b) or ""
        swapped = OSA.distance(acronym, other) == 1 and sorted(acronym) == sorted(other)
        return len(acronym) >= 4 and len(acronym) == len(other) and swapped
    return _acronym_of(acronym, [w.replace("'", "") for w in b.words])


def _same_form(a: OrgName, b: OrgName) -> bool:
    if not a.tokens or not b.tokens:
        return False
    if a.numbers != b.numbers:
        return False
    if a.cjk != b.cjk:
        a, b = romanised(a), romanised(b)
    cjk = a.cjk and b.cjk
    if a.compact == b.compact:
        return True
    if a.place_in_parens == b.place_in_parens and _typo_close(a.compact, b.compact, cjk=cjk):
        return _acronym(a) is None and _acronym(b) is None
    if _acronym_match(a, b) or _acronym_match(b, a):
        return True
    for brand, company in ((a, b), (b, a)):
        if brand.legal_form or brand.place_in_parens != company.place_in_parens:
            continue
        if len(brand.tokens) > 3 or _acronym(brand) is not None:
            continue
        core = brand_core(company)
        mine = brand_core(brand)
        if len(mine) >= 2 and (mine == core or _typo_close(mine, core, cjk=cjk)):
            return True
    return False


def forms(text: str) -> list[OrgName]:
    """A name and its parenthesised aliases, parsed."""
    name = parse_org(text)
    found = [name]
    for alias in name.aliases:
        parsed = parse_org(alias)
        if parsed.tokens:
            found.append(parsed)
    return found


KNOWN_FILE = "known_orgs.json"

FormKey = tuple[bool, str, frozenset[int]]  # (written in Chinese, core, numbers)


@lru_cache(maxsize=65536)
def _latin(name: OrgName) -> str:
    """A form's core in Latin script (a Chinese one romanised), for comparing across scripts."""
    return romanised(name).compact


class KnownOrgs:
    """Organisations known by several names (brands, legal, former, Chinese): the shipped list
    (``models/data/known_orgs.json``, ``shipped_known``) and what editors add from the chat
    (``with_added``). A name's forms belong to one organisation only: a form two share is
    left out, so it bridges neither."""

    def __init__(self, organisations: Iterable[Iterable[str]]) -> None:
        self.names: tuple[tuple[str, ...], ...] = tuple(
            tuple(dict.fromkeys(n.strip() for n in names if n.strip())) for names in organisations
        )
        owners: dict[str, set[int]] = {}
        for position, names in enumerate(self.names):
            for name in names:
                for form in forms(name):
                    if len(form.compact) >= 2:
                        owners.setdefault(form.compact, set()).add(position)
        self._keys = {key: next(iter(found)) for key, found in owners.items() if len(found) == 1}
        self._forms: tuple[tuple[frozenset[FormKey], frozenset[FormKey]], ...] | None = None

    def known_as(self, text: str) -> frozenset[int]:
        """The organisations ``text`` names by one of their names as written there (legal
        form, spacing, case and script variants aside), by position in ``names``."""
        keys = self._keys
        return frozenset(keys[f.compact] for f in forms(text) if f.compact in keys)

    def names_of(self, text: str) -> tuple[str, ...]:
        """The other names of the organisations ``text`` names (none when it names none)."""
        return tuple(
            name
            for position in sorted(self.known_as(text))
            for name in self.names[position]
            if name != text
        )

    def with_added(self, groups: Iterable[Iterable[str]]) -> KnownOrgs:
        """These organisations and ``groups`` of names (editors' additions, in order): a group
        that shares a name with one organisation (or an earlier group) adds its other names to
        it; one sharing none is an organisation of its own; one naming two is left out."""
        merged = [list(names) for names in self.names]
        owner = dict(self._keys)
        for group in groups:
            names = list(group)
            keys = {f.compact for name in names for f in forms(name) if len(f.compact) >= 2}
            owners = {owner[k] for k in keys if k in owner}
            if len(owners) > 1:  # names of two organisations (the chat refuses it; a later
                continue  # shipped list may make it so): it would blur both, so it is left out
            if owners:
                position = owners.pop()
                merged[position].extend(names)
            else:
                position = len(merged)
                merged.append(names)
            for key in keys:
                owner.setdefault(key, position)
        return KnownOrgs(merged)

    def without(self, dropped: Iterable[str]) -> KnownOrgs:
        """These organisations without the ``dropped`` names (legal form, spacing, case and
        script variants aside): an editor said such a name is not the organisation's."""
        keys = {f.compact for name in dropped for f in forms(name) if len(f.compact) >= 2}
        if not keys:
            return self
        return KnownOrgs(
            [n for n in names if not {f.compact for f in forms(n)} & keys] for names in self.names
        )

    def owners(self, names: Iterable[str]) -> frozenset[int]:
        """The organisations any of ``names`` names."""
        return frozenset(p for name in names for p in self.known_as(name))

    def _table(self) -> tuple[tuple[frozenset[FormKey], frozenset[FormKey]], ...]:
        """Per organisation: its names' forms as written, and in Latin script (read once)."""
        if self._forms is None:
            out = []
            for names in self.names:
                found = [f for name in names for f in forms(name) if f.tokens]
                written = frozenset((f.cjk, f.compact, f.numbers) for f in found)
                latin = frozenset((f.cjk, _latin(f), f.numbers) for f in found)
                out.append((written, latin))
            self._forms = tuple(out)
        return self._forms

    def another_name_of(self, text: str, positions: frozenset[int]) -> bool:
        """Is ``text`` one of the names of these organisations, as written (legal form,
        spacing and case aside) or, across scripts, romanised?"""
        table = self._table()
        for f in forms(text):
            if not f.tokens:
                continue
            same_script = (f.cjk, f.compact, f.numbers)
            other_script = (not f.cjk, _latin(f), f.numbers)
            for position in positions:
                written, latin = table[position]
                if same_script in written or other_script in latin:
                    return True
        return False


@cache
def shipped_known() -> KnownOrgs:
    """The organisations of ``models/data/known_orgs.json`` (read once)."""
    raw = json.loads(resources.files("models.data").joinpath(KNOWN_FILE).read_text("utf-8"))
    return KnownOrgs(raw["organisations"])


@dataclass(frozen=True, slots=True)
class EditorsNames:
    """What editors said from the chat (``/names``): groups of names of one organisation each
    (``add``), oldest first, and names that are no organisation's (``drop``)."""

    groups: tuple[tuple[str, ...], ...] = ()
    dropped: tuple[str, ...] = ()

    def added(self) -> frozenset[str]:
        return frozenset(n for group in self.groups for n in group)

    def dropped_among(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` an editor dropped (legal form, spacing, case and script aside)."""
        keys = {f.compact for name in self.dropped for f in forms(name) if len(f.compact) >= 2}
        return [n for n in names if {f.compact for f in forms(n)} & keys]


@lru_cache(maxsize=8)
def known_with(edits: EditorsNames) -> KnownOrgs:
    """The shipped organisations with editors' groups of names added (``with_added``) and
    their dropped names taken out (``without``), built once per set of edits."""
    known = shipped_known().with_added(edits.groups) if edits.groups else shipped_known()
    return known.without(edits.dropped) if edits.dropped else known


def same_org(a: str, b: str, known: KnownOrgs | None = None) -> bool:
    """Do ``a`` and ``b`` name the same organisation? (the rules of the module docstring;
    ``known``: the organisations known by several names, the shipped list when not given)"""
    known = known or shipped_known()
    known_a, known_b = known.known_as(a), known.known_as(b)
    if known_a and known_b:
        return bool(known_a & known_b)
    if any(_same_form(x, y) for x in forms(a) for y in forms(b)):
        return True
    if not known_a and not known_b:
        return False
    # one side is a known organisation: the other may be another of its names, as written or
    # romanised (Longxin Zhongke = 龙芯中科 = Loongson); no looser rule, so a subsidiary in
    # another city does not become its parent through the parent's brand
    if known_a:
        return known.another_name_of(b, known_a)
    return known.another_name_of(a, known_b)


def same_as_any(
    names: Iterable[str], others: Iterable[str], known: KnownOrgs | None = None
) -> tuple[str, str] | None:
    """The first pair (one of ``names``, one of ``others``) naming the same organisation."""
    others = list(others)
    known = known or shipped_known()
    for name in names:
        for other in others:
            if same_org(name, other, known):
                return name, other
    return None


def similarity(a: str, b: str) -> float:
    """How alike two names are, 0–100, for ranking "closest names" (not a decision)."""
    best = 0.0
    for x in forms(a):
        for y in forms(b):
            if x.cjk != y.cjk:
                x, y = romanised(x), romanised(y)
            left, right = " ".join(x.tokens), " ".join(y.tokens)
            if left and right:
                best = max(best, fuzz.WRatio(left, right))
    return best


def text_terms(name: str) -> tuple[str, ...]:
    """What to look for in running text for a watched name: the name as written and, when it
    had one, without its legal form (``Beijing Zhipu Huazhang Technology``)."""
    parsed = parse_org(name)
    terms = [name.strip()]
    if parsed.legal_form:
        core = " ".join(t for t in parsed.tokens if t != parsed.place_in_parens)
        if parsed.cjk:
            core = core.replace(" ", "")
        if len(core) >= 2:
            terms.append(core)
    return tuple(dict.fromkeys(t for t in terms if t))
