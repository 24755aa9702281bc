"""Classification throughput: the engine (one Aho-Corasick automaton + rule evaluation) against
a naive loop of one compiled regular expression per term, both over 5,000 terms; and the
shipped themes by their rules alone beside rules OR the shipped learned models (the pure dot
product of ``models.learned``, with the nearest-example lookup for model-only matches), and
the same with the sentence encoder's head (``pipeline.encoder``: encoding in batches of 64,
as a stored poll does, with the encoder's default threads).

    python -m bench.classify

Items are the evaluation set's real headlines and summaries (tests/data), cycled. The naive
baseline does only case-insensitive word-boundary matching (no normalisation, no rules), so
the ratio understates the engine's advantage.
"""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

from models.matching import compile_themes

ROOT = Path(__file__).resolve().parents[1]
TERMS = 5_000
THEMES = 50
ITEMS = 2_000
SEED = 4

LATIN = "abcdefghijklmnopqrstuvwxyz"
CJK = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"


def make_terms(rng: random.Random) -> list[str]:
    """5,000 distinct terms: the shipped watchlist's flavour (EN words and phrases, CJK)."""
    terms: set[str] = {"Entity List", "实体清单", "Huawei", "DeepSeek", "export controls", "芯片"}
    while len(terms) < TERMS:
        if rng.random() < 0.6:
            words = rng.randint(1, 3)
            terms.add(
                " ".join("".join(rng.choices(LATIN, k=rng.randint(4, 9))) for _ in range(words))
            )
        else:
            terms.add("".join(rng.choices(CJK, k=rng.randint(2, 5))))
    return sorted(terms)


def load_items() -> list[tuple[str, str]]:
    path = ROOT / "tests" / "data" / "classification_eval.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    base = [(r["title"], r["summary"]) for r in rows]
    return [base[i % len(base)] for i in range(ITEMS)]


def run() -> dict[str, float]:
    rng = random.Random(SEED)
    terms = make_terms(rng)
    items = load_items()
    rules: dict[str, list[str]] = {f"theme-{i:02d}": [] for i in range(THEMES)}
    for i, term in enumerate(terms):
        rules[f"theme-{i % THEMES:02d}"].append('"' + term + '"')

    start = time.perf_counter()
    matcher = compile_themes(rules)
    build_s = time.perf_counter() - start

    start = time.perf_counter()
    engine_hits = sum(len(matcher.classify(title, summary)) for title, summary in items)
    engine_s = time.perf_counter() - start

    patterns = [
        (slug, re.compile(r"(?<!\w)" + re.escape(t.strip('"')) + r"(?!\w)", re.IGNORECASE))
        for slug, texts in rules.items()
        for t in texts
    ]
    naive_items = items[: ITEMS // 10]  # the naive loop is slow; time a tenth and scale
    start = time.perf_counter()
    naive_hits = 0
    for title, summary in naive_items:
        text = f"{title}\n{summary}"
        naive_hits += len({slug for slug, p in patterns if p.search(text)})
    naive_s = time.perf_counter() - start

    from policywatch.config_files import load_theme_specs

    shipped = compile_themes(
        {t.slug: t.rules for t in load_theme_specs(ROOT / "config" / "themes.yaml")}
    )
    start = time.perf_counter()
    for title, summary in items:
        shipped.classify(title, summary)
    shipped_s = time.perf_counter() - start

    from models.learned import ModelSet, classify_with_model
    from pipeline.learning import shipped_models

    models = ModelSet(shipped_models())
    start = time.perf_counter()
    for title, summary in items:
        classify_with_model(shipped, models, title, summary)
    learned_s = time.perf_counter() - start

    from models.learned import TextVector
    from pipeline.encoder import encode_items, load_encoder
    from pipeline.learning import shipped_indexes
    from pipeline.neighbours import load_index, vote

    stored = shipped_indexes()
    indexes = [load_index(d, stored[d]) for d in sorted(models.indexes & stored.keys())]
    encoder = load_encoder("e5")
    encoded = items[: ITEMS // 4]  # the encoder (and the neighbours' vote) is slow; time a quarter
    vectors: list[TextVector | None] = []
    encoder_rate = 0.0
    ready_s = 0.0
    if encoder is not None:
        start = time.perf_counter()
        encode_items(encoder, encoded[:1])  # first use: the tuned image is built and mapped
        ready_s = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(0, len(encoded), 64):
            batch = encoded[i : i + 64]
            vectors.extend(vote(indexes, list(encode_items(encoder, batch))))
        for (title, summary), vector in zip(encoded, vectors, strict=True):
            classify_with_model(shipped, models, title, summary, vector)
        encoder_rate = len(encoded) / (time.perf_counter() - start)

    engine_rate = len(items) / engine_s
    naive_rate = len(naive_items) / naive_s
    return {
        "terms": float(matcher.term_count),
        "build_seconds": build_s,
        "engine_items_per_s": engine_rate,
        "naive_items_per_s": naive_rate,
        "ratio": engine_rate / naive_rate,
        "shipped_themes_items_per_s": len(items) / shipped_s,
        "shipped_with_models_items_per_s": len(items) / learned_s,
        "shipped_with_encoder_items_per_s": encoder_rate,
        "encoder_ready_seconds": ready_s,
        "engine_theme_hits": float(engine_hits),
        "naive_theme_hits_per_item": naive_hits / len(naive_items),
    }


def main() -> None:
    r = run()
    built, shipped = r["build_seconds"], r["shipped_themes_items_per_s"]
    print(f"terms: {int(r['terms'])} in {THEMES} themes; automaton built in {built:.2f} s")
    print(f"engine (Aho-Corasick + rules): {r['engine_items_per_s']:,.0f} items/s")
    print(f"naive (one regex per term):    {r['naive_items_per_s']:,.0f} items/s")
    print(f"ratio: {r['ratio']:,.0f}x")
    print(f"shipped themes (config/themes.yaml, boolean rules): {shipped:,.0f} items/s")
    learned = r["shipped_with_models_items_per_s"]
    print(f"shipped themes with the learned models (rules OR model): {learned:,.0f} items/s")
    encoded = r["shipped_with_encoder_items_per_s"]
    print(f"... and the sentence encoder's head (encode + classify): {encoded:,.1f} items/s")
    print(f"    (the encoder's first call, which loads it: {r['encoder_ready_seconds']:.2f} s)")


if __name__ == "__main__":
    main()
