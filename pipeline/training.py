"""Training in the shell: gather the shipped labelled headlines and subscribers' feedback, train
(``pipeline.learning``, in a thread), store a new model version per theme, and activate it
unless it validates worse than the one in use. Also installs the shipped default models on a
fresh database, so a new install classifies with them before any training.

``policywatch train`` trains now; the ``training`` tick (``POLICYWATCH_TRAIN_INTERVAL``)
retrains only when feedback changed since the last training. Workers that share PostgreSQL
take turns (a transaction lock), and a worker whose training was overtaken by another's
stores nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from delivery.notices import notify_admins
from delivery.telegram_html import esc
from models.db import Database, UnitOfWork
from models.db.learned import ORIGIN_SHIPPED, ORIGIN_TRAINED
from models.matching import Matcher, check_rule, compile_themes
from pipeline.encoder import CrossFit, Encoder
from pipeline.learning import (
    Example,
    TrainedTheme,
    TrainParams,
    feedback_example,
    indexes_from_json,
    models_from_json,
    shipped_model_text,
    shipped_training,
    shipped_validation,
    train_models,
    trained_indexes,
)

log = structlog.get_logger(__name__)

# A new version is activated unless its validation F1 is this much below the active one's.
TOLERANCE = 0.02


@dataclass(frozen=True, slots=True)
class TrainedVersion:
    slug: str
    version: int
    activated: bool
    metrics: Mapping[str, Any]
    validation_f1: float
    # the version in use when it was stored, and its validation F1 as the new one decides
    active_version: int | None
    active_f1: float | None


@dataclass(frozen=True, slots=True)
class TrainReport:
    """What a training did: the versions stored, or why it stored none."""

    versions: tuple[TrainedVersion, ...] = ()
    feedback_examples: int = 0
    skipped: str | None = None

    def lines(self) -> list[str]:
        if self.skipped:
            return [f"not trained: {self.skipped}"]
        out = [f"trained with {self.feedback_examples} examples from feedback"]
        for v in self.versions:
            combined = v.metrics.get("combined", v.metrics.get("model", {}))
            held = (
                f"stored, NOT activated (validates worse; /watch model {v.slug} use {v.version}"
                f" or policywatch model rollback {v.slug} --to {v.version} turns it on)"
            )
            out.append(
                f"{v.slug}: v{v.version} {'activated' if v.activated else held}; "
                f"validation P {combined.get('precision', 0):.3f} R {combined.get('recall', 0):.3f}"
                f" at threshold {v.metrics.get('threshold')}"
            )
        return out


def held_back_notice(held: Sequence[TrainedVersion]) -> str:
    """The admins' notice (Telegram HTML) for new versions training stored without using."""
    lines = [
        f"🧪 Training stored {len(held)} new model version{'s' if len(held) != 1 else ''} "
        "without using them: they validate worse on the written validation split than the "
        "versions in use."
    ]
    for v in held:
        was = (
            f" against {v.active_f1:.3f} for v{v.active_version}"
            if v.active_f1 is not None and v.active_version is not None
            else ""
        )
        lines.append(f"• {esc(v.slug)} v{v.version}: F1 {v.validation_f1:.3f}{was}")
    first = held[0]
    lines.append(
        "Feedback may still favour them (/watch stats). "
        f"/watch model {esc(first.slug)} use {first.version} turns one on."
    )
    return "\n".join(lines)


def rules_matcher(enabled: Sequence[tuple[int, str, str]]) -> Matcher:
    """The watchlists as they classify now (rules that do not parse are left out)."""
    rules: dict[str, list[str]] = {}
    for _, slug, rule in enabled:
        if check_rule(rule) is None:
            rules.setdefault(slug, []).append(rule)
    return compile_themes(rules)


async def feedback_examples(uow: UnitOfWork, min_votes: int) -> list[Example]:
    """What feedback teaches (``pipeline.learning.feedback_example``), per item and theme."""
    out = []
    for votes in await uow.feedback.item_votes():
        example = feedback_example(
            votes.title, votes.summary, votes.slug, votes.ups, votes.downs, min_votes
        )
        if example is not None:
            out.append(example)
    return out


@dataclass(slots=True)
class _Inputs:
    theme_ids: dict[str, int] = field(default_factory=dict)
    enabled: list[tuple[int, str, str]] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    last_trained: datetime | None = None
    last_feedback: datetime | None = None


async def retrain(
    db: Database,
    now: datetime,
    *,
    min_votes: int,
    force: bool = False,
    params: TrainParams | None = None,
    training: Sequence[Example] | None = None,
    validation: Sequence[Example] | None = None,
    encoder: Encoder | None = None,
    cross_fit: CrossFit | None = None,
    admin_ids: Collection[int] = (),
) -> TrainReport:
    """Train every enabled theme's model and store the versions (see the module docstring).

    Without ``force`` nothing happens unless feedback changed since the last training. The
    admins (``admin_ids``) are told, through the outbox, of versions stored but not used.
    ``training``/``validation`` replace the shipped splits (tests train small). With
    ``encoder`` the models get an encoder head (encoding the shipped split takes minutes);
    ``cross_fit`` (``pipeline.encoder.load_cross_fit``) gives the thresholds vectors of the
    training items from encoders that never saw them (each encodes the split once more).
    """
    inputs = _Inputs()
    async with db.reading() as uow:
        inputs.theme_ids = {t.slug: t.id for t in await uow.themes.enabled()}
        inputs.enabled = await uow.themes.enabled_rules()
        inputs.last_trained = await uow.learned.latest_trained_at()
        inputs.last_feedback = await uow.feedback.latest_at()
        inputs.examples = await feedback_examples(uow, min_votes)
    if not force:
        if inputs.last_feedback is None:
            return TrainReport(skipped="no feedback yet")
        if inputs.last_trained is not None and inputs.last_feedback <= inputs.last_trained:
            return TrainReport(skipped="no new feedback since the last training")
    base = list(training) if training is not None else shipped_training()
    valid = list(validation) if validation is not None else shipped_validation()
    matcher = rules_matcher(inputs.enabled)

    def rules(title: str, summary: str) -> set[str]:
        return {m.slug for m in matcher.classify(title, summary)}

    trained: list[TrainedTheme] = await asyncio.to_thread(
        train_models,
        sorted(inputs.theme_ids),
        [*base, *inputs.examples],
        valid,
        rules=rules,
        params=params,
        encoder=encoder,
        cross_fit=cross_fit,
    )
    versions: list[TrainedVersion] = []
    async with db.transaction() as uow:
        await uow.serialize("train")
        if not force and await uow.learned.latest_trained_at() != inputs.last_trained:
            return TrainReport(skipped="another worker trained meanwhile")
        for digest, data in trained_indexes(trained).items():
            await uow.learned.add_index(digest, encoder.name if encoder else "", data, now)
        for result in trained:
            theme_id = inputs.theme_ids[result.model.slug]
            current = await uow.learned.active_version(theme_id)
            current_f1 = _f1(current.metrics, _mode(result)) if current is not None else None
            activate = current_f1 is None or result.validation_f1 >= current_f1 - TOLERANCE
            version = await uow.learned.add(
                theme_id,
                result.model.to_json(),
                result.metrics,
                origin=ORIGIN_TRAINED,
                activate=activate,
                now=now,
            )
            versions.append(
                TrainedVersion(
                    result.model.slug,
                    version,
                    activate,
                    result.metrics,
                    result.validation_f1,
                    current.version if current is not None else None,
                    current_f1,
                )
            )
        held = [v for v in versions if not v.activated]
        if held and admin_ids:
            key = f"model-held:{now:%Y%m%dT%H%M%S}"  # one training per moment (serialized)
            await notify_admins(uow, admin_ids, held_back_notice(held), key, now)
    report = TrainReport(tuple(versions), len(inputs.examples))
    log.info(
        "models trained",
        themes=[v.slug for v in versions],
        activated=[v.slug for v in versions if v.activated],
        feedback_examples=len(inputs.examples),
    )
    return report


def _mode(result: TrainedTheme) -> str | None:
    """How a trained model decides at its best: None with every opinion it was trained with
    (the top-level metrics), "two_heads" without neighbours, "ngram_alone" without encoder."""
    if result.model.embedding is None:
        return "ngram_alone"
    return None if result.model.neighbours is not None else "two_heads"


def _f1(metrics: Mapping[str, Any], mode: str | None) -> float | None:
    """The validation F1 a version's metrics report, for the way the new version decides
    (``_mode``): a version trained without the encoder is compared with what the active one
    does without it (its n-gram head alone), not with its encoder head's numbers; one without
    neighbours with what the active one's two heads do."""
    narrower = metrics.get(mode) if mode is not None else None
    if isinstance(narrower, Mapping):
        metrics = narrower
    scores = metrics.get("combined", metrics.get("model"))
    value = scores.get("f1") if isinstance(scores, Mapping) else None
    return float(value) if isinstance(value, int | float) else None


def shipped_model_file() -> dict[str, Any]:
    """The default model file shipped with the program (``policywatch train --export``)."""
    raw: dict[str, Any] = json.loads(shipped_model_text())
    return raw


async def install_shipped_models(uow: UnitOfWork, now: datetime) -> list[str]:
    """Store the shipped default model of every theme that has no model yet (as version 1,
    active). Returns the themes that got one."""
    missing = await uow.learned.themes_without_models()
    if not missing:
        return []
    raw = shipped_model_file()
    metrics = raw.get("metrics", {})
    indexes = indexes_from_json(raw)
    installed = []
    for model in models_from_json(raw):
        theme_id = missing.get(model.slug)
        if theme_id is None:
            continue
        if model.neighbours is not None and model.neighbours.index in indexes:
            await uow.learned.add_index(
                model.neighbours.index,
                model.embedding.encoder if model.embedding else "",
                indexes[model.neighbours.index],
                now,
            )
        await uow.learned.add(
            theme_id,
            model.to_json(),
            metrics.get(model.slug, {}) if isinstance(metrics, Mapping) else {},
            origin=ORIGIN_SHIPPED,
            activate=True,
            now=now,
        )
        installed.append(model.slug)
    return installed
