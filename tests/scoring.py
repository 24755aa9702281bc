"""Score the classifier on a labelled JSON Lines set: per theme and micro precision/recall for
the rules alone, the learned model alone, and rules OR model (the shipped combination).

    python -m tests.scoring tests/data/blind_F.jsonl       # the validation split (encoder on)
    POLICYWATCH_ENCODER=off python -m tests.scoring ...   # the n-gram head alone
    python -m tests.scoring tests/data/blind_G.jsonl       # the TEST split: once per change,
                                                          # logged in classification_eval.md
    python -m tests.scoring tests/data/blind_{G,X,AT}.jsonl   # several sets, pooled

Not collected by pytest (the test split is never scored by the suite).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.learned import ModelSet, TextVector, classify_with_model
from models.matching import Matcher, ThemeMatch, compile_themes
from pipeline.encoder import Encoder, encode_items, load_encoder
from pipeline.learning import Scores, score, shipped_indexes, shipped_models
from pipeline.neighbours import vote_with
from policywatch.config_files import load_theme_specs

ROOT = Path(__file__).resolve().parents[1]
# "both": the matches both layers agree on, the sure ones (``models.alerts.is_sure``)
LAYERS = ("rules", "model", "combined", "both")
# never trained or tuned on: scored once per change (classification_eval.md)
TEST_SPLITS = ("blind_G", "blind_X", "blind_AT", "blind_BT", "blind_RW", "blind_RT")
# real news items, each with the address of the page it reports (PROVENANCE.md)
REAL_NEWS = (
    "blind_RW",
    "blind_RT",
    "blind_RE",
    "blind_RF",
    "blind_RG",
    "blind_RH",
    "blind_RM",
    "blind_RN",
    "blind_RO",
    "blind_RP",
    "blind_SA",
    "blind_SB",
    "blind_SC",
    "blind_SD",
    "blind_SE",
    "blind_SF",
    "blind_SG",
    "blind_SH",
)


def load_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def shipped() -> tuple[Matcher, ModelSet, list[str]]:
    specs = [s for s in load_theme_specs(ROOT / "config" / "themes.yaml") if s.enabled]
    matcher = compile_themes({s.slug: s.rules for s in specs})
    return matcher, ModelSet(shipped_models()), [s.slug for s in specs]


def _vectors(
    rows: list[dict[str, Any]],
    models: ModelSet,
    encoder: Encoder | None,
    indexes: Mapping[str, bytes] | None,
) -> list[TextVector | None]:
    if encoder is None or encoder.name not in models.encoders:
        return [None] * len(rows)
    vectors = list(encode_items(encoder, [(row["title"], row["summary"]) for row in rows]))
    return vote_with(models, shipped_indexes() if indexes is None else indexes, vectors)


def decide_rows(
    rows: list[dict[str, Any]],
    models: ModelSet,
    *,
    encoder: Encoder | None = None,
    indexes: Mapping[str, bytes] | None = None,
) -> list[dict[str, tuple[float, float]]]:
    """Each row's (probability, threshold) per theme (``ModelSet.decisions``)."""
    vectors = _vectors(rows, models, encoder, indexes)
    return [
        models.decisions(row["title"], row["summary"], vector)
        for row, vector in zip(rows, vectors, strict=True)
    ]


def classify_rows(
    rows: list[dict[str, Any]],
    matcher: Matcher,
    models: ModelSet,
    *,
    encoder: Encoder | None = None,
    indexes: Mapping[str, bytes] | None = None,
) -> list[list[ThemeMatch]]:
    """Each row's matches, as the service classifies (``score_rows`` says how)."""
    vectors = _vectors(rows, models, encoder, indexes)
    return [
        classify_with_model(matcher, models, row["title"], row["summary"], vector)
        for row, vector in zip(rows, vectors, strict=True)
    ]


def score_rows(
    rows: list[dict[str, Any]],
    matcher: Matcher,
    models: ModelSet,
    slugs: list[str],
    *,
    encoder: Encoder | None = None,
    indexes: Mapping[str, bytes] | None = None,
) -> dict[str, dict[str, Scores]]:
    """layer → theme → scores (and "micro"); with ``encoder``, as the service classifies with
    it on (and with the votes of the neighbour ``indexes`` the models read: the shipped ones
    unless given)."""
    got: dict[str, list[set[str]]] = {layer: [] for layer in LAYERS}
    for found in classify_rows(rows, matcher, models, encoder=encoder, indexes=indexes):
        got["combined"].append({m.slug for m in found})
        got["rules"].append({m.slug for m in found if m.layer in {"rules", "both"}})
        got["model"].append({m.slug for m in found if m.layer in {"model", "both"}})
        got["both"].append({m.slug for m in found if m.layer == "both"})
    out: dict[str, dict[str, Scores]] = {}
    for layer in LAYERS:
        per = {
            slug: score([slug in g for g in got[layer]], [slug in row["labels"] for row in rows])
            for slug in slugs
        }
        micro = Scores()
        for s in per.values():
            micro = micro + s
        out[layer] = {**per, "micro": micro}
    return out


def table(scores: dict[str, dict[str, Scores]]) -> str:
    lines = [f"{'theme':<26}" + "".join(f" {layer + ' P/R':>15}" for layer in LAYERS)]
    for slug in scores["rules"]:
        cells = "".join(
            f" {scores[layer][slug].precision:>7.3f}/{scores[layer][slug].recall:<7.3f}"
            for layer in LAYERS
        )
        lines.append(f"{slug:<26}{cells}")
    return "\n".join(lines)


def counts(scores: dict[str, dict[str, Scores]]) -> str:
    """The micro scores of each layer, with their counts."""
    return "\n".join(
        f"{layer:<9} P {m.precision:.3f}  R {m.recall:.3f}  F1 {m.f1:.3f}  "
        f"({m.tp} right, {m.fp} false, {m.fn} missed)"
        for layer in LAYERS
        for m in [scores[layer]["micro"]]
    )


def main(argv: list[str]) -> None:
    paths = [Path(a) for a in argv] or [ROOT / "tests" / "data" / "blind_F.jsonl"]
    matcher, models, slugs = shipped()
    encoder = load_encoder(os.environ.get("POLICYWATCH_ENCODER", "e5"))
    rows: list[dict[str, Any]] = []
    scores: dict[str, dict[str, Scores]] = {}
    for path in paths:
        found = load_rows(path)
        got = score_rows(found, matcher, models, slugs, encoder=encoder)
        if len(paths) > 1:
            m = got["combined"]["micro"]
            print(
                f"{path.name}: {len(found)} items, rules OR model P {m.precision:.3f} R "
                f"{m.recall:.3f} ({m.tp} right, {m.fp} false, {m.fn} missed)"
            )
        rows += found
        scores = {
            layer: {
                key: scores.get(layer, {}).get(key, Scores()) + value for key, value in per.items()
            }
            for layer, per in got.items()
        }
    names = " + ".join(p.name for p in paths)
    print(f"{names}: {len(rows)} items; encoder: {encoder.name if encoder else 'off'}")
    print(counts(scores))
    print(table(scores))
    from models.matching import normalize
    from pipeline.learning import shipped_training

    seen = {normalize(e.title).strip() for e in shipped_training()}
    unseen = [r for r in rows if normalize(r["title"]).strip() not in seen]
    if len(unseen) < len(rows):
        print(f"\nwithout the {len(rows) - len(unseen)} items whose headline is also in the")
        print(f"training data ({len(unseen)} items):")
        print(table(score_rows(unseen, matcher, models, slugs, encoder=encoder)))


if __name__ == "__main__":
    main(sys.argv[1:])
