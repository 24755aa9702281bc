"""The watchlist matching engine: a small rule language, one Aho-Corasick automaton, pure.

Rule language
=============

A watchlist entry is one *rule*. The same text is stored in the file, typed in the chat and
written to the audit log.

Terms
    ``"Entity List"``   a quoted phrase (``\\"`` and ``\\\\`` escape; “curly” quotes work too).
    ``Entity List``     a run of bare words with no operator between them is ONE phrase, so
                        ``/watch add export-controls Entity List`` means the phrase.
    ``=BIS``            case-sensitive: ``=`` before a term (bare or quoted) matches only that
                        exact capitalisation (``BIS`` the bureau, not ``bis`` the word).
    ``chip*``           a trailing ``*`` matches any word that starts with the term
                        (``chip*`` finds chips, chipmaker). Only at the end of a term;
                        ``"export control*"`` works too (``\\*`` there is a literal star).
    ``title:"..."``     field scope: ``title:`` or ``summary:`` before a term or a
                        parenthesised group restricts it to that field (default: both).

Operators (UPPER case only; lower-case ``and``, ``or``, ``not``, ``near`` are words)
    ``a OR b``          any of.
    ``a AND b``         all of.
    ``a NOT b`` or ``a AND NOT b``   ``a`` unless ``b`` (an exclusion; ``NOT`` is also unary).
    ``a NEAR/n b``      both, at most ``n`` tokens apart (in either order). A token is a Latin
                        word or a single CJK character, so ``NEAR/5`` is five words in English
                        and five characters in Chinese. Operands are terms or OR-groups of terms.
    ``( ... )``         grouping. Precedence, loosest first: OR, AND/NOT, NEAR.

Scope entries
    ``SCOPE: <rule>``   not a rule of its own (it never matches an item): the theme's scope for
                        the learned model, which may match the theme alone only in an item some
                        scope entry of the theme finds (``Matcher.excluded``). "SCOPE: China OR
                        chip* OR ..." keeps BIS's Russia-only listings out of export controls
                        however much they read like them. Items the theme's rules match are not
                        affected: the editor wrote those too.

Two terms side by side without an operator (``"华为" "Huawei"``) are an error, not a guess.
A rule must be able to match on its own (``NOT x`` alone is refused), is at most
``MAX_RULE_LENGTH`` characters, nests at most ``MAX_DEPTH`` parentheses deep and holds at most
``MAX_TERMS`` terms; ``NEAR/n`` takes ``1 <= n <= MAX_NEAR``. There are no regular expressions.

Matching
========

Text and terms are normalised the same way: Unicode NFKC (full-width ``ＡＩ`` → ``AI``), runs of
white space and dashes become one space, curly apostrophes become ``'``,
Traditional → Simplified Chinese (OpenCC ``t2s``, so
``網信辦`` matches ``网信办``), then case folding. Regional vocabulary is not translated
(``人工智慧`` stays ``人工智慧``): list both forms as aliases. One automaton holds every term of
every theme; a term that begins or ends with a Latin letter or digit must sit on a word
boundary there (``AI`` does not match inside ``said``; ``chip`` not inside ``chipset``), except
that a term ending in a Latin letter also matches its plural (``export control`` matches
``export controls``, ``executive order`` matches ``executive orders``; case-sensitive ``=`` terms
match only as written); Chinese terms need no boundary. Rules are then evaluated over the match
positions, without re-scanning.

A theme matches when any of its rules does. Its score is the number of distinct matched terms,
where a term found in the title counts 2 and one found only in the summary counts 1.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import ahocorasick
import opencc

from models.errors import RuleError

MAX_RULE_LENGTH = 500
MAX_DEPTH = 8
MAX_TERMS = 64
MAX_NEAR = 100
FIELDS = ("title", "summary")
TITLE_WEIGHT = 2.0
SUMMARY_WEIGHT = 1.0

# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class MatchedTerm:
    """A watchlist term (as written in its rule) found in one field of an item."""

    term: str
    field: str

    def to_json(self) -> dict[str, str]:
        return {"term": self.term, "field": self.field}


@dataclass(frozen=True, slots=True)
class ThemeMatch:
    """A theme an item matched: the terms that matched, where, and a score (higher = stronger).

    ``rules`` holds the texts of the rules that fired, for the explanation. ``layer`` says
    which layer matched: the watchlist ``rules``, the learned ``model`` (``models.learned``),
    or ``both``; ``probability`` is the model's (when it ran) and ``similar_to`` the labelled
    headline that explains a match of the model alone.
    """

    slug: str
    score: float
    terms: tuple[MatchedTerm, ...]
    rules: tuple[str, ...] = ()
    layer: str = "rules"
    probability: float | None = None
    similar_to: str | None = None
    model_version: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "slug": self.slug,
            "score": self.score,
            "terms": [t.to_json() for t in self.terms],
            "rules": list(self.rules),
            "layer": self.layer,
        }
        if self.probability is not None:
            out["probability"] = round(self.probability, 4)
        if self.similar_to is not None:
            out["similar_to"] = self.similar_to
        return out


# ---------------------------------------------------------------- normalisation


@lru_cache(maxsize=1)
def _t2s() -> Callable[[str], str]:
    """The OpenCC Traditional → Simplified converter, built on first use."""
    converter = opencc.OpenCC("t2s.json")
    convert: Callable[[str], str] = converter.convert
    return convert


@lru_cache(maxsize=1)
def _s2t() -> Callable[[str], str]:
    """The OpenCC Simplified → Traditional converter, built on first use."""
    converter = opencc.OpenCC("s2t.json")
    convert: Callable[[str], str] = converter.convert
    return convert


def script_variants(word: str) -> tuple[str, ...]:
    """``word`` as written, in Simplified and in Traditional characters (without repeats), so
    a search typed in one script finds text stored in the other."""
    if word.isascii():
        return (word,)
    safe = word.encode("utf-8", "replace").decode("utf-8")
    return tuple(dict.fromkeys((word, _t2s()(safe), _s2t()(safe))))


_SPACES = re.compile(r"[\s\-‐‑‒–—―]+")
_CJK_RANGES = (
    (0x2E80, 0x2FDF),
    (0x3040, 0x30FF),
    (0x3100, 0x312F),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7AF),
    (0xF900, 0xFAFF),
    (0x20000, 0x3134F),
)


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def _is_word_char(ch: str) -> bool:
    """A letter or digit of a space-separated script (Latin, Greek, Cyrillic, ...)."""
    return ch.isalnum() and not _is_cjk(ch)


_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'"})


def _cased(text: str) -> str:
    """NFKC, spaces and dashes folded to one space, curly apostrophes straightened,
    Traditional → Simplified; case kept."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).translate(_APOSTROPHES)
    if not text.isascii():
        # A lone surrogate (possible in JSON input) cannot reach OpenCC; it becomes "?".
        text = text.encode("utf-8", "replace").decode("utf-8")
        text = _t2s()(text)
    return text


def normalize(text: str) -> str:
    """The normalised form text and terms are matched in (see the module docstring)."""
    return _cased(text).casefold()


# Tokens for NEAR: a run of word characters, or one CJK character.
_TOKEN = re.compile(
    r"[\u2e80-\u2fdf\u3040-\u312f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    r"\U00020000-\U0003134f]"
    r"|[^\W_\u2e80-\u2fdf\u3040-\u312f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    r"\U00020000-\U0003134f]+"
)

# ---------------------------------------------------------------- rule syntax tree


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # as written (after NFKC), for explanations
    key: str  # normalised, the automaton key
    exact: str | None  # the case-kept form for a case-sensitive term
    prefix: bool
    fields: frozenset[str]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class Near:
    left: Node
    right: Node
    distance: int


Node = Term | Or | And | Not | Near

# ---------------------------------------------------------------- tokenizer and parser

_OPEN_QUOTES = {'"': '"', "“": "”", "”": "”", "„": "“"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # WORD, PHRASE, OR, AND, NOT, NEAR, LPAREN, RPAREN, END
    value: str
    pos: int
    exact: bool = False
    prefix: bool = False
    field: str | None = None
    distance: int = 0


def _error(text: str, pos: int, message: str) -> RuleError:
    lo, hi = max(0, pos - 12), pos + 12
    snippet = ("…" if lo else "") + text[lo:hi] + ("…" if hi < len(text) else "")
    return RuleError(f"{message} (at character {pos + 1}: {snippet})")


_NEAR = re.compile(r"NEAR/(\d+)$")


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()":
            toks.append(_Tok("LPAREN" if ch == "(" else "RPAREN", ch, i))
            i += 1
            continue
        start = i
        exact = False
        field_name: str | None = None
        for name in FIELDS:
            if text.startswith(name + ":", i):
                field_name = name
                i += len(name) + 1
                break
        if field_name is not None and (i >= n or text[i].isspace()):
            raise _error(text, start, f"'{field_name}:' must be followed by a term or a group")
        if field_name is not None and text[i] == "(":
            toks.append(_Tok("FIELD", field_name, start))
            continue
        if i < n and text[i] == "=":
            exact = True
            i += 1
            if i >= n or text[i].isspace() or text[i] in "()":
                raise _error(text, start, "'=' must be followed by a term")
        if i < n and text[i] in _OPEN_QUOTES:
            close = _OPEN_QUOTES[text[i]]
            j = i + 1
            buf: list[str] = []
            escaped = False
            while j < n and text[j] != close and not (close == "”" and text[j] == '"'):
                escaped = text[j] == "\\" and j + 1 < n
                if escaped:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise _error(text, i, "a quoted phrase is not closed")
            j += 1
            prefix = bool(buf) and buf[-1] == "*" and not escaped
            if prefix:
                buf.pop()
            elif j < n and text[j] == "*":
                prefix = True
                j += 1
            if j < n and not text[j].isspace() and text[j] not in "()":
                raise _error(text, j, "put a space or an operator after a quoted phrase")
            toks.append(
                _Tok("PHRASE", "".join(buf), start, exact=exact, prefix=prefix, field=field_name)
            )
            i = j
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in '()"“”„':
            j += 1
        word = text[i:j]
        if not exact and field_name is None:
            if word in {"OR", "AND", "NOT"}:
                toks.append(_Tok(word, word, start))
                i = j
                continue
            near = _NEAR.match(word)
            if near:
                distance = int(near.group(1))
                if not 1 <= distance <= MAX_NEAR:
                    raise _error(text, start, f"NEAR/n needs 1 <= n <= {MAX_NEAR}")
                toks.append(_Tok("NEAR", word, start, distance=distance))
                i = j
                continue
            if word.startswith("NEAR/") or word == "NEAR":
                raise _error(text, start, "write proximity as NEAR/n, e.g. NEAR/5")
        prefix = word.endswith("*")
        if prefix:
            word = word[:-1]
        if "*" in word:
            raise _error(text, start, "'*' is allowed only at the end of a term")
        if not word:
            raise _error(text, start, "an empty term")
        toks.append(_Tok("WORD", word, start, exact=exact, prefix=prefix, field=field_name))
        i = j
    toks.append(_Tok("END", "", n))
    return toks


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _merge_words(text, _tokenize(text))
        self.i = 0
        self.terms = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "END":
            raise RuleError("an empty rule")
        node = self.parse_or(0, frozenset(FIELDS))
        tok = self.peek()
        if tok.kind == "RPAREN":
            raise _error(self.text, tok.pos, "a ')' without its '('")
        if tok.kind != "END":  # pragma: no cover - every other token is consumed above
            raise _error(self.text, tok.pos, f"unexpected {tok.value!r}")
        return node

    def parse_or(self, depth: int, fields: frozenset[str]) -> Node:
        children = [self.parse_and(depth, fields)]
        while self.peek().kind == "OR":
            self.take()
            children.append(self.parse_and(depth, fields))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self, depth: int, fields: frozenset[str]) -> Node:
        children = [self.parse_near(depth, fields)]
        while self.peek().kind in {"AND", "NOT"}:
            tok = self.take()
            if tok.kind == "AND" and self.peek().kind == "NOT":
                tok = self.take()
            operand = self.parse_near(depth, fields)
            children.append(Not(operand) if tok.kind == "NOT" else operand)
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_near(self, depth: int, fields: frozenset[str]) -> Node:
        left = self.parse_unary(depth, fields)
        if self.peek().kind != "NEAR":
            return left
        tok = self.take()
        right = self.parse_unary(depth, fields)
        for side in (left, right):
            if not _is_term_group(side):
                raise _error(
                    self.text, tok.pos, "NEAR/n joins terms or (a OR b) groups of terms only"
                )
        if self.peek().kind == "NEAR":
            raise _error(self.text, self.peek().pos, "chain NEAR/n with AND: (a NEAR/3 b) AND …")
        return Near(left, right, tok.distance)

    def parse_unary(self, depth: int, fields: frozenset[str]) -> Node:
        tok = self.peek()
        if tok.kind == "NOT":
            self.take()
            return Not(self.parse_unary(depth, fields))
        return self.parse_primary(depth, fields)

    def parse_primary(self, depth: int, fields: frozenset[str]) -> Node:
        tok = self.take()
        if tok.kind == "FIELD":
            scoped = frozenset({tok.value})
            if not scoped <= fields:
                raise _error(self.text, tok.pos, f"'{tok.value}:' inside a different field scope")
            return self.parse_primary(depth, scoped)
        if tok.kind == "LPAREN":
            if depth + 1 > MAX_DEPTH:
                raise _error(self.text, tok.pos, f"nested deeper than {MAX_DEPTH} parentheses")
            if self.peek().kind == "RPAREN":
                raise _error(self.text, tok.pos, "empty parentheses")
            node = self.parse_or(depth + 1, fields)
            close = self.take()
            if close.kind != "RPAREN":
                raise _error(self.text, tok.pos, "a '(' is not closed")
            return node
        if tok.kind in {"WORD", "PHRASE"}:
            return self.make_term(tok, fields)
        if tok.kind == "END":
            raise _error(self.text, tok.pos, "the rule ends where a term was expected")
        if tok.kind == "RPAREN":
            raise _error(self.text, tok.pos, "expected a term before ')'")
        raise _error(self.text, tok.pos, f"expected a term, not the operator {tok.value}")

    def make_term(self, tok: _Tok, fields: frozenset[str]) -> Term:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise _error(self.text, tok.pos, f"more than {MAX_TERMS} terms in one rule")
        if tok.field is not None:
            if tok.field not in fields:
                raise _error(self.text, tok.pos, f"'{tok.field}:' inside a different field scope")
            fields = frozenset({tok.field})
        text = tok.value.strip()
        key = normalize(text).strip()
        if not any(ch.isalnum() for ch in key):
            raise _error(self.text, tok.pos, f"the term {tok.value!r} has no letters or digits")
        exact = _cased(text).strip() if tok.exact else None
        if exact is not None and len(exact) != len(key):
            raise _error(self.text, tok.pos, "this term cannot be made case-sensitive")
        return Term(text=text, key=key, exact=exact, prefix=tok.prefix, fields=fields)


def _merge_words(text: str, toks: list[_Tok]) -> list[_Tok]:
    """Join runs of bare words into one phrase; refuse two terms side by side otherwise."""
    out: list[_Tok] = []
    for tok in toks:
        prev = out[-1] if out else None
        if prev is not None and prev.kind in {"WORD", "PHRASE"} and tok.kind in {"WORD", "PHRASE"}:
            joinable = (
                prev.kind == "WORD"
                and tok.kind == "WORD"
                and not prev.prefix
                and not tok.exact
                and tok.field is None
            )
            if not joinable:
                raise _error(
                    text,
                    tok.pos,
                    "two terms without an operator between them: "
                    "use OR, AND or NOT (operators are UPPER case)",
                )
            out[-1] = _Tok(
                "WORD",
                f"{prev.value} {tok.value}",
                prev.pos,
                exact=prev.exact,
                prefix=tok.prefix,
                field=prev.field,
            )
            continue
        if prev is not None and prev.kind == "RPAREN" and tok.kind in {"WORD", "PHRASE", "LPAREN"}:
            raise _error(text, tok.pos, "an operator is missing after ')'")
        if prev is not None and prev.kind in {"WORD", "PHRASE"} and tok.kind in {"LPAREN", "FIELD"}:
            raise _error(text, tok.pos, "an operator is missing before this group")
        out.append(tok)
    return out


def _is_term_group(node: Node) -> bool:
    if isinstance(node, Term):
        return True
    return isinstance(node, Or) and all(isinstance(c, Term) for c in node.children)


def _can_match_alone(node: Node) -> bool:
    if isinstance(node, Term | Near):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, Or):
        return all(_can_match_alone(c) for c in node.children)
    return any(_can_match_alone(c) for c in node.children)


def parse_rule(text: str) -> Node:
    """Parse one rule into its syntax tree; ``RuleError`` says what is wrong and where."""
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(f"a rule is at most {MAX_RULE_LENGTH} characters (this one {len(text)})")
    text = unicodedata.normalize("NFKC", text)
    node = _Parser(text).parse()
    if not _can_match_alone(node):
        raise RuleError("a rule needs a term to look for, not only exclusions (NOT ...)")
    return node


SCOPE_PREFIX = "SCOPE:"


def parse_entry(text: str) -> tuple[Node, bool]:
    """A watchlist entry: its syntax tree, and whether it is a scope entry (``SCOPE: ...``)."""
    body = scope_body(text)
    return (parse_rule(text), False) if body is None else (parse_rule(body), True)


def scope_body(text: str) -> str | None:
    """The rule a scope entry (``SCOPE: ...``) finds its items with, or None for a rule.
    ``Scope:`` in other capitals is refused (``RuleError``): read as a rule it would match
    where the editor meant to narrow."""
    stripped = text.lstrip()
    if stripped.startswith(SCOPE_PREFIX):
        return stripped.removeprefix(SCOPE_PREFIX).strip()
    if stripped[: len(SCOPE_PREFIX)].upper() == SCOPE_PREFIX:
        msg = f"a scope entry starts with {SCOPE_PREFIX} in capitals"
        raise RuleError(msg)
    return None


def check_rule(text: str) -> str | None:
    """The error message for an invalid entry (a rule or a scope), or None when it is valid."""
    try:
        parse_entry(text)
    except RuleError as exc:
        return str(exc)
    return None


def disambiguation(node: Node) -> tuple[Term, tuple[Node, ...]] | None:
    """The name a rule disambiguates and what its NOT parts name, or None: a rule that starts
    with a single name and has a NOT part ("Ernie AND (...) NOT (Els OR golf*)", "寒武纪 NOT
    (化石 OR ...)") names the name's other senses (``Matcher.excluded``). Rules that start with
    a group of words are not: their NOT parts say when the rule is not enough evidence, not
    what the item is."""
    if isinstance(node, And) and isinstance(node.children[0], Term):
        others = tuple(c.child for c in node.children if isinstance(c, Not))
        if others:
            return node.children[0], others
    return None


def disambiguated_name(text: str) -> str | None:
    """The name the valid rule ``text`` disambiguates, as written (``disambiguation``), or
    None: what an editor is told when adding or trying such a rule."""
    node, scope = parse_entry(text)
    found = None if scope else disambiguation(node)
    return None if found is None else found[0].text


# ---------------------------------------------------------------- compiled matcher

Occurrences = dict[int, dict[str, list[tuple[int, int]]]]  # slot -> field -> [(start, end)]


@dataclass(frozen=True, slots=True)
class _Slot:
    key: str
    exact: str | None
    prefix: bool


@dataclass(slots=True)
class _Rule:
    slug: str
    text: str
    node: Node
    scope: bool = False  # a scope entry: never matches, bounds the learned model (``excluded``)


def _terms(node: Node, negated: bool = False) -> Iterable[tuple[Term, bool]]:
    if isinstance(node, Term):
        yield node, negated
    elif isinstance(node, Not):
        yield from _terms(node.child, not negated)
    elif isinstance(node, Near):
        yield from _terms(node.left, negated)
        yield from _terms(node.right, negated)
    else:
        for child in node.children:
            yield from _terms(child, negated)


def _plural_follows(text: str, end: int) -> bool:
    """Does a plural ending ("s" or "es") follow the Latin word ending at ``end``, then a word
    boundary? "export control" matches "export controls"; "chip" does not match "chipset"."""
    if not ("a" <= text[end] <= "z"):
        return False
    for suffix in ("s", "es"):
        stop = end + 1 + len(suffix)
        if text[end + 1 : stop] == suffix and (stop >= len(text) or not _is_word_char(text[stop])):
            return True
    return False


class _FieldText:
    """One field of an item, normalised, with lazily computed token offsets for NEAR."""

    __slots__ = ("_starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts: list[int] | None = None

    def token_span(self, start: int, end: int) -> tuple[int, int]:
        if self._starts is None:
            self._starts = [m.start() for m in _TOKEN.finditer(self.text)]
        first = bisect_right(self._starts, start) - 1
        last = bisect_right(self._starts, end - 1) - 1
        return first, last


class Matcher:
    """Every theme's rules compiled into one automaton. Build with ``compile_themes``."""

    def __init__(self, rules: Sequence[_Rule], slots: Sequence[_Slot]) -> None:
        self._rules = list(rules)
        self._slots = list(slots)
        self._slot_ids: dict[tuple[str, str | None, bool], int] = {
            (s.key, s.exact, s.prefix): i for i, s in enumerate(slots)
        }
        self._rules_by_slot: dict[int, list[int]] = {}
        self._slugs: list[str] = []
        self._scoped = frozenset(rule.slug for rule in self._rules if rule.scope)
        # Each Term node's slot, by node identity: the hot path looks it up once per evaluation.
        self._node_slot: dict[int, int] = {}
        for index, rule in enumerate(self._rules):
            if rule.slug not in self._slugs:
                self._slugs.append(rule.slug)
            for term, _ in _terms(rule.node):
                self._node_slot[id(term)] = self._slot_of(term)
            for term, negated in _terms(rule.node):
                if not negated:
                    slot = self._slot_of(term)
                    rules_here = self._rules_by_slot.setdefault(slot, [])
                    if not rules_here or rules_here[-1] != index:
                        rules_here.append(index)
        self._automaton: Any = None
        if slots:
            automaton = ahocorasick.Automaton()
            by_key: dict[str, list[int]] = {}
            for i, declared in enumerate(slots):
                by_key.setdefault(declared.key, []).append(i)
            for key, ids in by_key.items():
                automaton.add_word(key, (len(key), tuple(ids)))
            automaton.make_automaton()
            self._automaton = automaton

    @property
    def slugs(self) -> tuple[str, ...]:
        """The themes that have at least one rule, in the order given."""
        return tuple(self._slugs)

    @property
    def term_count(self) -> int:
        """Distinct terms in the automaton."""
        return len(self._slots)

    def _slot_of(self, term: Term) -> int:
        return self._slot_ids[(term.key, term.exact, term.prefix)]

    def _scan(self, text: str, name: str, occ: Occurrences) -> _FieldText:
        cased = _cased(text)
        folded = cased.casefold()
        origin: list[int] | None = None  # folded index -> cased index, when lengths differ
        if len(folded) != len(cased):
            origin = [i for i, ch in enumerate(cased) for _ in ch.casefold()]
        ft = _FieldText(folded)
        n = len(folded)
        for end, (length, ids) in self._automaton.iter(folded):
            start = end - length + 1
            if _is_word_char(folded[start]) and start > 0 and _is_word_char(folded[start - 1]):
                continue
            right_open = end + 1 >= n or not _is_word_char(folded[end + 1])
            right_needed = _is_word_char(folded[end])
            plural = not right_open and _plural_follows(folded, end)
            for slot_id in ids:
                slot = self._slots[slot_id]
                plural_ok = plural and slot.exact is None
                if right_needed and not slot.prefix and not right_open and not plural_ok:
                    continue
                if slot.exact is not None:
                    if origin is None:
                        original = cased[start : end + 1]
                    else:
                        original = cased[origin[start] : origin[end] + 1]
                    if original != slot.exact:
                        continue
                occ.setdefault(slot_id, {}).setdefault(name, []).append((start, end + 1))
        return ft

    def _candidates(
        self, title: str, summary: str
    ) -> tuple[Occurrences, dict[str, _FieldText], list[int]]:
        """The term occurrences of an item, its scanned fields, and the rules (by index) that
        have a positive term among them: the only rules that can match."""
        occ: Occurrences = {}
        texts: dict[str, _FieldText] = {}
        if self._automaton is None:
            return occ, texts, []
        texts["title"] = self._scan(title, "title", occ)
        if summary:
            texts["summary"] = self._scan(summary, "summary", occ)
        return occ, texts, sorted({r for slot in occ for r in self._rules_by_slot.get(slot, ())})

    def classify(self, title: str, summary: str = "") -> list[ThemeMatch]:
        """The themes an item matches, strongest first (ties by slug), with their terms."""
        occ, texts, candidates = self._candidates(title, summary)
        if not candidates:
            return []
        found: dict[str, tuple[dict[tuple[str, str], MatchedTerm], list[str]]] = {}
        for index in candidates:
            rule = self._rules[index]
            if rule.scope:
                continue
            ok, hits = self._eval(rule.node, occ, texts)
            if not ok:
                continue
            terms, fired = found.setdefault(rule.slug, ({}, []))
            fired.append(rule.text)
            for hit in hits:
                terms.setdefault((hit.term.casefold(), hit.field), hit)
        out: list[ThemeMatch] = []
        for slug, (terms, fired) in found.items():
            ordered = sorted(terms.values(), key=lambda t: FIELDS.index(t.field))
            in_title = {t.term.casefold() for t in ordered if t.field == "title"}
            score = sum(
                TITLE_WEIGHT if key in in_title else SUMMARY_WEIGHT
                for key in {t.term.casefold() for t in ordered}
            )
            out.append(ThemeMatch(slug, score, tuple(ordered), tuple(fired)))
        out.sort(key=lambda m: (-m.score, m.slug))
        return out

    def excluded(self, title: str, summary: str = "") -> frozenset[str]:
        """The themes the learned layer may not match alone in this item, where no rule of
        the theme matched: those whose scope entries (``SCOPE: ...``) all miss it, and those
        an editor's disambiguation rules out, a rule of the theme that starts with a single
        name and has a NOT part ("Ernie AND (...) NOT (Els OR golf*)", "寒武纪 NOT (化石 OR
        ...)") finding both the name and what the NOT part names (``disambiguation``). The
        editor has said what the theme is about, or which other sense of the name this is; the
        learned layer does not overrule it."""
        occ, texts, candidates = self._candidates(title, summary)
        fired: set[str] = set()
        blocked: set[str] = set()
        in_scope: set[str] = set()
        for index in candidates:
            rule = self._rules[index]
            if rule.scope:
                if rule.slug not in in_scope and self._eval(rule.node, occ, texts)[0]:
                    in_scope.add(rule.slug)
                continue
            if rule.slug in fired:
                continue
            if self._eval(rule.node, occ, texts)[0]:
                fired.add(rule.slug)
                continue
            found = disambiguation(rule.node)
            if (
                found is not None
                and self._eval(found[0], occ, texts)[0]
                and any(self._eval(other, occ, texts)[0] for other in found[1])
            ):
                blocked.add(rule.slug)
        return frozenset((blocked | (self._scoped - in_scope)) - fired)

    def _positions(self, term: Term, occ: Occurrences) -> list[tuple[str, int, int]]:
        by_field = occ.get(self._slot_of(term))
        if not by_field:
            return []
        return [(f, s, e) for f, spans in by_field.items() if f in term.fields for s, e in spans]

    def _eval(
        self, node: Node, occ: Occurrences, texts: Mapping[str, _FieldText]
    ) -> tuple[bool, list[MatchedTerm]]:
        if isinstance(node, Term):
            by_field = occ.get(self._node_slot[id(node)])
            if not by_field:
                return False, []
            hits = [MatchedTerm(node.text, f) for f in FIELDS if f in by_field and f in node.fields]
            return bool(hits), hits
        if isinstance(node, Or):
            any_ok, hits = False, []
            for child in node.children:
                ok, child_hits = self._eval(child, occ, texts)
                if ok:
                    any_ok = True
                    hits.extend(child_hits)
            return any_ok, hits
        if isinstance(node, And):
            hits = []
            for child in node.children:
                ok, child_hits = self._eval(child, occ, texts)
                if not ok:
                    return False, []
                hits.extend(child_hits)
            return True, hits
        if isinstance(node, Not):
            ok, _ = self._eval(node.child, occ, texts)
            return not ok, []
        return self._near(node, occ, texts)

    def _near(
        self, node: Near, occ: Occurrences, texts: Mapping[str, _FieldText]
    ) -> tuple[bool, list[MatchedTerm]]:
        """Linear in the number of occurrences: sweep them in token order per field, keeping
        the furthest-reaching occurrence of each side seen so far."""
        left = [(t, p) for t in _group_terms(node.left) for p in self._positions(t, occ)]
        if not left:
            return False, []
        right = [(t, p) for t in _group_terms(node.right) for p in self._positions(t, occ)]
        hits: dict[tuple[str, str], MatchedTerm] = {}
        for name in FIELDS:
            spans: list[tuple[int, int, int, Term]] = []  # first token, last token, side, term
            ft = texts.get(name)
            if ft is None:
                continue
            for side, group in ((0, left), (1, right)):
                for term, (f, s, e) in group:
                    if f == name:
                        first, last = ft.token_span(s, e)
                        spans.append((first, last, side, term))
            spans.sort(key=lambda span: (span[0], span[2]))
            reach: list[tuple[int, Term] | None] = [None, None]  # per side: max last, its term
            for first, last, side, term in spans:
                other = reach[1 - side]
                if other is not None and first - other[0] - 1 <= node.distance:
                    for hit in (term, other[1]):
                        hits.setdefault((hit.text, name), MatchedTerm(hit.text, name))
                mine = reach[side]
                if mine is None or last > mine[0]:
                    reach[side] = (last, term)
        return bool(hits), list(hits.values())


def _group_terms(node: Node) -> tuple[Term, ...]:
    if isinstance(node, Term):
        return (node,)
    assert isinstance(node, Or)
    return tuple(c for c in node.children if isinstance(c, Term))


def compile_themes(rules: Mapping[str, Sequence[str]]) -> Matcher:
    """Compile every theme's rules (slug → rule texts) into one matcher.

    Raises ``RuleError`` naming the theme and the rule when one does not parse.
    """
    compiled: list[_Rule] = []
    slots: dict[tuple[str, str | None, bool], _Slot] = {}
    for slug, texts in rules.items():
        for text in texts:
            try:
                node, scope = parse_entry(text)
            except RuleError as exc:
                raise RuleError(f"theme {slug!r}, rule {text!r}: {exc}") from None
            for term, _ in _terms(node):
                slots.setdefault(
                    (term.key, term.exact, term.prefix), _Slot(term.key, term.exact, term.prefix)
                )
            compiled.append(_Rule(slug=slug, text=text, node=node, scope=scope))
    return Matcher(compiled, list(slots.values()))
