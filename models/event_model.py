"""The learned judge of "does this item report that event?": gradient-boosted decision trees
over the features ``models.events.pair_features`` computes, evaluated in plain Python.

Trained by ``pipeline.event_training`` (scikit-learn) on the blind labelled event sets and
shipped as JSON (``models/data/event_model.json``): no pickle, nothing downloaded. A file whose
feature names differ from the code's is refused, so a model can never be read against the
wrong features.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

FORMAT = 1
MODEL_PACKAGE = "models.data"
MODEL_FILE = "event_model.json"


class EventModelError(ValueError):
    """A model file that is not one (or not for these features)."""


@dataclass(frozen=True, slots=True)
class Tree:
    """One regression tree: node i splits on ``feature[i] <= threshold[i]`` (left) or is a
    leaf (``left[i] == -1``) worth ``value[i]``."""

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]

    def leaf_value(self, x: Sequence[float]) -> float:
        node = 0
        while self.left[node] != -1:
            node = (
                self.left[node]
                if x[self.feature[node]] <= self.threshold[node]
                else self.right[node]
            )
        return self.value[node]


@dataclass(frozen=True, slots=True)
class PairModel:
    """Log-odds ``init + rate × Σ trees``; an item joins an event at ``threshold`` or above."""

    features: tuple[str, ...]
    init: float
    rate: float
    trees: tuple[Tree, ...]
    threshold: float
    metrics: Mapping[str, Any]

    def probability(self, x: Sequence[float]) -> float:
        raw = self.init + self.rate * sum(tree.leaf_value(x) for tree in self.trees)
        return 1.0 / (1.0 + math.exp(-raw)) if raw > -700 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "features": list(self.features),
            "init": self.init,
            "rate": self.rate,
            "threshold": self.threshold,
            "trees": [
                {
                    "feature": list(t.feature),
                    "threshold": list(t.threshold),
                    "left": list(t.left),
                    "right": list(t.right),
                    "value": list(t.value),
                }
                for t in self.trees
            ],
            "metrics": dict(self.metrics),
        }


def model_from_json(raw: Any, features: Sequence[str]) -> PairModel:
    """Read a model file; EventModelError when it is malformed or made for other features."""
    if not isinstance(raw, Mapping) or raw.get("format") != FORMAT:
        msg = f"not an event model file (format {FORMAT} expected)"
        raise EventModelError(msg)
    if list(raw.get("features", [])) != list(features):
        msg = "the model was trained on other features than this code computes"
        raise EventModelError(msg)
    try:
        trees = tuple(
            Tree(
                feature=tuple(int(v) for v in t["feature"]),
                threshold=tuple(float(v) for v in t["threshold"]),
                left=tuple(int(v) for v in t["left"]),
                right=tuple(int(v) for v in t["right"]),
                value=tuple(float(v) for v in t["value"]),
            )
            for t in raw["trees"]
        )
        model = PairModel(
            features=tuple(features),
            init=float(raw["init"]),
            rate=float(raw["rate"]),
            trees=trees,
            threshold=float(raw["threshold"]),
            metrics=dict(raw.get("metrics") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"malformed event model: {exc}"
        raise EventModelError(msg) from None
    width = len(features)
    for tree in trees:
        sizes = {len(tree.feature), len(tree.threshold), len(tree.left), len(tree.right)}
        if sizes != {len(tree.value)} or not tree.value:
            msg = "malformed event model: a tree's arrays differ in length"
            raise EventModelError(msg)
        n = len(tree.value)
        for i, (f, lo, hi) in enumerate(zip(tree.feature, tree.left, tree.right, strict=True)):
            if lo != -1 and not (0 <= f < width and i < lo < n and i < hi < n):
                msg = "malformed event model: a split points outside its tree"
                raise EventModelError(msg)
    return model


@lru_cache(maxsize=4)
def shipped_model(features: tuple[str, ...]) -> PairModel:
    """The model shipped with the package, for these feature names (read once)."""
    text = resources.files(MODEL_PACKAGE).joinpath(MODEL_FILE).read_text(encoding="utf-8")
    return model_from_json(json.loads(text), features)
