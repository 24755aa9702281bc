"""Training the learned second opinion (``models.learned``) with scikit-learn.

One logistic regression per theme over the features of ``models.learned.features`` (so the
pure inference scores exactly what was trained), on the labelled headlines shipped with the
project plus what subscribers' feedback says. Each theme's threshold is chosen on a separate
validation split, for the shipped combination (rules OR model) when the rules are given, never
on a test split. The result is plain data (``ThemeModel``), stored as JSON: no pickle.

scikit-learn and numpy are imported when a model is trained, not when the service starts.

Feedback becomes examples through ``feedback_example``: 👍 makes an item a positive of the
theme, 👎 (or "wrong theme") from at least ``min_votes`` subscribers makes it a negative, and
the weight is the net vote over ``min_votes`` (at most 1, the weight of a labelled headline).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from models.errors import ConfigError
from models.learned import (
    FeatureConfig,
    ModelFormatError,
    ThemeModel,
    features,
    theme_model_from_json,
)

THRESHOLDS = tuple(round(0.05 + 0.01 * i, 2) for i in range(91))  # 0.05 .. 0.95
EXAMPLES_KEPT = 300  # labelled headlines kept per theme to explain model-only matches
DATA_PACKAGE = "pipeline.data"
TRAINING_FILE = "training.jsonl"
VALIDATION_FILE = "validation.jsonl"
DEFAULT_MODELS_FILE = "default_models.json"


@dataclass(frozen=True, slots=True)
class TrainParams:
    """The hyper-parameters, chosen on the validation split (tests/data/classification_eval.md)."""

    config: FeatureConfig = field(default_factory=FeatureConfig)
    c: float = 30.0  # inverse L2 strength of the logistic regression
    balanced: bool = True  # weigh the rare positives up
    min_df: int = 2  # an n-gram must occur in this many training items to be a feature
    keep: int = 8_000  # the largest weights kept per theme (the stored model's size)
    max_iter: int = 3_000
    folds: int = 5  # out-of-fold probabilities of the training items join the threshold choice


@dataclass(frozen=True, slots=True)
class Example:
    """A training or validation item. ``judged`` names the themes it says anything about
    (None: every theme; a labelled headline is a negative of each theme it lacks)."""

    title: str
    summary: str
    labels: frozenset[str]
    judged: frozenset[str] | None = None
    weight: float = 1.0
    explains: bool = True  # may be shown as "similar to" (feedback items are not)

    def about(self, slug: str) -> bool:
        return self.judged is None or slug in self.judged


def feedback_example(
    title: str, summary: str, slug: str, ups: int, downs: int, min_votes: int
) -> Example | None:
    """What one item's feedback on one theme teaches, or None (too few votes to say).

    The net vote decides: more 👍 than 👎 makes a positive; more 👎 (counting "wrong theme")
    than 👍, from at least ``min_votes`` subscribers, a negative. The weight is the net vote
    over ``min_votes``, at most 1: each 👎 lowers a liked item's weight, and enough of them turn
    it into a negative.
    """
    net = ups - downs
    if net > 0:
        return Example(
            title, summary, frozenset({slug}), frozenset({slug}), _w(net, min_votes), False
        )
    if net < 0 and downs >= min_votes:
        return Example(title, summary, frozenset(), frozenset({slug}), _w(-net, min_votes), False)
    return None


def _w(votes: int, min_votes: int) -> float:
    return min(1.0, votes / max(1, min_votes))


@dataclass(frozen=True, slots=True)
class Scores:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Scores) -> Scores:
        return Scores(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def to_json(self) -> dict[str, float]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def score(predicted: Sequence[bool], wanted: Sequence[bool]) -> Scores:
    tp = sum(1 for p, w in zip(predicted, wanted, strict=True) if p and w)
    fp = sum(1 for p, w in zip(predicted, wanted, strict=True) if p and not w)
    fn = sum(1 for p, w in zip(predicted, wanted, strict=True) if w and not p)
    return Scores(tp, fp, fn)


@dataclass(frozen=True, slots=True)
class TrainedTheme:
    """A trained model with its validation scores (``metrics`` is stored beside it)."""

    model: ThemeModel
    metrics: Mapping[str, Any]

    @property
    def validation_f1(self) -> float:
        value = self.metrics.get("combined", self.metrics.get("model", {})).get("f1", 0.0)
        return float(value)


RuleClassifier = Callable[[str, str], set[str]]


def train_models(
    slugs: Iterable[str],
    training: Sequence[Example],
    validation: Sequence[Example],
    *,
    rules: RuleClassifier | None = None,
    params: TrainParams | None = None,
) -> list[TrainedTheme]:
    """One model per theme in ``slugs`` that has positives in ``training``.

    The threshold is the one with the best F1 for rules OR model when ``rules`` (the current
    watchlists) is given, else for the model alone, over ``validation`` and the out-of-fold
    probabilities of the training items (``params.folds`` models, each trained without a fifth
    of them): 150 validation items alone give a noisy threshold. The reported metrics are the
    validation split's. CPU-bound: callers on an event loop run it in a thread.
    """
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    params = params or TrainParams()
    config = params.config
    train_feats = [features(e.title, e.summary, config) for e in training]
    valid_feats = [features(e.title, e.summary, config) for e in validation]
    df: Counter[str] = Counter()
    for feats in train_feats:
        df.update(feats)
    vocabulary = sorted(f for f, n in df.items() if n >= params.min_df)
    index = {f: i for i, f in enumerate(vocabulary)}
    rule_hits = [rules(e.title, e.summary) if rules else set() for e in validation]
    train_rule_hits = [rules(e.title, e.summary) if rules else set() for e in training]

    def fitted(x: Any, y: Any, weights: Any) -> Any:
        clf = LogisticRegression(
            C=params.c,
            class_weight="balanced" if params.balanced else None,
            max_iter=params.max_iter,
        )
        return clf.fit(x, y, sample_weight=weights)

    trained: list[TrainedTheme] = []
    for slug in slugs:
        rows = [i for i, e in enumerate(training) if e.about(slug)]
        y = np.array([slug in training[i].labels for i in rows])
        if not y.any() or y.all() or not vocabulary:
            continue
        data: list[float] = []
        cols: list[int] = []
        ptr = [0]
        for i in rows:
            feats = train_feats[i]
            known = [index[f] for f in feats if f in index]
            cols.extend(known)
            data.extend([1.0 / math.sqrt(len(feats))] * len(known))
            ptr.append(len(cols))
        x = csr_matrix((data, cols, ptr), shape=(len(rows), len(vocabulary)))
        sample_weight = np.array([training[i].weight for i in rows])
        clf = fitted(x, y, sample_weight)
        out_of_fold: list[tuple[float, bool, bool]] = []
        for fold in range(params.folds):
            held = np.arange(len(rows)) % params.folds == fold
            if y[~held].all() or not y[~held].any():
                continue
            part = fitted(x[~held], y[~held], sample_weight[~held])
            held_probs = part.predict_proba(x[held])[:, 1]
            for position, p in zip(np.flatnonzero(held), held_probs, strict=True):
                i = rows[int(position)]
                out_of_fold.append((float(p), slug in train_rule_hits[i], bool(y[position])))
        coef = clf.coef_[0]
        order = np.argsort(-np.abs(coef), kind="stable")[: params.keep]
        weights = {vocabulary[j]: round(float(coef[j]), 4) for j in sorted(order.tolist())}
        examples = tuple(
            dict.fromkeys(
                e.title for e in training if slug in e.labels and e.explains and e.title.strip()
            )
        )[:EXAMPLES_KEPT]
        draft = ThemeModel(
            slug=slug,
            config=config,
            weights=weights,
            intercept=round(float(clf.intercept_[0]), 6),
            threshold=0.5,
            examples=examples,
        )
        trained.append(
            _with_threshold(
                draft,
                validation,
                valid_feats,
                rule_hits,
                rules is not None,
                len(rows),
                out_of_fold,
            )
        )
    return trained


def _with_threshold(
    draft: ThemeModel,
    validation: Sequence[Example],
    valid_feats: Sequence[frozenset[str]],
    rule_hits: Sequence[set[str]],
    combined: bool,
    trained_on: int,
    out_of_fold: Sequence[tuple[float, bool, bool]] = (),
) -> TrainedTheme:
    slug = draft.slug
    judged = [i for i, e in enumerate(validation) if e.about(slug)]
    wanted = [slug in validation[i].labels for i in judged]
    probs = [draft.probability(valid_feats[i]) for i in judged]
    by_rules = [slug in rule_hits[i] for i in judged]
    threshold = draft.threshold
    pool = [*zip(probs, by_rules, wanted, strict=True), *out_of_fold]
    if pool:
        best: tuple[float, float] | None = None
        for t in THRESHOLDS:
            hits = [p >= t or (combined and r) for p, r, _ in pool]
            f1 = score(hits, [w for _, _, w in pool]).f1
            if best is None or f1 > best[0] + 1e-9:
                best = (f1, t)
        assert best is not None
        threshold = best[1]
    model = ThemeModel(
        slug=slug,
        config=draft.config,
        weights=draft.weights,
        intercept=draft.intercept,
        threshold=threshold,
        examples=draft.examples,
    )
    model_hits = [p >= threshold for p in probs]
    metrics: dict[str, Any] = {
        "threshold": threshold,
        "trained_on": trained_on,
        "validated_on": len(judged),
        "model": {
            **score(model_hits, wanted).to_json(),
            "f1": round(score(model_hits, wanted).f1, 4),
        },
    }
    if combined:
        rules_only = score(by_rules, wanted)
        both = score([m or r for m, r in zip(model_hits, by_rules, strict=True)], wanted)
        metrics["rules"] = {**rules_only.to_json(), "f1": round(rules_only.f1, 4)}
        metrics["combined"] = {**both.to_json(), "f1": round(both.f1, 4)}
    return TrainedTheme(model, metrics)


# ---------------------------------------------------------------- the shipped data


def examples_from_jsonl(text: str, *, where: str) -> list[Example]:
    """Labelled items from JSON Lines (``title``, ``summary``, ``labels``); a bad line is a
    ConfigError naming it."""
    out: list[Example] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            problems.append(f"line {number}: not JSON: {exc}")
            continue
        title = row.get("title") if isinstance(row, dict) else None
        summary = row.get("summary", "") if isinstance(row, dict) else None
        labels = row.get("labels") if isinstance(row, dict) else None
        if not isinstance(title, str) or not isinstance(summary, str | None):
            problems.append(f"line {number}: title and summary must be strings")
            continue
        if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels):
            problems.append(f"line {number}: labels must be a list of theme slugs")
            continue
        out.append(Example(title, summary or "", frozenset(labels)))
    if problems:
        raise ConfigError(problems, origin=where)
    return out


def _package_text(name: str) -> str:
    return resources.files(DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def shipped_training() -> list[Example]:
    """The labelled headlines shipped with the project (the training split)."""
    return examples_from_jsonl(_package_text(TRAINING_FILE), where=TRAINING_FILE)


def shipped_validation() -> list[Example]:
    """The shipped validation split (thresholds are chosen on it)."""
    return examples_from_jsonl(_package_text(VALIDATION_FILE), where=VALIDATION_FILE)


def models_to_json(trained: Iterable[ThemeModel]) -> dict[str, Any]:
    """A model file: ``{"models": [...]}`` (the shipped default is one)."""
    return {"models": [m.to_json() for m in trained]}


def models_from_json(raw: Any) -> list[ThemeModel]:
    """The models of a model file; ``ModelFormatError`` when it is not one."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("models"), list):
        msg = 'a model file is {"models": [...]}'
        raise ModelFormatError(msg)
    return [theme_model_from_json(m) for m in raw["models"]]


def shipped_models() -> list[ThemeModel]:
    """The default models built from the shipped data (``policywatch train --export``)."""
    return models_from_json(json.loads(_package_text(DEFAULT_MODELS_FILE)))
