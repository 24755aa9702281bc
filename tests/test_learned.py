"""The learned second opinion: features, stored models (JSON, never pickle), inference against
scikit-learn, the rules-OR-model combination, and what feedback teaches the trainer."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from models.feedback import (
    AlertVerdicts,
    FeedbackPress,
    Tally,
    WaryPolicy,
    feedback_callback,
    is_wary,
    parse_feedback_callback,
    unsure_record,
    wary_pairs,
)
from models.learned import (
    FeatureConfig,
    ModelFormatError,
    ModelSet,
    ThemeModel,
    classify_with_model,
    features,
    theme_model_from_json,
)
from models.matching import check_rule, compile_themes, scope_body
from pipeline.learning import (
    Example,
    TrainParams,
    _FoldRow,
    _Head,
    _Outcome,
    examples_from_jsonl,
    feedback_example,
    models_from_json,
    shipped_models,
    train_models,
)
from tests.test_classification_eval import SHIPPED_SLUGS

SMALL = TrainParams(config=FeatureConfig(1, 3, "t|"), c=10.0, min_df=1, keep=2_000)

CHIPS = [
    "US tightens export controls on AI chips bound for China",
    "Commerce curbs Nvidia chip exports to Chinese firms",
    "New rules restrict exports of advanced semiconductors to China",
    "美国收紧对华芯片出口管制",
    "美方限制英伟达芯片对华出口",
    "Washington widens chip export ban on Chinese companies",
]
OTHER = [
    "Soybean prices climb after harvest report",
    "Local football club wins the league title",
    "City council approves new bus routes",
    "今日天气晴朗 气温回升",
    "Stock markets rise on strong earnings",
    "New museum opens downtown with modern art",
    "Airline adds flights to Lisbon for the summer",
    "农产品价格小幅上涨",
]


def corpus() -> list[Example]:
    return [Example(t, "", frozenset({"chips"})) for t in CHIPS] + [
        Example(t, "", frozenset()) for t in OTHER
    ]


def test_traditional_and_simplified_chinese_give_the_same_features() -> None:
    config = FeatureConfig(1, 3, "t|")
    assert features("美國出口管制", "", config) == features("美国出口管制", "", config)
    assert "t|出口" in features("美国出口管制", "", config)  # the title counts once more
    assert "t|出口" not in features("", "美国出口管制", config)


def test_a_model_round_trips_through_json_and_refuses_anything_else() -> None:
    model = ThemeModel("chips", FeatureConfig(), {" ch": 1.5, "ip": -0.25}, -1.0, 0.4, ("x",))
    again = theme_model_from_json(json.loads(json.dumps(model.to_json())), version=3)
    assert again.weights == model.weights
    assert (again.intercept, again.threshold, again.examples, again.version) == (
        -1.0,
        0.4,
        ("x",),
        3,
    )
    broken = model.to_json() | {"format": 99}
    with pytest.raises(ModelFormatError, match="unknown model format"):
        theme_model_from_json(broken)
    with pytest.raises(ModelFormatError, match="finite number"):
        theme_model_from_json(model.to_json() | {"intercept": float("nan")})
    with pytest.raises(ModelFormatError):
        theme_model_from_json("gASVAAAA")  # a pickle is not a model


def test_pure_inference_scores_what_scikit_learn_scores() -> None:
    """The dot product in models.learned gives the probability the trained model gives."""
    trained = train_models(["chips"], corpus(), corpus(), params=SMALL)[0].model
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    vocab = sorted({f for e in corpus() for f in features(e.title, "", SMALL.config)})
    index = {f: i for i, f in enumerate(vocab)}

    def row(text: str) -> csr_matrix:
        feats = features(text, "", SMALL.config)
        cols = [index[f] for f in feats if f in index]
        return csr_matrix(
            ([1 / math.sqrt(len(feats))] * len(cols), cols, [0, len(cols)]),
            shape=(1, len(vocab)),
        )

    clf = LogisticRegression(C=SMALL.c, class_weight="balanced", max_iter=3000)
    rows = [row(e.title) for e in corpus()]
    from scipy.sparse import vstack

    clf.fit(vstack(rows), [bool(e.labels) for e in corpus()])
    probe = "Chinese chip exports face new US curbs"
    expected = clf.predict_proba(row(probe))[0, 1]
    got = trained.probability(features(probe, "", SMALL.config))
    assert got == pytest.approx(expected, abs=2e-3)  # weights are stored to 4 decimals


def test_the_model_recognises_a_paraphrase_the_rules_miss() -> None:
    model = train_models(["chips"], corpus(), corpus(), params=SMALL)[0].model
    models = ModelSet([model])
    matcher = compile_themes({"chips": ['"export controls"']})
    headline = "Nvidia chip exports to China restricted again"
    assert matcher.classify(headline) == []
    [found] = classify_with_model(matcher, models, headline)
    assert (found.slug, found.layer, found.terms) == ("chips", "model", ())
    assert found.similar_to in CHIPS  # explained by the nearest labelled headline
    assert classify_with_model(matcher, models, "Football club wins the league") == []


def test_a_theme_both_layers_match_keeps_the_rules_as_its_explanation() -> None:
    model = train_models(["chips"], corpus(), corpus(), params=SMALL)[0].model
    matcher = compile_themes({"chips": ['"export controls"']})
    [found] = classify_with_model(matcher, ModelSet([model]), CHIPS[0])
    assert found.layer == "both"
    assert [t.term for t in found.terms] == ["export controls"]
    assert found.similar_to is None
    assert found.probability is not None
    assert found.probability >= model.threshold


def test_without_models_the_rules_alone_decide() -> None:
    matcher = compile_themes({"chips": ['"export controls"']})
    [found] = classify_with_model(matcher, ModelSet([]), CHIPS[0])
    assert (found.layer, found.probability) == ("rules", None)


def test_an_editors_disambiguation_is_not_overruled_by_the_model() -> None:
    # a model that matches everything, beside rules that say which Ernie and which Kimi
    always = ThemeModel("llms", FeatureConfig(), {}, 5.0, 0.5, ("Baidu releases Ernie 4.5",))
    other = ThemeModel("rules-of-ai", FeatureConfig(), {}, 5.0, 0.5, ("CAC rules",))
    matcher = compile_themes(
        {
            "llms": [
                "Ernie AND (Baidu OR AI OR model*) NOT (Els OR golf*)",
                "Kimi AND (Moonshot OR AI) NOT (Antonelli OR F1)",
            ],
            # a rule that opens with a group: its NOT says when it is not enough evidence
            "rules-of-ai": ["(AI OR algorithm*) AND (rules OR law) NOT (chip* OR EU)"],
        }
    )
    models = ModelSet([always, other])
    golf = classify_with_model(matcher, models, "Ernie Els wins the Senior Open")
    assert [m.slug for m in golf] == ["rules-of-ai"]  # only the model's other theme
    assert matcher.excluded("Kimi Antonelli takes pole at Monza") == {"llms"}
    assert matcher.excluded("Ernie Els wins the Senior Open") == {"llms"}
    # the name alone, with no other sense named, is left to the model
    assert {m.slug for m in classify_with_model(matcher, models, "Ernie climbs charts")} == {
        "llms",
        "rules-of-ai",
    }
    # a rule that matched wins over its sibling's exclusion
    both = classify_with_model(matcher, models, "Kimi AI app passes Ernie Els in downloads")
    assert {(m.slug, m.layer) for m in both} >= {("llms", "both")}
    # a group-led rule's NOT does not take the theme from the model
    eu = classify_with_model(matcher, models, "EU AI rules take effect")
    assert {m.slug for m in eu} == {"llms", "rules-of-ai"}
    assert matcher.excluded("EU AI rules take effect") == frozenset()


def test_a_themes_scope_bounds_what_the_model_matches_alone() -> None:
    # a model that matches everything, beside a theme whose scope asks for a China or chip angle
    always = ThemeModel("ec", FeatureConfig(), {}, 5.0, 0.5, ("BIS lists Chinese firms",))
    matcher = compile_themes({"ec": ['"Entity List"', "SCOPE: China OR Chinese OR chip*"]})
    models = ModelSet([always])
    assert matcher.classify("Chinese chip firms") == []  # a scope entry matches nothing itself
    # outside the scope, the model alone does not match...
    assert classify_with_model(matcher, models, "Commerce fines a firearms exporter") == []
    # ...inside it, it does
    [found] = classify_with_model(matcher, models, "Commerce curbs chip tool sales")
    assert (found.slug, found.layer) == ("ec", "model")
    # and the editor's rules are not bounded by it
    [ruled] = classify_with_model(matcher, models, "Russian oil field added to the Entity List")
    assert (ruled.slug, ruled.layer) == ("ec", "both")
    assert check_rule("SCOPE: China OR") is not None  # a scope is a rule and must parse
    assert check_rule("SCOPE:") is not None
    # in other capitals it would be a rule matching every chip headline: refused instead
    assert check_rule("Scope: China OR chip*") == "a scope entry starts with SCOPE: in capitals"
    assert scope_body("  SCOPE: China OR chip*") == "China OR chip*"
    assert scope_body('"SCOPE: " quoted') is None


@pytest.mark.parametrize(
    ("ups", "downs", "expected"),
    [
        (1, 0, (True, 1 / 3)),
        (3, 0, (True, 1.0)),
        (3, 1, (True, 2 / 3)),  # a 👎 lowers a liked item's weight
        (0, 2, None),  # two 👎 are not enough to say anything
        (0, 3, (False, 1.0)),  # three are: a negative
        (1, 5, (False, 1.0)),
        (2, 2, None),
    ],
)
def test_what_feedback_teaches(ups: int, downs: int, expected: tuple[bool, float] | None) -> None:
    example = feedback_example("t", "s", "chips", ups, downs, min_votes=3)
    if expected is None:
        assert example is None
        return
    assert example is not None
    assert ("chips" in example.labels) is expected[0]
    assert example.weight == pytest.approx(expected[1])
    assert example.judged == frozenset({"chips"})  # says nothing about other themes
    assert not example.explains  # a subscriber's item is never shown to others as an example


def test_a_sources_unsure_alerts_judged_mostly_wrong_make_it_wary_of_that_theme() -> None:
    """Each alerted (item, theme) counts once, by its subscribers' majority; sure matches and
    ties say nothing; a source turns wary of a theme on enough judged unsure alerts with
    smoothed precision under the floor, and not on a handful."""
    policy = WaryPolicy(min_alerts=5, floor=0.5)
    noisy = [AlertVerdicts("wire", "chips", "model", 0, 3)] * 4 + [
        AlertVerdicts("wire", "chips", "rules", 1, 0),  # rules alone, against the model
        AlertVerdicts("wire", "chips", "both", 0, 9),  # sure: not counted
        AlertVerdicts("wire", "chips", "model", 2, 2),  # a tie: not counted
        AlertVerdicts("wire", "rules-only", "rules", 0, 5),  # no model judges it: sure
        AlertVerdicts("wire", "llms", "model", 0, 1),
    ]
    record = unsure_record(noisy, judged={"chips", "llms"})
    assert {key: (t.up, t.down) for key, t in record.items()} == {
        ("wire", "chips"): (1, 4),
        ("wire", "llms"): (0, 1),
    }
    assert wary_pairs(record, policy) == {("wire", "chips")}  # (1 + 1) / (5 + 2) < 0.5
    assert not is_wary(Tally(0, 4), policy)  # four verdicts are not enough
    assert not is_wary(Tally(3, 3), policy)  # (3 + 1) / (6 + 2) is not under 0.5
    assert is_wary(Tally(2, 4), policy)  # (2 + 1) / (6 + 2)
    assert not is_wary(Tally(0, 50), WaryPolicy(min_alerts=0))  # 0 turns it off


def test_enough_thumbs_down_lower_an_items_score_after_retraining() -> None:
    disputed = "US chip exports of Nvidia graphics cards to gamers in China"
    before = train_models(["chips"], corpus(), corpus(), params=SMALL)[0].model
    negative = feedback_example(disputed, "", "chips", 0, 3, min_votes=3)
    assert negative is not None
    after = train_models(["chips"], [*corpus(), negative], corpus(), params=SMALL)[0].model
    feats = features(disputed, "", SMALL.config)
    assert after.probability(feats) < before.probability(feats)
    assert disputed not in after.examples


def test_the_shipped_default_models_load_and_cover_every_shipped_theme() -> None:
    models = shipped_models()
    assert {m.slug for m in models} == SHIPPED_SLUGS
    for model in models:
        assert 0.05 <= model.threshold <= 0.95
        assert model.examples
    with pytest.raises(ModelFormatError):
        models_from_json({"models": "nope"})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("fb:u:42", FeedbackPress("up", 42)),
        ("fb:d:42", FeedbackPress("down", 42)),
        ("fb:w:42:7", FeedbackPress("wrong", 42, 7)),
        ("fb:w:42", None),  # wrong theme names the theme
        ("fb:u:42:7", FeedbackPress("up", 42, 7)),  # a digest entry's 👍 names its theme
        ("fb:d:42:7", FeedbackPress("down", 42, 7)),
        ("fb:u:0", None),
        ("fb:u:-1", None),
        ("fb:u:9223372036854775807", FeedbackPress("up", 2**63 - 1)),
        ("fb:u:9223372036854775808", None),  # beyond BIGINT: no such item
        ("fb:w:1:2147483648", None),  # beyond INTEGER: no such theme
        ("fb:u:42 ", None),
        ("mute:export-controls", None),
    ],
)
def test_feedback_button_data_is_parsed_strictly(data: str, expected: FeedbackPress | None) -> None:
    assert parse_feedback_callback(data) == expected
    if expected is not None:
        assert feedback_callback(expected.verdict, expected.item_id, expected.theme_id) == data
        assert len(data.encode()) <= 64


def test_a_labelled_row_with_an_address_is_a_real_news_item() -> None:
    text = "\n".join(
        [
            json.dumps({"title": "Written headline", "labels": []}),
            json.dumps({"title": "Reported headline", "labels": [], "url": "https://x.example/a"}),
            json.dumps({"title": "Blank address", "labels": [], "url": "  "}),
        ]
    )
    written, real, blank = examples_from_jsonl(text, where="test")
    assert (written.real, real.real, blank.real) == (False, True, False)
    assert real.weighed(4.0) == 4.0
    assert written.weighed(4.0) == 1.0


def test_real_news_items_count_more_when_the_real_weight_says_so() -> None:
    """A real item (what feeds carry) labelled "not about chips" pulls its look-alikes down
    further when real items weigh more; written items are unaffected by the setting."""
    disputed = "US chip export figures for Chinese gaming cards released"
    real_negative = Example(disputed, "", frozenset(), real=True)
    feats = features(disputed, "", SMALL.config)
    probability = {}
    for real_weight in (1.0, 5.0):
        params = replace(SMALL, real_weight=real_weight)
        model = train_models(["chips"], [*corpus(), real_negative], corpus(), params=params)[0]
        probability[real_weight] = model.model.probability(feats)
    assert probability[5.0] < probability[1.0] - 0.05
    written = replace(real_negative, real=False)
    same = [
        train_models(
            ["chips"],
            [*corpus(), written],
            corpus(),
            params=replace(SMALL, real_weight=w),
        )[0].model.probability(feats)
        for w in (1.0, 5.0)
    ]
    assert same[0] == pytest.approx(same[1])


def test_thresholds_are_chosen_with_each_item_counting_its_training_weight() -> None:
    """Out-of-fold rows of real items weigh as they do in training: a real negative scoring
    0.6 outweighs two written positives there, and the threshold moves above it."""
    outcome = _Outcome(
        wanted=[],
        by_rules=[],
        fold_rows=[row(True), row(True), row(False), row(True)],
        combined=True,
        pool="all",
        objective="f1",
        min_real_positives=30,
    )
    head = _Head(valid=[], oof=[0.6, 0.6, 0.6, 0.9])
    assert outcome.choose(head)[0] <= 0.6  # three positives at 0.6 and 0.9, one negative
    heavy = replace(outcome, fold_rows=[*outcome.fold_rows[:2], row(False, 8.0), row(True)])
    assert outcome.choose(head)[0] <= 0.6 < heavy.choose(head)[0] <= 0.9


def row(wanted: bool, weight: float = 1.0, *, real: bool = False) -> _FoldRow:
    return _FoldRow(rule=False, wanted=wanted, weight=weight, real=real)


def test_the_goals_measure_trades_recall_for_precision_where_f1_would_not() -> None:
    """Low: precision 0.69, recall 1.00 (F1 0.82); high: 0.90 and 0.72 (F1 0.80). F1 takes
    the low threshold, the lesser of precision and recall the high one."""
    probabilities = [0.9] * 18 + [0.6] * 7 + [0.9] * 2 + [0.6] * 9
    rows = [row(True)] * 25 + [row(False)] * 11
    head = _Head(valid=[], oof=probabilities)
    f1 = _Outcome([], [], rows, combined=True, pool="all", objective="f1", min_real_positives=30)
    goal = replace(f1, objective="min_pr")
    assert f1.choose(head)[0] <= 0.6 < goal.choose(head)[0] <= 0.9


def test_thresholds_are_chosen_on_real_news_when_it_has_enough_positives() -> None:
    """Ten written positives at 0.6 would pull the threshold down; the real items (two
    positives at 0.9, two negatives at 0.6) decide once they have ``min_real_positives``."""
    written = [row(True)] * 10
    real = [row(True, real=True)] * 2 + [row(False, real=True)] * 2
    head = _Head(valid=[0.6], oof=[0.6] * 10 + [0.9, 0.9, 0.6, 0.6])
    outcome = _Outcome(
        wanted=[True],
        by_rules=[False],
        fold_rows=written + real,
        combined=True,
        pool="real",
        objective="f1",
        min_real_positives=2,
    )
    assert 0.6 < outcome.choose(head)[0] <= 0.9
    assert replace(outcome, pool="all").choose(head)[0] <= 0.6
    assert replace(outcome, min_real_positives=3).choose(head)[0] <= 0.6  # too few: all
