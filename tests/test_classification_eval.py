"""The shipped themes against a labelled evaluation set of real headlines (tests/data/).

Prints per-theme precision and recall (run with ``-s`` to see them) and fails below 0.9 micro
precision or micro recall. The set's provenance is in ``tests/data/classification_eval.md``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from models.matching import Matcher, compile_themes
from policywatch.config_files import load_theme_specs

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "tests" / "data" / "classification_eval.jsonl"
THEMES = ROOT / "config" / "themes.yaml"
SHIPPED_SLUGS = {
    "export-controls",
    "china-ai-rules",
    "china-llms",
    "chip-self-sufficiency",
    "us-ai-policy",
    "foreign-model-dependence",
}


def load_eval() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return compile_themes({s.slug: s.rules for s in load_theme_specs(THEMES) if s.enabled})


def test_the_set_is_large_varied_and_multi_label() -> None:
    rows = load_eval()
    assert len(rows) >= 200
    langs = Counter(r["lang"] for r in rows)
    assert langs["en"] >= 50
    assert langs["zh"] >= 50
    assert langs["zh-Hant"] >= 10
    assert sum(1 for r in rows if not r["labels"]) >= 60  # near-misses and unrelated news
    assert sum(1 for r in rows if len(r["labels"]) > 1) >= 15
    assert {slug for r in rows for slug in r["labels"]} == SHIPPED_SLUGS
    assert all(r["source"] for r in rows)
    assert {r["split"] for r in rows} == {"dev", "holdout"}


def test_shipped_themes_are_the_interface_slugs(matcher: Matcher) -> None:
    assert set(matcher.slugs) == SHIPPED_SLUGS


def score(matcher: Matcher, rows: list[dict[str, Any]]) -> tuple[float, float, list[str]]:
    """Print per-theme precision and recall of ``rows``; return micro precision, recall, misses."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    mistakes: list[str] = []
    for row in rows:
        got = {m.slug for m in matcher.classify(row["title"], row["summary"])}
        want = set(row["labels"])
        for slug in got & want:
            tp[slug] += 1
        for slug in got - want:
            fp[slug] += 1
            mistakes.append(f"  FP {slug:<25} #{row['id']} {row['title'][:90]}")
        for slug in want - got:
            fn[slug] += 1
            mistakes.append(f"  FN {slug:<25} #{row['id']} {row['title'][:90]}")
    print("theme                      precision  recall   tp  fp  fn")
    for slug in sorted(SHIPPED_SLUGS):
        p = tp[slug] / ((tp[slug] + fp[slug]) or 1)
        r = tp[slug] / ((tp[slug] + fn[slug]) or 1)
        print(f"{slug:<26} {p:9.3f} {r:7.3f} {tp[slug]:4d} {fp[slug]:3d} {fn[slug]:3d}")
    micro_p = sum(tp.values()) / ((sum(tp.values()) + sum(fp.values())) or 1)
    micro_r = sum(tp.values()) / ((sum(tp.values()) + sum(fn.values())) or 1)
    print(f"{'micro':<26} {micro_p:9.3f} {micro_r:7.3f}")
    return micro_p, micro_r, mistakes


def test_micro_precision_and_recall_of_the_shipped_themes(matcher: Matcher) -> None:
    rows = load_eval()
    print(
        f"\nheld-out split ({sum(r['split'] == 'holdout' for r in rows)} headlines never tuned on):"
    )
    score(matcher, [r for r in rows if r["split"] == "holdout"])
    print(f"\nwhole set ({len(rows)} items):")
    micro_p, micro_r, mistakes = score(matcher, rows)
    print("\n".join(mistakes))
    assert micro_p >= 0.9, f"micro precision {micro_p:.3f} < 0.9"
    assert micro_r >= 0.9, f"micro recall {micro_r:.3f} < 0.9"


@pytest.mark.parametrize(
    ("headline", "slug", "matched"),
    [
        # the Commerce Department's Entity List, not DHS's forced-labour import ban list
        ("Commerce adds 12 Chinese chip firms to the Entity List", "export-controls", True),
        ("DHS adds 37 Chinese firms to UFLPA Entity List", "export-controls", False),
        # China's lists aimed at US defence firms over Taiwan are not the chip contest
        (
            "Beijing puts Shield AI and Sierra Nevada on its unreliable entity list over Taiwan "
            "arms sales",
            "export-controls",
            False,
        ),
        ("China adds US chipmaker to unreliable entity list", "export-controls", True),
        # chip exports cleared or blocked, not a country's chip trade figures
        ("US clears Nvidia chip exports to Saudi Arabia's Humain", "export-controls", True),
        ("China's chip exports hit a record US$159.5 billion in 2024", "export-controls", False),
        # a licence for an AI chip is an export control, not US AI policy
        (
            "Commerce Department says AMD's China-specific AI chip still needs an export license",
            "us-ai-policy",
            False,
        ),
        ("Commerce Department unveils AI policy for federal agencies", "us-ai-policy", True),
        # the White House science office acting on AI, not its staff news
        ("Michael Kratsios picked to head the OSTP", "us-ai-policy", False),
        ("OSTP issues guidance on federal agencies' AI use", "us-ai-policy", True),
        # Congress on AI, but not lawmakers' letters
        ("US lawmakers send letter urging tougher rules on DeepSeek AI", "us-ai-policy", False),
        ("Senate passes bill on AI and Chinese DeepSeek models", "us-ai-policy", True),
        # Ascend the chip line, not Huawei's old Ascend phones
        (
            "Huawei plans to drop the Ascend brand from its smartphones",
            "chip-self-sufficiency",
            False,
        ),
        ("Huawei ships Ascend AI processors to Chinese cloud firms", "chip-self-sufficiency", True),
    ],
)
def test_the_watchlists_keep_out_what_the_brief_excludes(
    matcher: Matcher, headline: str, slug: str, matched: bool
) -> None:
    assert (slug in {m.slug for m in matcher.classify(headline, "")}) == matched
