"""The neighbour index in memory: built from a training run's vectors, and asked for the vote
of an item's nearest labelled items (``models.neighbours`` is its stored form, and says how a
vote is counted). numpy, which the sentence encoder needs anyway.

With 4,800 labelled items of 384 values an item's votes for every theme are one matrix-vector
product and a partial sort per theme: well under a millisecond beside the encoder's 30 ms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from models.learned import ModelFormatError, ModelSet, Neighbours, TextVector
from models.neighbours import MAX_TITLE, NeighbourIndex, index_digest, index_from_bytes

K = 10  # neighbours that vote
POWER = 3.0  # a neighbour's vote is weighed by its cosine similarity to this power


def unit_rows(vectors: Any) -> Any:
    """Each row scaled to length 1 (zero rows stay zero)."""
    x = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def build_index(
    encoder: str,
    vectors: Any,
    labels: Sequence[frozenset[str]],
    about: Sequence[frozenset[str] | None],
    slugs: Sequence[str],
    *,
    titles: Sequence[str | None] = (),
    k: int = K,
    power: float = POWER,
) -> NeighbourIndex:
    """The index of labelled items: their vectors (any length; stored at unit length, 8 bits
    each with a scale per vector), labels, the themes each was judged about (None: all) and
    the headlines that may be shown as "similar to" (None: not to be shown)."""
    unit = unit_rows(vectors).reshape(len(labels), -1)
    peak = np.abs(unit).max(axis=1) if len(unit) else np.zeros(0, dtype=np.float32)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype("<f4")
    quantised = np.clip(np.rint(unit / scales[:, None]), -127, 127).astype(np.int8)
    position = {slug: i for i, slug in enumerate(slugs)}

    def positions(names: frozenset[str]) -> frozenset[int]:
        return frozenset(position[s] for s in names if s in position)

    return NeighbourIndex(
        encoder=encoder,
        dims=int(unit.shape[1]),
        k=k,
        power=power,
        slugs=tuple(slugs),
        labels=tuple(positions(names) for names in labels),
        about=tuple(None if names is None else positions(names) for names in about),
        vectors=quantised.tobytes(),
        scales=scales.tobytes(),
        titles=tuple(t[:MAX_TITLE] if t else None for t in titles),
    )


def weighed_votes(sims: Any, labels: Any, k: int, power: float) -> Any:
    """For each row of ``sims`` (queries x candidates), the vote of its ``k`` most similar
    candidates: Σ cos^power · label / Σ cos^power (negative similarities weigh nothing; when
    every weight is zero, the plain share). NaN for a row without candidates."""
    rows, width = sims.shape
    if width == 0:
        return np.full(rows, np.nan)
    if k < width:
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        near, said = np.take_along_axis(sims, top, axis=1), labels[top]
    else:  # every candidate votes
        near, said = sims, np.broadcast_to(labels, sims.shape)
    weights = np.clip(near, 0.0, None) ** power
    total = weights.sum(axis=1)
    share = said.mean(axis=1)
    weighed = (weights * said).sum(axis=1) / np.where(total > 0, total, 1.0)
    return np.where(total > 0, weighed, share)


class LoadedIndex:
    """An index ready to vote: its vectors as a float matrix, per theme the items judged about
    it and their labels, and the labelled items whose headline may be shown."""

    def __init__(self, index: NeighbourIndex, digest: str) -> None:
        self.digest = digest
        self.encoder = index.encoder
        self.dims = index.dims
        self.k = index.k
        self.power = index.power
        vectors = np.frombuffer(index.vectors, dtype=np.int8).reshape(index.count, index.dims)
        scales = np.frombuffer(index.scales, dtype="<f4")
        self.matrix = unit_rows(vectors.astype(np.float32) * scales[:, None])
        self.titles = index.titles
        self.themes: dict[str, tuple[Any, Any]] = {}
        self.shown: dict[str, Any] = {}  # per theme, its labelled items with a headline
        for position, slug in enumerate(index.slugs):
            judged = np.array(
                [about is None or position in about for about in index.about], dtype=bool
            )
            members = np.flatnonzero(judged)
            said = np.array([position in index.labels[i] for i in members], dtype=np.float32)
            self.themes[slug] = (members, said)
            shown = [
                i for i, title in enumerate(index.titles) if title and position in index.labels[i]
            ]
            if shown:
                self.shown[slug] = np.array(shown)

    def votes(self, vectors: Sequence[TextVector | None]) -> list[TextVector | None]:
        """The vectors with their neighbours' votes and, per theme, the nearest labelled
        headline (those of another encoder or size, and Nones, as they were)."""
        usable = [
            (i, v)
            for i, v in enumerate(vectors)
            if v is not None and v.encoder == self.encoder and len(v.values) == self.dims
        ]
        out = list(vectors)
        if not usable or not len(self.matrix):
            return out
        sims = unit_rows([v.values for _, v in usable]) @ self.matrix.T
        by_theme = {
            slug: weighed_votes(sims[:, members], said, self.k, self.power)
            for slug, (members, said) in self.themes.items()
            if len(members)
        }
        nearest = {
            slug: rows[np.argmax(sims[:, rows], axis=1)] for slug, rows in self.shown.items()
        }
        for row, (i, vector) in enumerate(usable):
            votes = {slug: float(v[row]) for slug, v in by_theme.items()}
            titles = {slug: self.titles[best[row]] or "" for slug, best in nearest.items()}
            near = Neighbours(self.digest, votes, titles)
            out[i] = replace(vector, neighbours=(*vector.neighbours, near))
        return out


def load_index(digest: str, data: bytes) -> LoadedIndex:
    """An index from its stored form; ``ModelFormatError`` when it is not one, or when its
    bytes are not the ones its digest names."""
    if index_digest(data) != digest:
        msg = f"the neighbour index {digest} does not match its digest"
        raise ModelFormatError(msg)
    return LoadedIndex(index_from_bytes(data), digest)


def vote(
    indexes: Sequence[LoadedIndex], vectors: Sequence[TextVector | None]
) -> list[TextVector | None]:
    """The vectors with the votes of each index's nearest labelled items (CPU: run it in a
    thread)."""
    out = list(vectors)
    for index in indexes:
        out = index.votes(out)
    return out


def vote_with(
    models: ModelSet, stored: Mapping[str, bytes], vectors: Sequence[TextVector | None]
) -> list[TextVector | None]:
    """The votes of the indexes in ``stored`` (a model file's: digest → stored form) that
    ``models`` read: for callers that classify without a database (``policywatch classify``,
    scoring, benchmarks)."""
    wanted = sorted(models.indexes & stored.keys())
    if not wanted or not any(vectors):
        return list(vectors)
    return vote([load_index(d, stored[d]) for d in wanted], vectors)
