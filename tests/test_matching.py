"""The rule language and the matching engine, table-driven (models.matching)."""

from __future__ import annotations

import json

import pytest

from models.errors import RuleError
from models.matching import (
    MAX_DEPTH,
    MAX_NEAR,
    MAX_RULE_LENGTH,
    MAX_TERMS,
    MatchedTerm,
    ThemeMatch,
    check_rule,
    compile_themes,
    normalize,
)
from models.themes import watchlist_entry_text


def matches(rule: str, title: str, summary: str = "") -> bool:
    return bool(compile_themes({"t": [rule]}).classify(title, summary))


# ---------------------------------------------------------------- every rule type

RULE_CASES = [
    # rule, title, summary, expected
    ("Huawei", "Huawei unveils a chip", "", True),
    ("Huawei", "HUAWEI unveils a chip", "", True),
    ("Huawei", "Nothing here", "", False),
    ('"华为" OR "Huawei"', "华为发布新芯片", "", True),
    ('"华为" OR "Huawei"', "Huawei Mate", "", True),
    ('"华为" OR "Huawei"', "小米发布新手机", "", False),
    # a run of bare words is one phrase, not an implicit AND
    ("Entity List", "Additions to the Entity List", "", True),
    ("Entity List", "A list of every entity", "", False),
    ('"Entity List"', "entity list", "", True),
    # all-of, any-of, none-of
    ("Huawei AND chip*", "Huawei makes chips", "", True),
    ("Huawei AND chip*", "Huawei makes phones", "", False),
    ("(Huawei OR ZTE) AND 5G", "ZTE wins 5G contract", "", True),
    ("Entity List NOT Russia", "Russia firms added to Entity List", "", False),
    ("Entity List AND NOT Russia", "Chinese firms added to Entity List", "", True),
    ("Entity List AND NOT (Russia OR Syria)", "Syria entity list action", "", False),
    ("NOT Russia AND Entity List", "Entity List grows", "", True),
    ("(a OR b) AND (c OR d) NOT e", "b and d", "", True),
    ("(a OR b) AND (c OR d) NOT e", "b and d and e", "", False),
    # operators are upper case only: lower case words are part of a phrase
    ("research and development", "China boosts research and development", "", True),
    ("research and development", "research for development", "", False),
    # proximity: words for Latin text, characters for CJK, either order
    ("Huawei NEAR/3 sanctions", "Huawei faces new US sanctions", "", True),
    ("Huawei NEAR/2 sanctions", "Huawei faces new US sanctions", "", False),
    ("Huawei NEAR/3 sanctions", "Sanctions hit Huawei", "", True),
    ("华为 NEAR/3 芯片", "华为发布新芯片", "", True),
    ("华为 NEAR/2 芯片", "华为发布新芯片", "", False),
    ("(Huawei OR 华为) NEAR/2 (chip* OR 芯片)", "华为的芯片", "", True),
    ("Huawei NEAR/5 chips", "Huawei", "chips", False),  # never across fields
    # field scope
    ('title:"Entity List"', "Entity List update", "", True),
    ('title:"Entity List"', "Rule update", "adds to the Entity List", False),
    ("summary:Huawei", "Huawei", "", False),
    ("summary:Huawei", "News", "about Huawei", True),
    ("title:(Huawei OR ZTE) AND summary:chip*", "ZTE news", "new chips", True),
    ("title:(Huawei OR ZTE) AND summary:chip*", "ZTE chips", "nothing", False),
    # case-sensitive terms
    ("=BIS", "BIS adds entities", "", True),
    ("=BIS", "von Montag bis Freitag", "", False),
    ("=BIS", "Bis", "", False),
    ('="Moore Threads"', "moore threads", "", False),
    ("=GLM", "Zhipu's GLM-4 model", "", True),
    # prefix terms
    ("chip*", "Chipmakers rally", "", True),
    ("chip*", "Potato crisps", "", False),
    ('"export control*"', "New export controls", "", True),
    ('"export control"', "New export controls", "", True),  # plurals match
    ('"export control"', "Export controllers meet", "", False),
    # quotes: escapes and curly quotes (phones type them)
    (r'"say \"hi\""', 'They say "hi" to all', "", True),
    ("“Entity List” OR “实体清单”", "列入实体清单", "", True),
]


@pytest.mark.parametrize(("rule", "title", "summary", "expected"), RULE_CASES)
def test_rule_types(rule: str, title: str, summary: str, expected: bool) -> None:
    assert check_rule(rule) is None
    assert matches(rule, title, summary) is expected


# ---------------------------------------------------------------- normalisation

NORMALISATION_CASES = [
    # rule, text, expected
    ("AI chips", "ＡＩ ｃｈｉｐｓ banned", True),  # full-width
    ("网信办", "國家網信辦發布", True),  # traditional text, simplified term
    ("網信辦", "国家网信办发布", True),  # traditional term, simplified text
    ("实体清单", "美國將中企列入實體清單", True),
    ("昇腾", "華為昇騰910C", True),  # OpenCC maps 昇 → 升 on both sides alike
    ("人工智能", "生成式人工智慧服務", False),  # regional vocabulary is not translated
    ("Entity List", "ENTITY\u3000LIST", True),  # ideographic space
    ("Entity List", "Entity\n  List", True),  # line break and spaces
    ("Entity List", "Entity-List", True),  # a dash joins like a space
    ("China's", "China’s chips", True),  # curly apostrophe
    ("strasse", "Hauptstraße", False),  # folding does not invent a word boundary
    ("straße", "STRASSE", True),  # case folding ß → ss
    ("deepseek", "DeepSeek-R1", True),
]


@pytest.mark.parametrize(("rule", "text", "expected"), NORMALISATION_CASES)
def test_normalisation(rule: str, text: str, expected: bool) -> None:
    assert matches(rule, text) is expected


def test_normalize_is_the_documented_pipeline() -> None:
    assert normalize("ＡＩ 網信辦  Export–Controls") == "ai 网信办 export controls"


# ---------------------------------------------------------------- boundaries

BOUNDARY_CASES = [
    ("AI", "He said the plan was maintained", False),
    ("AI", "AI rules", True),
    ("AI", "new AI-generated rules", True),
    ("AI", "(AI)", True),
    ("AI", "生成式AI服务", True),  # next to CJK is a boundary
    ("chip", "chipset shortage", False),
    ("chip", "a chip, not more", True),
    ("H20", "H200 chips", False),
    ("H20", "H20 chips", True),
    ("SMIC", "SMIC's results", True),
    ("01.AI", "01.AI raises money", True),
    ("芯片", "国产芯片突破", True),  # CJK terms need no boundary
    ("大模型", "百模大战中的大模型厂商", True),
    ("Kimi", "Kimisan", False),
    ("Kimi", "two Kimis", True),  # a plural
    ("=BIS", "BISs", False),  # case-sensitive terms match only as written
    ("chip", "chipset", False),
    ("H20", "H20s", False),  # only words ending in a letter take a plural
]


@pytest.mark.parametrize(("rule", "text", "expected"), BOUNDARY_CASES)
def test_word_boundaries(rule: str, text: str, expected: bool) -> None:
    assert matches(rule, text) is expected


def test_a_case_sensitive_term_still_matches_after_text_that_folds_longer() -> None:
    # "ß".casefold() is "ss": positions in the folded text shift; the check must follow them.
    assert matches("=BIS", "Straße: BIS adds entities")
    assert not matches("=BIS", "Straße: bis Montag")


# ---------------------------------------------------------------- errors

ERROR_CASES = [
    # rule, fragment of the message
    ("", "empty rule"),
    ("   ", "empty rule"),
    ('"华为" "Huawei"', "without an operator"),
    ("Huawei (chips)", "operator is missing"),
    ("(Huawei) chips", "operator is missing after ')'"),
    ("Huawei OR", "ends where a term was expected"),
    ("OR Huawei", "not the operator OR"),
    ("Huawei AND AND chips", "not the operator AND"),
    ("(Huawei", "not closed"),
    ("Huawei)", "without its '('"),
    ("()", "empty parentheses"),
    ('"Huawei', "quoted phrase is not closed"),
    ('"Huawei"chips', "space or an operator after a quoted phrase"),
    ("NOT Russia", "only exclusions"),
    ("NOT (a OR b)", "only exclusions"),
    ("a NEAR/0 b", "NEAR/n needs"),
    (f"a NEAR/{MAX_NEAR + 1} b", "NEAR/n needs"),
    ("a NEAR b", "NEAR/n"),
    ("a NEAR/3 (b AND c)", "NEAR/n joins terms"),
    ("a NEAR/3 b NEAR/3 c", "chain NEAR/n"),
    ("chi*p", "only at the end"),
    ("=", "must be followed by a term"),
    ("= BIS", "must be followed by a term"),
    ("title:", "must be followed"),
    ("title:(summary:x)", "different field scope"),
    ("-", "no letters or digits"),
    ('"!!!"', "no letters or digits"),
    ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), "nested deeper"),
    (" OR ".join(f"t{i}" for i in range(MAX_TERMS + 1)), f"more than {MAX_TERMS} terms"),
    ("x" * (MAX_RULE_LENGTH + 1), f"at most {MAX_RULE_LENGTH} characters"),
]


@pytest.mark.parametrize(("rule", "fragment"), ERROR_CASES)
def test_invalid_rules_say_what_and_where(rule: str, fragment: str) -> None:
    message = check_rule(rule)
    assert message is not None
    assert fragment in message
    with pytest.raises(RuleError):
        compile_themes({"t": [rule]})


def test_an_error_points_at_the_character() -> None:
    message = check_rule("Huawei AND (chips OR")
    assert message is not None
    assert "at character 21" in message


def test_compile_names_the_theme_and_the_rule() -> None:
    with pytest.raises(RuleError, match=r"theme 'chips', rule 'Huawei OR'"):
        compile_themes({"ok": ["fine"], "chips": ["Huawei OR"]})


def test_what_seeding_produces_parses() -> None:
    for entry in ["Huawei", ["华为", "Huawei"], ["Entity List", "实体清单"], ['say "hi"', "x\\y"]]:
        assert check_rule(watchlist_entry_text(entry)) is None


# ---------------------------------------------------------------- results and explanations


def test_result_explains_terms_fields_and_score() -> None:
    matcher = compile_themes(
        {
            "export-controls": ['"Entity List" OR "实体清单"', "=BIS AND rule*"],
            "chips": ["Huawei"],
            "other": ["nothing"],
        }
    )
    got = matcher.classify("BIS rule adds Huawei to the Entity List", "More on the Entity List")
    assert [m.slug for m in got] == ["export-controls", "chips"]  # strongest first
    ec = got[0]
    assert ec.terms == (
        MatchedTerm("Entity List", "title"),
        MatchedTerm("BIS", "title"),
        MatchedTerm("rule", "title"),
        MatchedTerm("Entity List", "summary"),
    )
    assert ec.score == 6.0  # three distinct terms, each in the title (x2)
    assert ec.rules == ('"Entity List" OR "实体清单"', "=BIS AND rule*")
    assert got[1] == ThemeMatch("chips", 2.0, (MatchedTerm("Huawei", "title"),), ("Huawei",))
    assert json.loads(json.dumps([m.to_json() for m in got]))[1] == {
        "slug": "chips",
        "score": 2.0,
        "terms": [{"term": "Huawei", "field": "title"}],
        "rules": ["Huawei"],
        "layer": "rules",
    }


def test_a_summary_only_match_scores_less_than_a_title_match() -> None:
    matcher = compile_themes({"t": ["Huawei"]})
    assert matcher.classify("Huawei")[0].score > matcher.classify("News", "Huawei")[0].score


def test_excluded_terms_are_not_in_the_explanation() -> None:
    (match,) = compile_themes({"t": ["Entity List NOT Russia"]}).classify("Entity List")
    assert match.terms == (MatchedTerm("Entity List", "title"),)


def test_one_automaton_serves_several_themes_sharing_a_term() -> None:
    matcher = compile_themes({"a": ["Huawei"], "b": ["=Huawei"], "c": ["Huawei*"]})
    assert matcher.term_count == 3
    assert {m.slug for m in matcher.classify("Huawei")} == {"a", "b", "c"}
    assert {m.slug for m in matcher.classify("huawei's")} == {"a", "c"}


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("", ""),
        ("\x00\x01\x02", ""),
        ("\ud800 Huawei", ""),  # a lone surrogate from JSON input
        ("🙂" * 1000, ""),
        ("Huawei " * 20_000, "华为" * 20_000),
    ],
)
def test_hostile_text_never_raises(title: str, summary: str) -> None:
    matcher = compile_themes({"t": ["Huawei NEAR/2 华为", "Huawei"]})
    result = matcher.classify(title, summary)
    assert bool(result) is ("Huawei" in title)


def test_no_themes_match_nothing() -> None:
    matcher = compile_themes({})
    assert matcher.classify("Huawei") == []
    assert matcher.slugs == ()
