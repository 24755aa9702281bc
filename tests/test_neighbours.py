"""The third opinion: the vote of an item's nearest labelled items (``models.neighbours``,
``pipeline.neighbours``), from training through storage to the alert; and what a broken or
missing index does (the two heads decide, nothing stops)."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import replace

import pytest
from sqlalchemy import delete, func, select
from structlog.testing import capture_logs

from models.db.learned import KEEP_VERSIONS
from models.db.tables import Item, NeighbourIndexRow
from models.learned import (
    EmbeddingHead,
    FeatureConfig,
    ModelFormatError,
    ModelSet,
    NeighbourRef,
    Neighbours,
    TextVector,
    ThemeModel,
    theme_model_from_json,
)
from models.neighbours import MAGIC, index_digest, index_from_bytes, index_to_bytes
from pipeline.classification import Classifier
from pipeline.learning import (
    Example,
    TrainParams,
    indexes_from_json,
    models_to_json,
    train_models,
    trained_indexes,
)
from pipeline.neighbours import build_index, load_index, vote, vote_with
from pipeline.training import retrain
from tests.conftest import Database
from tests.test_classification import NOW, item, setup, store
from tests.test_learned_pipeline import stored

SMALL = TrainParams(config=FeatureConfig(1, 3, "t|"), c=10.0, min_df=1, keep=2_000)

# Where an item lies is two facts, each alone saying nothing about the theme: the theme is
# "north-east or south-west". No straight line separates that (XOR), so neither linear head can
# learn it; the nearest labelled items can.
NS = {"north": 1.0, "south": -1.0}
EW = {"east": 1.0, "west": -1.0}


class CompassEncoder:
    """A fake encoder: axis 0 is north/south, axis 1 east/west, axis 2 a little noise."""

    name = "fake-compass-1"

    def encode(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        out: list[tuple[float, ...]] = []
        for text in texts:
            words = text.lower().split()
            ns = next((NS[w] for w in words if w in NS), 0.0)
            ew = next((EW[w] for w in words if w in EW), 0.0)
            out.append((ns, ew, (len(text) % 7) / 50))
        return out


def compass(n: int = 12) -> list[Example]:
    """Labelled items of the four corners; the theme is north-east or south-west."""
    rows = []
    for i in range(n):
        for ns in NS:
            for ew in EW:
                wanted = (ns, ew) in {("north", "east"), ("south", "west")}
                title = f"{ns} {ew} report {i}"
                rows.append(Example(title, "", frozenset({"chips"}) if wanted else frozenset()))
    return rows


def test_an_index_round_trips_and_votes_with_its_nearest_items() -> None:
    labels = [frozenset({"chips"}), frozenset({"chips"}), frozenset(), frozenset({"chips"})]
    about = [None, None, None, frozenset({"chips"})]
    vectors = [(1.0, 0.0), (0.9, 0.1), (-1.0, 0.0), (0.0, 1.0)]
    index = build_index("enc", vectors, labels, about, ["chips", "other"], k=2, power=1.0)
    data = index_to_bytes(index)
    again = index_from_bytes(data)
    assert again == index
    assert again.count == 4
    loaded = load_index(index_digest(data), data)
    near_chips, near_other, foreign = loaded.votes(
        [
            TextVector("enc", (1.0, 0.05)),
            TextVector("enc", (-1.0, 0.05)),
            TextVector("another-encoder", (1.0, 0.05)),
        ]
    )
    assert near_chips is not None
    assert near_other is not None
    [chips_vote] = near_chips.neighbours
    assert chips_vote.index == index_digest(data)
    assert chips_vote.votes["chips"] == pytest.approx(1.0)  # both nearest are labelled chips
    # "other": only the three items about every theme count (the fourth was about chips alone)
    assert chips_vote.votes["other"] == 0.0
    assert near_other.neighbours[0].votes["chips"] < 0.6
    assert foreign == TextVector("another-encoder", (1.0, 0.05))  # not this index's encoder
    assert vote([], [None]) == [None]
    assert chips_vote.nearest == {}  # this index stores no headlines
    titled = build_index(
        "enc", vectors, labels, about, ["chips", "other"], titles=["a", None, "c", "d"]
    )
    assert index_from_bytes(index_to_bytes(titled)) == titled


def test_a_broken_index_is_refused_with_what_is_wrong() -> None:
    index = build_index("enc", [(1.0, 0.0)], [frozenset({"chips"})], [None], ["chips"])
    data = index_to_bytes(index)
    header_end = len(MAGIC) + 4 + struct.unpack_from("<I", data, len(MAGIC))[0]
    header = json.loads(data[len(MAGIC) + 4 : header_end])

    def with_header(**changes: object) -> bytes:
        raw = json.dumps({**header, **changes}).encode()
        return MAGIC + struct.pack("<I", len(raw)) + raw + data[header_end:]

    for broken, message in [
        (b"GIF89a" + data[6:], "does not start as one"),
        (data[:-3], "bytes of vectors"),
        (data + b"\0", "bytes of vectors"),
        (MAGIC + struct.pack("<I", 10**6) + b"{}", "cut short"),
        (MAGIC + struct.pack("<I", 2) + b"[]", "not an object"),
        (MAGIC + struct.pack("<I", 3) + b"{\xff}", "not JSON"),
        (with_header(count=5), "labelled items"),
        (with_header(labels=[[7]]), "names no theme"),
        (with_header(power=True), "power must be a number"),
        (with_header(k="ten"), "bad header field"),
        (with_header(encoder=""), "names no encoder"),
        (with_header(titles=[1]), "bad header field"),
        (with_header(titles=["a", "b"]), "2 titles for 1 items"),
        (with_header(titles=["x" * 1001]), "longer than 1000 characters"),
    ]:
        with pytest.raises(ModelFormatError, match=message):
            index_from_bytes(broken)
    with pytest.raises(ModelFormatError, match="does not match its digest"):
        load_index("sha256:" + "0" * 64, data)
    with pytest.raises(ModelFormatError, match="does not match its digest"):
        indexes_from_json({"indexes": {"sha256:" + "0" * 64: "AAAA"}})
    with pytest.raises(ModelFormatError, match="not base64"):
        indexes_from_json({"indexes": {index_digest(data): "not base64!"}})


def head() -> EmbeddingHead:
    return EmbeddingHead("enc", (0.0, 0.0), (0.0, 0.0), 0.0, ngram_threshold=0.8)


def test_the_three_opinions_are_averaged_only_with_a_vote_from_the_models_index() -> None:
    model = ThemeModel(
        "chips",
        FeatureConfig(),
        {},
        0.0,
        0.6,
        embedding=head(),
        neighbours=NeighbourRef("sha256:abc", 0.4),
    )
    plain = TextVector("enc", (1.0, 0.0))  # the head says 0.5 to everything
    voted = TextVector("enc", (1.0, 0.0), (Neighbours("sha256:abc", {"chips": 0.9}),))
    other = TextVector("enc", (1.0, 0.0), (Neighbours("sha256:old", {"chips": 0.9}),))
    assert model.decide(0.3, voted) == (pytest.approx((0.3 + 0.5 + 0.9) / 3), 0.4)  # type: ignore[comparison-overlap]
    for two_heads in (plain, other):  # no vote, or another index's: two heads, their threshold
        p, threshold = model.decide(0.3, two_heads)
        assert p == pytest.approx(0.4)
        assert threshold == 0.6
    assert model.decide(0.3, None) == (0.3, 0.8)  # no vector: the n-gram head alone
    again = theme_model_from_json(json.loads(json.dumps(model.to_json())))
    assert again.neighbours == model.neighbours
    assert ModelSet([again]).indexes == {"sha256:abc"}
    raw = model.to_json()
    with pytest.raises(ModelFormatError, match="naming its index"):
        theme_model_from_json(raw | {"neighbours": {"threshold": 0.4}})
    with pytest.raises(ModelFormatError, match="needs an encoder head"):
        theme_model_from_json(raw | {"embedding": None})


def test_the_neighbours_learn_what_no_straight_line_can() -> None:
    encoder = CompassEncoder()
    training = compass()
    [trained] = train_models(["chips"], training, compass(4), params=SMALL, encoder=encoder)
    model = trained.model
    assert model.neighbours is not None
    assert trained.index is not None
    assert model.neighbours.index == index_digest(trained.index)
    assert trained.metrics["neighbours"] == model.neighbours.index
    assert {"two_heads", "ngram_alone", "encoder"} <= trained.metrics.keys()
    # the two linear heads cannot tell the corners apart; with the neighbours it is easy
    assert trained.metrics["two_heads"]["model"]["f1"] < 0.8
    assert trained.metrics["model"]["f1"] == 1.0
    doc = models_to_json([model], trained_indexes([trained]))
    indexes = indexes_from_json(json.loads(json.dumps(doc)))
    models = ModelSet([model])
    texts = ["south west memo", "south east memo", "north east memo", "north west memo"]
    vectors: list[TextVector | None] = [TextVector(encoder.name, v) for v in encoder.encode(texts)]
    found = [
        [m.slug for m in models.matches(text, vector=vector)]
        for text, vector in zip(texts, vote_with(models, indexes, vectors), strict=True)
    ]
    assert found == [["chips"], [], ["chips"], []]
    # training can leave the neighbours out
    no_near = replace(SMALL, neighbours=False)
    [headed] = train_models(["chips"], training, compass(4), params=no_near, encoder=encoder)
    assert headed.model.neighbours is None
    assert headed.index is None


ZH_CORNERS = {"东北": "north east", "西南": "south west"}


class BilingualCompass(CompassEncoder):
    """The compass, reading Chinese too: 东北 is north-east, 西南 south-west."""

    name = "fake-compass-zh-1"

    def encode(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        for zh, en in ZH_CORNERS.items():
            texts = [t.replace(zh, f" {en} ") for t in texts]
        return super().encode(texts)


def test_a_model_match_is_explained_by_the_nearest_headline_by_meaning() -> None:
    """ "Similar to" under an alert the model alone matched is the labelled headline of the
    theme nearest the item in the encoder's space, across languages; a subscriber's feedback
    item is never shown, however near. (The n-gram nearest, used before and still without a
    vote, explained the south-west memo with a north-east headline: the two share only spaces
    and digits.)"""
    encoder = BilingualCompass()
    training = [
        *compass(),
        # a subscriber's 👍 on an item worded exactly as the memo below: the nearest of all
        Example("东北 备忘录", "", frozenset({"chips"}), explains=False),
    ]
    [trained] = train_models(["chips"], training, compass(4), params=SMALL, encoder=encoder)
    models = ModelSet([trained.model])
    indexes = trained_indexes([trained])
    texts = ["东北 备忘录", "西南 备忘录"]
    vectors: list[TextVector | None] = [TextVector(encoder.name, v) for v in encoder.encode(texts)]
    voted = vote_with(models, indexes, vectors)
    explained = [
        [(m.slug, m.similar_to) for m in models.matches(text, vector=vector)]
        for text, vector in zip(texts, voted, strict=True)
    ]
    [[(slug, north_east)], [(_, south_west)]] = explained
    assert slug == "chips"
    assert north_east is not None
    assert north_east.startswith("north east report")
    assert south_west is not None
    assert south_west.startswith("south west report")


async def index_count(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(NeighbourIndexRow)) or 0)


async def test_a_trained_index_is_stored_used_and_pruned_with_its_versions(db: Database) -> None:
    """Training stores its index once in the database and the classifier uses it: the item
    only the neighbours recognise is matched. An index no kept version reads is deleted; a
    missing one is logged and the two heads decide, items are stored all the same."""
    source = await setup(db)
    encoder = CompassEncoder()

    async def train(per_corner: int) -> None:
        report = await retrain(
            db,
            NOW,
            min_votes=1,
            force=True,
            params=SMALL,
            training=compass(per_corner),
            validation=compass(4),
            encoder=encoder,
        )
        assert [(v.slug, v.activated) for v in report.versions] == [("chips", True)]

    await train(11)
    assert await index_count(db) == 1
    classifier = Classifier(encoder)
    await store(
        db, classifier, source, [item("1", "south west memo"), item("2", "south east memo")]
    )
    rows = await stored(db)
    assert rows["chips"].layer == "model"
    assert len(rows) == 1  # the south-west memo only

    for n in range(KEEP_VERSIONS):  # version 1 is pruned, and the index only it read
        await train(12 + n % 2)
    assert await index_count(db) == 2

    async with db.sessions.begin() as session:  # the indexes go missing
        await session.execute(delete(NeighbourIndexRow))
    with capture_logs() as logs:
        await store(db, Classifier(encoder), source, [item("3", "north east memo")])
    assert "neighbour index missing" in [entry["event"] for entry in logs]
    async with db.sessions() as session:
        assert await session.scalar(select(func.count(Item.id))) == 3
