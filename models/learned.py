"""The learned second opinion: a linear model per theme over character n-grams. Pure.

Inference is a dot product, in the standard library only; training (scikit-learn) lives in
``pipeline.learning`` and uses ``features`` from here, so a model scores exactly the features it
was trained on.

Features
========

Title and summary are normalised as the watchlists are (``models.matching.normalize``: NFKC,
Traditional → Simplified, case folding), split into tokens (a run of Latin/other letters and
digits, or a run of CJK characters; Chinese needs no word segmentation), and each token, padded
with a space on both sides, gives its character n-grams of ``ngram_min``..``ngram_max``
characters (like scikit-learn's ``analyzer="char_wb"``). Title n-grams are counted once more
under a ``title_prefix`` so the model can weigh a term in the headline above one in the
summary. Features are binary and L2-normalised over *all* distinct n-grams of the item, so a
model needs only the weights of the n-grams it kept: nothing else about the vocabulary.

A model
=======

``score = intercept + Σ weight[n-gram] / sqrt(number of distinct n-grams)``; the probability is
the logistic of the score; the theme matches when the probability reaches the model's
``threshold`` (chosen on a validation split when it was trained). The model also keeps some
labelled headlines of its theme: an item matched by the model alone is explained by the nearest
of them ("similar to: ..."), by cosine similarity over the same features.

A second head: a sentence encoder
=================================

Character n-grams know spellings, not the world: that ByteDance buying Broadcom chips is a chip
story. A model may carry an ``EmbeddingHead``, a logistic regression over the vector a
multilingual sentence encoder gives the item's text (``encoder_text``; the encoder itself is an
adapter, ``pipeline.encoder``, whose weights ship in its package). With a vector from the same
encoder the theme's probability is the mean of the two heads' and ``threshold`` applies; without
one (the encoder is off, missing, or a different one) the n-gram head decides alone, at the
head's ``ngram_threshold``. Both thresholds were chosen on the validation split.

A third opinion: the nearest labelled items
===========================================

A model with an encoder head may also name a neighbour index (``NeighbourRef``; the index is
``models.neighbours``): the labelled items of its training run, as vectors. The vote of an
item's nearest labelled items for the theme (``Neighbours``, worked out by the adapter that
holds the index) is averaged with both heads, at ``NeighbourRef.threshold``; without a vote
from that index (it is missing, or the encoder is off) the two heads decide as above.

Stored models are JSON (``ThemeModel.to_json`` / ``theme_model_from_json``): never pickle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from models.matching import Matcher, ThemeMatch, normalize

FORMAT = 3  # the stored format (2 added the encoder head, 3 the neighbours); others are refused
READABLE_FORMATS = frozenset({1, 2, 3})
MAX_TEXT = 2_000  # characters of title + summary looked at (a summary can be a whole article)
ENCODER_TEXT = 600  # characters of "title. summary" a sentence encoder reads

_TOKEN = re.compile(
    r"[\u2e80-\u2fdf\u3040-\u312f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    r"\U00020000-\U0003134f]+"
    r"|[^\W_\u2e80-\u2fdf\u3040-\u312f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    r"\U00020000-\U0003134f]+"
)


class ModelFormatError(ValueError):
    """A stored model that cannot be read (a different format, or broken JSON)."""


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """How text becomes features; stored with each model and used unchanged at inference."""

    ngram_min: int = 1
    ngram_max: int = 4
    title_prefix: str = "t|"

    def __post_init__(self) -> None:
        if not 1 <= self.ngram_min <= self.ngram_max <= 8:
            msg = f"bad n-gram range {self.ngram_min}..{self.ngram_max}"
            raise ValueError(msg)

    def to_json(self) -> dict[str, Any]:
        return {
            "ngram_min": self.ngram_min,
            "ngram_max": self.ngram_max,
            "title_prefix": self.title_prefix,
        }


def _ngrams(text: str, config: FeatureConfig, out: set[str], prefix: str = "") -> None:
    lo, hi = config.ngram_min, config.ngram_max
    for token in _TOKEN.findall(text):
        padded = f" {token} "
        size = len(padded)
        if size <= lo:
            out.add(prefix + padded)
            continue
        for n in range(lo, min(hi, size) + 1):
            if prefix:
                out.update([prefix + padded[i : i + n] for i in range(size - n + 1)])
            else:
                out.update([padded[i : i + n] for i in range(size - n + 1)])


def features(title: str, summary: str, config: FeatureConfig) -> frozenset[str]:
    """The distinct n-gram features of an item (see the module docstring)."""
    title_n = normalize(title[:MAX_TEXT])
    summary_n = normalize(summary[: max(0, MAX_TEXT - len(title_n))])
    out: set[str] = set()
    _ngrams(title_n, config, out)
    _ngrams(summary_n, config, out)
    if config.title_prefix:
        _ngrams(title_n, config, out, config.title_prefix)
    return frozenset(out)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def encoder_text(title: str, summary: str) -> str:
    """What a sentence encoder reads of an item: the headline, then the summary, capped."""
    return f"{title}. {summary}".strip()[:ENCODER_TEXT]


@dataclass(frozen=True, slots=True)
class Neighbours:
    """What an item's nearest labelled items in the index ``index`` (a digest) say: per theme
    slug, the weighed share of them labelled with the theme (0..1)."""

    index: str
    votes: Mapping[str, float]
    # per theme slug, the most similar indexed headline labelled with it (indexes that store
    # headlines): what an alert the model alone matched shows as "similar to"
    nearest: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextVector:
    """A sentence encoder's vector of an item's ``encoder_text``; ``encoder`` names the encoder
    (and its version), so a head only scores vectors of the encoder it was trained on. It may
    carry the votes of the item's nearest labelled items in one or more indexes."""

    encoder: str
    values: tuple[float, ...]
    neighbours: tuple[Neighbours, ...] = ()  # one per index asked


@dataclass(frozen=True, slots=True)
class NeighbourRef:
    """The neighbour index (by digest) a model reads, and the threshold for the mean of the
    three opinions."""

    index: str
    threshold: float

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "threshold": self.threshold}


@dataclass(frozen=True, slots=True)
class EmbeddingHead:
    """A logistic regression over an encoder's vectors, centred on the training items' mean
    vector and L2-normalised (e5 vectors share a large common component)."""

    encoder: str
    center: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    ngram_threshold: float  # the n-gram head's threshold when it decides alone

    def __post_init__(self) -> None:
        if not self.weights or len(self.center) != len(self.weights):
            msg = "an encoder head needs as many weights as centre values"
            raise ValueError(msg)

    def probability(self, vector: TextVector) -> float | None:
        """The head's probability, or None for a vector of another encoder or size."""
        if vector.encoder != self.encoder or len(vector.values) != len(self.weights):
            return None
        x = [v - c for v, c in zip(vector.values, self.center, strict=True)]
        norm = math.sqrt(sum(v * v for v in x))
        if not norm:
            return _sigmoid(self.intercept)
        dot = sum(w * v for w, v in zip(self.weights, x, strict=True))
        return _sigmoid(self.intercept + dot / norm)

    def to_json(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "center": list(self.center),
            "weights": list(self.weights),
            "intercept": self.intercept,
            "ngram_threshold": self.ngram_threshold,
        }


@dataclass(frozen=True, slots=True)
class _Headline:
    """A labelled headline kept with a model to explain its matches, with its features."""

    title: str
    features: frozenset[str] = field(default=frozenset(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ThemeModel:
    """One theme's linear model, as trained and stored."""

    slug: str
    config: FeatureConfig
    weights: Mapping[str, float]
    intercept: float
    threshold: float
    examples: tuple[str, ...] = ()
    version: int = 0  # the stored version (0: not stored, e.g. the shipped default file)
    embedding: EmbeddingHead | None = None
    neighbours: NeighbourRef | None = None

    def probability(self, feats: frozenset[str]) -> float:
        """The n-gram head's probability."""
        if not feats:
            return _sigmoid(self.intercept)
        weights = self.weights
        total = sum(weights.get(f, 0.0) for f in feats)
        return _sigmoid(self.intercept + total / math.sqrt(len(feats)))

    def decide(self, ngram_p: float, vector: TextVector | None) -> tuple[float, float]:
        """(probability, threshold) from the n-gram head's probability and the item's vector:
        the mean of both heads and the neighbours' vote when there is one from the model's
        index, of both heads when the encoder head can read the vector, else the n-gram head
        alone at its own threshold."""
        head = self.embedding
        if head is None:
            return ngram_p, self.threshold
        p = head.probability(vector) if vector is not None else None
        if p is None or vector is None:
            return ngram_p, head.ngram_threshold
        ref = self.neighbours
        if ref is not None:
            for near in vector.neighbours:
                vote = near.votes.get(self.slug) if near.index == ref.index else None
                if vote is not None:
                    return (ngram_p + p + vote) / 3, ref.threshold
        return (ngram_p + p) / 2, self.threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "slug": self.slug,
            "features": self.config.to_json(),
            "intercept": self.intercept,
            "threshold": self.threshold,
            "weights": dict(self.weights),
            "examples": list(self.examples),
            "embedding": self.embedding.to_json() if self.embedding else None,
            "neighbours": self.neighbours.to_json() if self.neighbours else None,
        }


def _number(raw: Any, name: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        msg = f"{name} must be a finite number"
        raise ModelFormatError(msg)
    return float(raw)


def theme_model_from_json(raw: Any, *, version: int = 0) -> ThemeModel:
    """A model from its stored JSON; ``ModelFormatError`` says what is wrong."""
    if not isinstance(raw, Mapping):
        msg = "a model must be a JSON object"
        raise ModelFormatError(msg)
    if raw.get("format") not in READABLE_FORMATS:
        msg = (
            f"unknown model format {raw.get('format')!r} "
            f"(this version reads {', '.join(map(str, sorted(READABLE_FORMATS)))})"
        )
        raise ModelFormatError(msg)
    slug = raw.get("slug")
    feats = raw.get("features")
    weights = raw.get("weights")
    examples = raw.get("examples", [])
    if not isinstance(slug, str) or not slug:
        msg = "a model needs its theme's slug"
        raise ModelFormatError(msg)
    if not isinstance(feats, Mapping) or not isinstance(weights, Mapping):
        msg = "a model needs its features and weights"
        raise ModelFormatError(msg)
    if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
        msg = "examples must be a list of headlines"
        raise ModelFormatError(msg)
    try:
        config = FeatureConfig(
            ngram_min=int(feats["ngram_min"]),
            ngram_max=int(feats["ngram_max"]),
            title_prefix=str(feats.get("title_prefix", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"bad feature settings: {exc}"
        raise ModelFormatError(msg) from None
    clean = {str(k): _number(v, f"weight of {k!r}") for k, v in weights.items()}
    embedding = _head_from_json(raw.get("embedding"))
    neighbours = _neighbours_from_json(raw.get("neighbours"))
    if neighbours is not None and embedding is None:
        msg = "a model that reads neighbours needs an encoder head"
        raise ModelFormatError(msg)
    return ThemeModel(
        slug=slug,
        config=config,
        weights=clean,
        intercept=_number(raw.get("intercept"), "intercept"),
        threshold=_number(raw.get("threshold"), "threshold"),
        examples=tuple(examples),
        version=version,
        embedding=embedding,
        neighbours=neighbours,
    )


def _neighbours_from_json(raw: Any) -> NeighbourRef | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("index"), str) or not raw["index"]:
        msg = "neighbours is an object naming its index"
        raise ModelFormatError(msg)
    return NeighbourRef(raw["index"], _number(raw.get("threshold"), "the neighbours' threshold"))


def _head_from_json(raw: Any) -> EmbeddingHead | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("encoder"), str):
        msg = "an encoder head is an object naming its encoder"
        raise ModelFormatError(msg)
    center, weights = raw.get("center"), raw.get("weights")
    if not isinstance(center, list) or not isinstance(weights, list):
        msg = "an encoder head needs its centre and weights as lists"
        raise ModelFormatError(msg)
    if not weights or len(center) != len(weights):
        msg = "an encoder head needs as many weights as centre values"
        raise ModelFormatError(msg)
    return EmbeddingHead(
        encoder=raw["encoder"],
        center=tuple(_number(v, "a centre value") for v in center),
        weights=tuple(_number(v, "an encoder weight") for v in weights),
        intercept=_number(raw.get("intercept"), "the encoder intercept"),
        ngram_threshold=_number(raw.get("ngram_threshold"), "ngram_threshold"),
    )


@dataclass(frozen=True, slots=True)
class ModelMatch:
    """A theme the learned model matched, with its probability and the nearest example."""

    slug: str
    probability: float
    similar_to: str | None
    version: int = 0


class ModelSet:
    """The active models of several themes (one feature configuration shared when possible).

    ``predict`` scores every theme; ``matches`` keeps those at or above their threshold and
    explains each with its nearest example.
    """

    def __init__(self, models: Iterable[ThemeModel]) -> None:
        self._models = {m.slug: m for m in models}
        self._examples: dict[str, list[_Headline]] = {}
        # Per feature configuration: the themes using it, and each n-gram's weights in them,
        # so an item's n-grams are looked up once for all themes.
        self._merged: dict[
            FeatureConfig, tuple[list[ThemeModel], dict[str, list[tuple[int, float]]]]
        ]
        self._merged = {}
        for model in self._models.values():
            group, weights = self._merged.setdefault(model.config, ([], {}))
            index = len(group)
            group.append(model)
            for ngram, weight in model.weights.items():
                if weight:
                    weights.setdefault(ngram, []).append((index, weight))
        self._known = {config: frozenset(w) for config, (_, w) in self._merged.items()}

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(self._models)

    def model(self, slug: str) -> ThemeModel | None:
        return self._models.get(slug)

    def __bool__(self) -> bool:
        return bool(self._models)

    @property
    def encoders(self) -> frozenset[str]:
        """The encoders whose vectors some model's head reads (empty: no vectors needed)."""
        return frozenset(m.embedding.encoder for m in self._models.values() if m.embedding)

    @property
    def indexes(self) -> frozenset[str]:
        """The neighbour indexes (digests) some model reads."""
        return frozenset(m.neighbours.index for m in self._models.values() if m.neighbours)

    def predict(self, title: str, summary: str = "") -> dict[str, float]:
        """The n-gram probability of every theme (by slug), as each model's ``probability``."""
        out: dict[str, float] = {}
        for config, (group, weights) in self._merged.items():
            feats = features(title, summary, config)
            totals = [0.0] * len(group)
            for ngram in feats & self._known[config]:
                for index, weight in weights[ngram]:
                    totals[index] += weight
            scale = 1.0 / math.sqrt(len(feats)) if feats else 0.0
            for model, total in zip(group, totals, strict=True):
                out[model.slug] = _sigmoid(model.intercept + total * scale)
        return out

    def decisions(
        self, title: str, summary: str = "", vector: TextVector | None = None
    ) -> dict[str, tuple[float, float]]:
        """Every theme's (probability, threshold), as ``ThemeModel.decide`` gives them."""
        return {
            slug: self._models[slug].decide(ngram_p, vector)
            for slug, ngram_p in self.predict(title, summary).items()
        }

    def matches(
        self,
        title: str,
        summary: str = "",
        *,
        explain: Sequence[str] | None = None,
        vector: TextVector | None = None,
    ) -> list[ModelMatch]:
        """The themes whose model reaches its threshold (``ThemeModel.decide``: with the
        encoder head when ``vector`` is given), most probable first. Only the themes in
        ``explain`` (all when None) get their nearest example looked up: by meaning, from the
        model's neighbour index, when the vector carries it, else by shared n-grams among the
        model's examples."""
        found: list[ModelMatch] = []
        for slug, (p, threshold) in self.decisions(title, summary, vector).items():
            model = self._models[slug]
            if p < threshold:
                continue
            similar = None
            if explain is None or slug in explain:
                similar = _nearest_by_meaning(model, vector) or self.nearest(
                    slug, features(title, "", model.config)
                )
            found.append(ModelMatch(slug, p, similar, model.version))
        found.sort(key=lambda m: (-m.probability, m.slug))
        return found

    def nearest(self, slug: str, feats: frozenset[str]) -> str | None:
        """The theme's labelled headline most like ``feats`` (cosine over binary features)."""
        model = self._models.get(slug)
        if model is None or not model.examples or not feats:
            return None
        examples = self._examples.get(slug)
        if examples is None:
            examples = [_Headline(t, features(t, "", model.config)) for t in model.examples]
            self._examples[slug] = examples
        best, best_score = None, 0.0
        for example in examples:
            if not example.features:
                continue
            shared = len(feats & example.features)
            score = shared / math.sqrt(len(feats) * len(example.features))
            if score > best_score:
                best, best_score = example.title, score
        return best


def _nearest_by_meaning(model: ThemeModel, vector: TextVector | None) -> str | None:
    """The labelled headline of the model's theme nearest the item in its encoder's space, from
    the model's own neighbour index, when the vector carries its votes."""
    ref = model.neighbours
    if ref is None or vector is None:
        return None
    for near in vector.neighbours:
        if near.index == ref.index:
            return near.nearest.get(model.slug)
    return None


def combine(
    rule_matches: Sequence[ThemeMatch], model_matches: Sequence[ModelMatch]
) -> list[ThemeMatch]:
    """The shipped combination, rules OR model: a theme either layer matched.

    A theme both matched keeps the rules' terms as its explanation (``layer="both"``); one the
    model alone matched is explained by its nearest labelled headline (``layer="model"``) and
    scores its probability, below any rule match.
    """
    by_model = {m.slug: m for m in model_matches}
    out: list[ThemeMatch] = []
    for match in rule_matches:
        found = by_model.pop(match.slug, None)
        if found is None:
            out.append(match)
        else:
            out.append(
                replace(
                    match,
                    layer="both",
                    probability=found.probability,
                    model_version=found.version,
                )
            )
    out.extend(
        ThemeMatch(
            slug=m.slug,
            score=round(m.probability, 4),
            terms=(),
            layer="model",
            probability=m.probability,
            similar_to=m.similar_to,
            model_version=m.version,
        )
        for m in sorted(by_model.values(), key=lambda m: (-m.probability, m.slug))
    )
    return out


def classify_with_model(
    matcher: Matcher,
    models: ModelSet,
    title: str,
    summary: str = "",
    vector: TextVector | None = None,
) -> list[ThemeMatch]:
    """Rules and the learned models together (``combine``); the rules alone without models.
    ``vector`` is the item's sentence-encoder vector, when there is one.

    The model does not match a theme alone when an editor's disambiguation rules it out
    (``Matcher.excluded``: "Ernie AND (...) NOT (Els OR golf*)" finding Ernie Els)."""
    found = matcher.classify(title, summary)
    if not models:
        return found
    ruled = {m.slug for m in found}
    explain = [slug for slug in models.slugs if slug not in ruled]
    by_model = models.matches(title, summary, explain=explain, vector=vector)
    if any(m.slug not in ruled for m in by_model):
        vetoed = matcher.excluded(title, summary)
        by_model = [m for m in by_model if m.slug in ruled or m.slug not in vetoed]
    return combine(found, by_model)
