"""Training the learned second opinion (``models.learned``) with scikit-learn.

One logistic regression per theme over the features of ``models.learned.features`` (so the
pure inference scores exactly what was trained), on the labelled headlines shipped with the
project plus what subscribers' feedback says; with an encoder (``pipeline.encoder``), a second
logistic regression per theme over the items' sentence vectors
(``models.learned.EmbeddingHead``), averaged with the first and with the vote of the item's
nearest labelled items (``pipeline.neighbours``: the run's labelled vectors become a neighbour
index the models name). Each way a model can decide (all three opinions, both heads, the n-gram
head alone where no vector is at hand) gets its own threshold, chosen on a separate validation
split, for the shipped combination (rules OR model) when the rules are given, never on a test
split. The result is plain data (``ThemeModel``), stored as JSON: no pickle.

scikit-learn is imported when a model is trained, not when the service starts; numpy too, or
when the classifier first loads a neighbour index.

Feedback becomes examples through ``feedback_example``: 👍 makes an item a positive of the
theme, 👎 (or "wrong theme") from at least ``min_votes`` subscribers makes it a negative, and
the weight is the net vote over ``min_votes`` (at most 1, the weight of a labelled headline).
"""

from __future__ import annotations

import base64
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, Literal, NamedTuple

from models.encoder_tuning import tuning_fold
from models.errors import ConfigError
from models.learned import (
    EmbeddingHead,
    FeatureConfig,
    ModelFormatError,
    NeighbourRef,
    ThemeModel,
    encoder_text,
    features,
    theme_model_from_json,
)
from models.neighbours import index_digest, index_from_bytes, index_to_bytes
from pipeline.encoder import CrossFit, Encoder, encode_items

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
    embedding_c: float = 3.0  # inverse L2 strength of the encoder head's regression
    neighbours: bool = True  # with an encoder: the nearest labelled items vote too
    # A real news item (``Example.real``) counts this many times, in fitting and in choosing
    # the thresholds: the written headlines outnumber them 5 to 1, and are not what feeds carry.
    real_weight: float = 4.0
    # Where and for what each threshold is chosen: on the validation split and every training
    # item's out-of-fold probability ("all"), or on the real items' alone ("real"; everything
    # for a theme with fewer than ``min_real_positives`` real positives), for the best F1
    # ("f1") or the best lesser of precision and recall ("min_pr"). Scoring 19
    # (tests/data/classification_eval.md): "real" with "min_pr" took real-news precision from
    # 0.829 to 0.847 but recall from 0.938 to 0.869, and the written splits' recall down too.
    threshold_pool: Literal["real", "all"] = "all"
    objective: Literal["min_pr", "f1"] = "f1"
    min_real_positives: int = 30


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
    real: bool = False  # reported on a real page (its row keeps the ``url``), not written

    def weighed(self, real_weight: float) -> float:
        """This item's weight in training with real items counting ``real_weight`` times."""
        return self.weight * (real_weight if self.real else 1.0)

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
    """A trained model with its validation scores (``metrics`` is stored beside it) and the
    stored form of the neighbour index it reads (``model.neighbours``), if any."""

    model: ThemeModel
    metrics: Mapping[str, Any]
    index: bytes | None = None

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
    encoder: Encoder | None = None,
    cross_fit: CrossFit | None = None,
) -> list[TrainedTheme]:
    """One model per theme in ``slugs`` that has positives in ``training``.

    The threshold is the one with the best F1 for rules OR model when ``rules`` (the current
    watchlists) is given, else for the model alone, over ``validation`` and the out-of-fold
    probabilities of the training items (``params.folds`` models, each trained without a fifth
    of them): 150 validation items alone give a noisy threshold. With ``encoder`` each model
    also gets an encoder head and (``params.neighbours``) reads the neighbour index of the
    training items, with a threshold for each way it can decide. The reported metrics are the
    validation split's. With ``cross_fit`` (and ``encoder``) the encoder head's and the
    neighbours' out-of-fold probabilities come from its encoders, one per fold: each fold's
    items are scored by a head and neighbours of the other folds, all in the vectors of the
    encoder that never saw that fold. CPU-bound: callers on an event loop run it in a thread.
    """
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    from pipeline.neighbours import POWER, K, LoadedIndex, build_index, unit_rows, weighed_votes

    slugs = list(slugs)
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
    vectors: tuple[Any, Any, Any, str] | None = None  # training, validation, centre, encoder
    if encoder is not None:
        train_v = np.array([v.values for v in encode_items(encoder, _texts(training))])
        valid_v = np.array([v.values for v in encode_items(encoder, _texts(validation))])
        center = train_v.mean(axis=0) if len(train_v) else np.zeros(0)
        vectors = (_centred(train_v, center), _centred(valid_v, center), center, encoder.name)
    near: tuple[bytes, str, Any, Any] | None = None  # index, digest, train and valid sims
    if encoder is not None and params.neighbours and len(training):
        knn_index = build_index(
            encoder.name,
            train_v,
            [e.labels for e in training],
            [e.judged for e in training],
            slugs,
            titles=[
                (e.title.strip() or None) if e.explains and e.labels else None for e in training
            ],
        )
        stored = index_to_bytes(knn_index)
        loaded = LoadedIndex(knn_index, index_digest(stored))
        valid_sims = (
            unit_rows(valid_v) @ loaded.matrix.T
            if len(validation)
            else np.zeros((0, len(training)))
        )
        near = (stored, loaded.digest, loaded.matrix @ loaded.matrix.T, valid_sims)
    crossed = None
    if encoder is not None and cross_fit is not None and cross_fit.encoders and training:
        crossed = _CrossFitted(cross_fit, training)

    def fitted(x: Any, y: Any, weights: Any, c: float = params.c) -> Any:
        clf = LogisticRegression(
            C=c,
            class_weight="balanced" if params.balanced else None,
            max_iter=params.max_iter,
        )
        return clf.fit(x, y, sample_weight=weights)

    def out_of_fold(x: Any, y: Any, weights: Any, c: float) -> Any:
        """Each training item's probability from a model trained without its fold (NaN where
        a fold's rest has one class only)."""
        probs = np.full(len(y), np.nan)
        for fold in range(params.folds):
            held = np.arange(len(y)) % params.folds == fold
            if y[~held].all() or not y[~held].any():
                continue
            probs[held] = fitted(x[~held], y[~held], weights[~held], c).predict_proba(x[held])[:, 1]
        return probs

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
        sample_weight = np.array([training[i].weighed(params.real_weight) for i in rows])
        clf = fitted(x, y, sample_weight)
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
        judged = [i for i, e in enumerate(validation) if e.about(slug)]
        ngram = _Head(
            valid=[draft.probability(valid_feats[i]) for i in judged],
            oof=out_of_fold(x, y, sample_weight, params.c).tolist(),
        )
        head: EmbeddingHead | None = None
        both: _Head | None = None
        if vectors is not None:
            train_x, valid_x, center, encoder_name = vectors
            head_clf = fitted(train_x[rows], y, sample_weight, params.embedding_c)
            if crossed is None:
                head_oof = out_of_fold(train_x[rows], y, sample_weight, params.embedding_c)
            else:
                head_oof = crossed.head_oof(rows, y, sample_weight, params.embedding_c, fitted)
            head_valid = head_clf.predict_proba(valid_x[judged])[:, 1] if judged else []
            both = _Head(
                valid=[(a + float(b)) / 2 for a, b in zip(ngram.valid, head_valid, strict=True)],
                oof=((np.array(ngram.oof) + head_oof) / 2).tolist(),
            )
            head = EmbeddingHead(
                encoder=encoder_name,
                center=tuple(round(float(v), 6) for v in center),
                weights=tuple(round(float(v), 5) for v in head_clf.coef_[0]),
                intercept=round(float(head_clf.intercept_[0]), 6),
                ngram_threshold=0.5,
            )
        three: _Head | None = None
        if near is not None and both is not None:
            _, _, train_sims, valid_sims = near
            members = np.array(rows)
            said = y.astype(np.float32)
            knn_oof = np.full(len(y), np.nan)
            if crossed is not None:
                knn_oof = crossed.knn_oof(members, said)
            else:
                for fold in range(params.folds):
                    held = np.arange(len(y)) % params.folds == fold
                    knn_oof[held] = weighed_votes(
                        train_sims[np.ix_(members[held], members[~held])], said[~held], K, POWER
                    )
            knn_valid = weighed_votes(
                valid_sims[np.ix_(np.array(judged, dtype=int), members)], said, K, POWER
            )
            three = _Head(
                valid=[(2 * b + float(v)) / 3 for b, v in zip(both.valid, knn_valid, strict=True)],
                oof=((2 * np.array(both.oof) + knn_oof) / 3).tolist(),
            )
        fold_rows = [
            _FoldRow(slug in train_rule_hits[i], bool(w), float(sample_weight[n]), training[i].real)
            for n, (i, w) in enumerate(zip(rows, y.tolist(), strict=True))
        ]
        outcome = _Outcome(
            wanted=[slug in validation[i].labels for i in judged],
            by_rules=[slug in rule_hits[i] for i in judged],
            fold_rows=fold_rows,
            combined=rules is not None,
            pool=params.threshold_pool,
            objective=params.objective,
            min_real_positives=params.min_real_positives,
        )
        ngram_threshold, ngram_metrics = outcome.choose(ngram)
        index_data: bytes | None = None
        if head is None or both is None:
            model = replace(draft, threshold=ngram_threshold)
            metrics = ngram_metrics
        else:
            threshold, metrics = outcome.choose(both)
            model = replace(
                draft, threshold=threshold, embedding=replace(head, ngram_threshold=ngram_threshold)
            )
            metrics = {**metrics, "encoder": head.encoder, "ngram_alone": ngram_metrics}
            if three is not None and near is not None:
                index_data, digest = near[0], near[1]
                threshold3, metrics3 = outcome.choose(three)
                model = replace(model, neighbours=NeighbourRef(digest, threshold3))
                metrics = {
                    **metrics3,
                    "encoder": head.encoder,
                    "neighbours": digest,
                    "two_heads": {
                        k: v for k, v in metrics.items() if k not in ("encoder", "ngram_alone")
                    },
                    "ngram_alone": ngram_metrics,
                }
        trained.append(
            TrainedTheme(
                model,
                {**metrics, "trained_on": len(rows), "validated_on": len(judged)},
                index_data,
            )
        )
    return trained


class _CrossFitted:
    """The training items' vectors in each fold's encoder, and out-of-fold probabilities from
    them (``CrossFit``)."""

    def __init__(self, cross_fit: CrossFit, training: Sequence[Example]) -> None:
        import numpy as np

        from pipeline.neighbours import unit_rows

        folds = len(cross_fit.encoders)
        self.fold = np.array(
            [tuning_fold(encoder_text(e.title, e.summary), folds) for e in training], dtype=int
        )
        self.vectors: list[Any] = []  # per fold: every training item, centred
        self.sims: list[Any] = []  # per fold: its items x the other folds' items
        self.where = np.zeros(len(training), dtype=int)  # an item's place in its fold's rows
        self.other_where: list[Any] = []  # per fold: the other items' places in its columns
        for k, enc in enumerate(cross_fit.encoders):
            v = np.array([t.values for t in encode_items(enc, _texts(training))])
            self.vectors.append(_centred(v, v.mean(axis=0)))
            mine = self.fold == k
            unit = unit_rows(v)
            self.sims.append(unit[mine] @ unit[~mine].T)
            self.where[mine] = np.arange(int(mine.sum()))
            others = np.full(len(training), -1)
            others[~mine] = np.arange(int((~mine).sum()))
            self.other_where.append(others)

    def head_oof(
        self, rows: Sequence[int], y: Any, weights: Any, c: float, fitted: Callable[..., Any]
    ) -> Any:
        import numpy as np

        idx = np.array(rows, dtype=int)
        probs = np.full(len(idx), np.nan)
        for k, x in enumerate(self.vectors):
            held = self.fold[idx] == k
            if not held.any() or y[~held].all() or not y[~held].any():
                continue
            clf = fitted(x[idx[~held]], y[~held], weights[~held], c)
            probs[held] = clf.predict_proba(x[idx[held]])[:, 1]
        return probs

    def knn_oof(self, members: Any, said: Any) -> Any:
        import numpy as np

        from pipeline.neighbours import POWER, K, weighed_votes

        votes = np.full(len(members), np.nan)
        for k, sims in enumerate(self.sims):
            held = self.fold[members] == k
            if not held.any():
                continue
            block = sims[np.ix_(self.where[members[held]], self.other_where[k][members[~held]])]
            votes[held] = weighed_votes(block, said[~held], K, POWER)
        return votes


def _texts(examples: Sequence[Example]) -> list[tuple[str, str]]:
    return [(e.title, e.summary) for e in examples]


def _centred(vectors: Any, center: Any) -> Any:
    """Vectors minus the centre, L2-normalised (as ``EmbeddingHead.probability`` reads them)."""
    import numpy as np

    if not len(vectors):
        return vectors
    x = vectors - center
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


@dataclass(frozen=True, slots=True)
class _Head:
    """One way of deciding: its probabilities on the validation items and out of fold (NaN:
    no out-of-fold model)."""

    valid: Sequence[float]
    oof: Sequence[float]


class _FoldRow(NamedTuple):
    """A training item as its out-of-fold probability is judged."""

    rule: bool  # the watchlists match it
    wanted: bool  # its label
    weight: float  # its weight in training
    real: bool  # real news (``Example.real``)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a theme's threshold is chosen against: the validation items' labels and rule hits,
    and the training items' rows in the order of the out-of-fold probabilities."""

    wanted: Sequence[bool]
    by_rules: Sequence[bool]
    fold_rows: Sequence[_FoldRow]
    combined: bool
    pool: Literal["real", "all"]  # the three as ``TrainParams`` has them
    objective: Literal["min_pr", "f1"]
    min_real_positives: int

    def _pool(self, head: _Head) -> list[tuple[float, bool, bool, float]]:
        """(probability, rule hit, label, weight) of the items the threshold is chosen on."""
        folded = [
            (p, row.rule, row.wanted, row.weight, row.real)
            for p, row in zip(head.oof, self.fold_rows, strict=True)
            if not math.isnan(p)
        ]
        real = [(p, r, w, n) for p, r, w, n, is_real in folded if is_real]
        if self.pool == "real" and sum(w for _, _, w, _ in real) >= self.min_real_positives:
            return real
        valid = [
            (p, r, w, 1.0) for p, r, w in zip(head.valid, self.by_rules, self.wanted, strict=True)
        ]
        return valid + [(p, r, w, n) for p, r, w, n, _ in folded]

    def choose(self, head: _Head) -> tuple[float, dict[str, Any]]:
        """The threshold with the best ``objective`` (rules OR model when ``combined``) over
        the ``pool``, each item counting as much as it does in training (``Example.weighed``),
        and the validation split's metrics at it."""
        pool = self._pool(head)
        threshold = 0.5
        if pool:
            best: tuple[float, float] | None = None
            for t in THRESHOLDS:
                tp = fp = fn = 0.0
                for p, r, w, n in pool:
                    hit = p >= t or (self.combined and r)
                    tp += n if hit and w else 0.0
                    fp += n if hit and not w else 0.0
                    fn += n if w and not hit else 0.0
                if not tp:
                    value = 0.0
                elif self.objective == "min_pr":
                    value = min(tp / (tp + fp), tp / (tp + fn))
                else:
                    value = 2 * tp / (2 * tp + fp + fn)
                if best is None or value > best[0] + 1e-9:
                    best = (value, t)
            assert best is not None
            threshold = best[1]
        model_hits = [p >= threshold for p in head.valid]
        model_scores = score(model_hits, self.wanted)
        metrics: dict[str, Any] = {
            "threshold": threshold,
            "model": {**model_scores.to_json(), "f1": round(model_scores.f1, 4)},
        }
        folded = [
            (p, row.wanted)
            for p, row in zip(head.oof, self.fold_rows, strict=True)
            if not math.isnan(p)
        ]
        if folded:  # how the model did out of fold, where most of the pool comes from
            oof = score([p >= threshold for p, _ in folded], [w for _, w in folded])
            metrics["out_of_fold"] = {**oof.to_json(), "f1": round(oof.f1, 4)}
        if self.combined:
            rules_only = score(self.by_rules, self.wanted)
            both = score(
                [m or r for m, r in zip(model_hits, self.by_rules, strict=True)], self.wanted
            )
            metrics["rules"] = {**rules_only.to_json(), "f1": round(rules_only.f1, 4)}
            metrics["combined"] = {**both.to_json(), "f1": round(both.f1, 4)}
        return threshold, metrics


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
        url = row.get("url")
        real = isinstance(url, str) and bool(url.strip())
        out.append(Example(title, summary or "", frozenset(labels), real=real))
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


def models_to_json(
    trained: Iterable[ThemeModel], indexes: Mapping[str, bytes] | None = None
) -> dict[str, Any]:
    """A model file: ``{"models": [...]}`` (the shipped default is one), with the neighbour
    indexes the models read, base64 by digest, under ``"indexes"``."""
    doc: dict[str, Any] = {"models": [m.to_json() for m in trained]}
    if indexes:
        doc["indexes"] = {d: base64.b64encode(data).decode("ascii") for d, data in indexes.items()}
    return doc


def indexes_from_json(raw: Any) -> dict[str, bytes]:
    """The neighbour indexes of a model file (digest → stored form), each checked against its
    digest and read once (``ModelFormatError`` otherwise)."""
    found = raw.get("indexes", {}) if isinstance(raw, Mapping) else {}
    if not isinstance(found, Mapping):
        msg = "indexes must be an object of base64 by digest"
        raise ModelFormatError(msg)
    out: dict[str, bytes] = {}
    for digest, text in found.items():
        try:
            data = base64.b64decode(text, validate=True)
        except (TypeError, ValueError):
            msg = f"the neighbour index {digest} is not base64"
            raise ModelFormatError(msg) from None
        if index_digest(data) != digest:
            msg = f"the neighbour index {digest} does not match its digest"
            raise ModelFormatError(msg)
        index_from_bytes(data)
        out[str(digest)] = data
    return out


def trained_indexes(trained: Iterable[TrainedTheme]) -> dict[str, bytes]:
    """The neighbour indexes the trained models read (digest → stored form)."""
    return {
        t.model.neighbours.index: t.index
        for t in trained
        if t.model.neighbours is not None and t.index is not None
    }


def models_from_json(raw: Any) -> list[ThemeModel]:
    """The models of a model file; ``ModelFormatError`` when it is not one."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("models"), list):
        msg = 'a model file is {"models": [...]}'
        raise ModelFormatError(msg)
    return [theme_model_from_json(m) for m in raw["models"]]


def shipped_model_text() -> str:
    """The default model file (``policywatch train --export`` built it from the shipped data)."""
    return _package_text(DEFAULT_MODELS_FILE)


def shipped_models() -> list[ThemeModel]:
    """The default models built from the shipped data."""
    return models_from_json(json.loads(shipped_model_text()))


def shipped_indexes() -> dict[str, bytes]:
    """The neighbour indexes the default models read (digest → stored form)."""
    return indexes_from_json(json.loads(shipped_model_text()))
