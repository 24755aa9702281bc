"""Feedback on alerts: the buttons' callback data, and what editors see (counts). Pure.

A subscriber answers an alert with 👍 (relevant), 👎 (not relevant) or "wrong theme" for one of
the alert's themes, and a digest's unsure entries with 👍 / 👎 for the entry's theme. The
buttons carry ``fb:<verdict>:<item id>[:<theme id>]`` (well under Telegram's 64 bytes).
Editors see precision per theme, per layer (rules, model, both), per rule and per source, as
counts over every subscriber: never who said what.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from models.alerts import is_sure

UP = "up"
DOWN = "down"
WRONG = "wrong"
VERDICTS = (UP, DOWN, WRONG)
MAX_CALLBACK_DATA = 64
MAX_ITEM_ID = 2**63 - 1  # items.id is BIGINT
MAX_THEME_ID = 2**31 - 1  # themes.id is INTEGER

_CODES = {UP: "u", DOWN: "d", WRONG: "w"}
_VERDICT_OF = {code: verdict for verdict, code in _CODES.items()}
_CALLBACK = re.compile(r"^fb:([udw]):([1-9][0-9]{0,18})(?::([1-9][0-9]{0,9}))?$")


def feedback_callback(verdict: str, item_id: int, theme_id: int | None = None) -> str:
    """The callback data of a feedback button (``wrong`` names a theme; 👍 and 👎 name one
    under a digest entry, and judge the themes their alert named otherwise)."""
    data = f"fb:{_CODES[verdict]}:{item_id}"
    return data if theme_id is None else f"{data}:{theme_id}"


@dataclass(frozen=True, slots=True)
class FeedbackPress:
    verdict: str
    item_id: int
    theme_id: int | None = None


def parse_feedback_callback(data: str) -> FeedbackPress | None:
    """The press a feedback button's data stands for; None for anything else (or malformed)."""
    match = _CALLBACK.match(data)
    if match is None:
        return None
    code, item, theme = match.groups()
    verdict = _VERDICT_OF[code]
    if verdict == WRONG and theme is None:
        return None
    item_id, theme_id = int(item), int(theme) if theme else None
    if item_id > MAX_ITEM_ID or (theme_id is not None and theme_id > MAX_THEME_ID):
        return None  # no such row can exist (and the database would refuse the number)
    return FeedbackPress(verdict, item_id, theme_id)


@dataclass(frozen=True, slots=True)
class Vote:
    """One subscriber's verdict on one (item, theme), with how the theme had matched it."""

    slug: str
    verdict: str
    layer: str = "rules"
    rules: tuple[str, ...] = ()
    source: str = ""  # the name of the source the item came from


@dataclass(slots=True)
class Tally:
    """👍 and 👎 (with "wrong theme") counted together; precision is 👍 over both."""

    up: int = 0
    down: int = 0

    @property
    def votes(self) -> int:
        return self.up + self.down

    @property
    def precision(self) -> float | None:
        return self.up / self.votes if self.votes else None

    def add(self, verdict: str) -> None:
        if verdict == UP:
            self.up += 1
        else:
            self.down += 1


@dataclass(slots=True)
class FeedbackStats:
    by_theme: dict[str, Tally] = field(default_factory=dict)
    by_layer: dict[tuple[str, str], Tally] = field(default_factory=dict)
    by_rule: dict[tuple[str, str], Tally] = field(default_factory=dict)
    by_source: dict[tuple[str, str], Tally] = field(default_factory=dict)


def tally(votes: Iterable[Vote]) -> FeedbackStats:
    """Count votes per theme, per (theme, layer), per (theme, rule that fired) and per (theme,
    source): how often a theme is right depends on the feed as much as on the rule (on feeds
    that sit beside a theme, such as sanctions news, one alert in two was off-theme in
    ``tests/data/classification_eval.md``)."""
    stats = FeedbackStats()
    for vote in votes:
        stats.by_theme.setdefault(vote.slug, Tally()).add(vote.verdict)
        stats.by_layer.setdefault((vote.slug, vote.layer), Tally()).add(vote.verdict)
        for rule in dict.fromkeys(vote.rules):
            stats.by_rule.setdefault((vote.slug, rule), Tally()).add(vote.verdict)
        if vote.source:
            stats.by_source.setdefault((vote.slug, vote.source), Tally()).add(vote.verdict)
    return stats


@dataclass(frozen=True, slots=True)
class AlertVerdicts:
    """What subscribers said of one alerted (item, theme): 👍 and 👎 (with "wrong theme"), the
    source the item came from, how the theme matches it now and whether the match was sure
    when it was alerted (None: not recorded)."""

    source: str
    slug: str
    layer: str
    ups: int
    downs: int
    sure: bool | None = None


@dataclass(frozen=True, slots=True)
class WaryPolicy:
    """When a source's *unsure* matches of a theme (one layer alone, ``models.alerts.is_sure``)
    stop alerting and wait for digests: once at least ``min_alerts`` of them were judged and
    fewer than ``floor`` of those were right (smoothed: (👍 + 1) / (judged + 2), so a handful of
    verdicts cannot swing it), counting verdicts of the last ``window`` only, so an old run
    of wrong alerts ages out. ``min_alerts`` 0 turns it off. With ``explore_every`` N > 0, one
    in N of a wary pair's unsure matches (by a hash of the item's id: the same for every chat)
    alerts anyway, so subscribers keep judging the pair and a feed that got better comes back
    before its old verdicts age out."""

    min_alerts: int = 5
    floor: float = 0.5
    window: timedelta = timedelta(days=90)  # verdicts older than this say nothing
    explore_every: int = 4  # measured: tests/data/classification_eval.md

    @property
    def enabled(self) -> bool:
        return self.min_alerts > 0


def unsure_record(
    alerts: Iterable[AlertVerdicts], judged: Collection[str]
) -> dict[tuple[str, str], Tally]:
    """Per (source, theme), how the source's unsure alerts of the theme were judged: each alert
    counts once, by its subscribers' majority (a tie says nothing), so one busy chat weighs no
    more than a quiet one on the same alert. An alert is unsure as it was when it went out;
    where that was not recorded, as its match is now (``judged``: the themes a learned model
    judges now)."""
    record: dict[tuple[str, str], Tally] = {}
    for alert in alerts:
        sure = is_sure(alert.layer, alert.slug in judged) if alert.sure is None else alert.sure
        if sure or alert.ups == alert.downs:
            continue
        record.setdefault((alert.source, alert.slug), Tally()).add(
            UP if alert.ups > alert.downs else DOWN
        )
    return record


def is_wary(tally: Tally, policy: WaryPolicy) -> bool:
    """Whether unsure matches judged as ``tally`` says should wait for digests."""
    return (
        policy.enabled
        and tally.votes >= policy.min_alerts
        and (tally.up + 1) / (tally.votes + 2) < policy.floor
    )


def explores(item_key: int | str, policy: WaryPolicy) -> bool:
    """Whether this item's unsure matches alert even where their (source, theme) is wary."""
    every = policy.explore_every
    return every > 0 and zlib.crc32(str(item_key).encode()) % every == 0


def wary_pairs(
    record: Mapping[tuple[str, str], Tally], policy: WaryPolicy
) -> frozenset[tuple[str, str]]:
    """The (source, theme) pairs whose unsure matches wait for digests."""
    return frozenset(key for key, tally in record.items() if is_wary(tally, policy))
