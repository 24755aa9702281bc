"""Pure replies for the learned layer: feedback precision (``/watch stats``) and a theme's model
versions (``/watch model``). Counts only: never who said what."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from delivery.telegram_html import clip, esc, paginate
from models.db.learned import newer_than_active
from models.feedback import FeedbackStats, Tally

RULES_SHOWN = 8  # per theme in the overview; all of them for one theme
SOURCES_SHOWN = 4  # the same for sources
# a source this imprecise, on this many verdicts, is named with the lever for it
NOISY_PRECISION = 0.5
NOISY_VOTES = 5
LAYERS = ("rules", "model", "both")


def _tally(t: Tally) -> str:
    p = t.precision
    shown = "—" if p is None else f"{p:.2f}"
    return f"{shown} ({t.up} 👍 / {t.down} 👎)"


def stats_reply(
    stats: FeedbackStats,
    switches: Mapping[str, bool],
    active: Mapping[str, int],
    *,
    theme: str | None = None,
    unused: Mapping[str, int] | None = None,
    wary: Mapping[tuple[str, str], Tally] | None = None,
    explore_every: int = 0,
) -> list[str]:
    """Precision from feedback per theme, per layer, per source and per rule (noisiest
    sources and rules first). A theme with a newer version than its active one (``unused``:
    the newest such, ``models.db.learned.newer_than_active``) says so: training held it back,
    and the feedback shown is what may speak for it. ``wary``: the (source, theme) pairs whose
    unsure matches now wait for digests, with the alerts that decided it
    (``models.feedback.WaryPolicy``; ``explore_every``: one in that many still alerts)."""
    slugs = [theme] if theme else sorted(set(switches) | set(stats.by_theme))
    lines = ["<b>Precision from subscribers' feedback</b> (👍 over 👍 + 👎/wrong theme)"]
    if not stats.by_theme:
        lines.append("No feedback yet: subscribers answer alerts with 👍 / 👎 / Wrong theme.")
    for slug in slugs:
        model = (
            "off"
            if not switches.get(slug, True)
            else f"v{active[slug]}"
            if slug in active
            else "none"
        )
        latest = (unused or {}).get(slug)
        if latest is not None and switches.get(slug, True):
            model += f" (v{latest} newer, not in use: /watch model {esc(slug)})"
        overall = stats.by_theme.get(slug)
        lines.append("")
        lines.append(
            f"<b>{esc(slug)}</b>: {_tally(overall) if overall else 'no feedback'} · model {model}"
        )
        layers = [
            f"{layer} {_tally(stats.by_layer[(slug, layer)])}"
            for layer in LAYERS
            if (slug, layer) in stats.by_layer
        ]
        if layers:
            lines.append("  by layer: " + esc(" · ".join(layers)))
        sources = _noisiest(stats.by_source, slug)
        if sources:
            lines.append("  by source: " + _sources_line(sources, every=theme is not None))
        noisy = [
            name
            for name, t in sources
            if t.votes >= NOISY_VOTES and (t.precision or 0.0) < NOISY_PRECISION
        ]
        if noisy:
            lines.append(
                f"  noisy: {esc(', '.join(noisy))}. An admin can send a source's matches to "
                f"digests only: /source digest {esc(noisy[0])}"
            )
        held = sorted((name, t) for (name, s), t in (wary or {}).items() if s == slug)
        if held:
            lines.append(
                "  unsure matches wait for digests, from feedback on their alerts: "
                + _sources_line(held, every=theme is not None)
                + (f". One in {explore_every} still alerts" if explore_every > 0 else "")
                + (", and digest" if explore_every > 0 else ". Digest")
                + " readers judge the held ones with the digest's 👍 / 👎"
                + f". An admin keeps them instant: /source trust {esc(held[0][0])} {esc(slug)}"
            )
        rules = _noisiest(stats.by_rule, slug)
        limit = len(rules) if theme else RULES_SHOWN
        for rule, t in rules[:limit]:
            lines.append(f"  • <code>{esc(clip(rule, 80))}</code>: {esc(_tally(t))}")
        if len(rules) > limit:
            lines.append(f"  … {len(rules) - limit} more rules: /watch stats {esc(slug)}")
    return paginate(lines)


def _sources_line(sources: Sequence[tuple[str, Tally]], *, every: bool) -> str:
    """Sources with their tallies (the first few unless ``every``), escaped."""
    shown = sources if every else sources[:SOURCES_SHOWN]
    more = len(sources) - len(shown)
    return esc(" · ".join(f"{clip(name, 40)} {_tally(t)}" for name, t in shown)) + (
        f" … {more} more" if more else ""
    )


def _noisiest(tallies: Mapping[tuple[str, str], Tally], slug: str) -> list[tuple[str, Tally]]:
    """A theme's (name, tally) pairs, least precise first, then most voted on."""
    return sorted(
        ((name, t) for (s, name), t in tallies.items() if s == slug),
        key=lambda nt: (nt[1].precision or 0.0, -nt[1].votes, nt[0]),
    )


def _metric(metrics: Mapping[str, Any], layer: str) -> str:
    m = metrics.get(layer)
    if not isinstance(m, Mapping):
        return ""
    return f"{layer} P {m.get('precision', 0):.2f} R {m.get('recall', 0):.2f}"


def versions_reply(slug: str, on: bool, versions: Sequence[Any]) -> str:
    """A theme's model versions, newest first, with their validation scores."""
    lines = [f"<b>Learned model of {esc(slug)}</b>: {'on' if on else 'off'}"]
    if not versions:
        lines.append("No model stored yet: run <code>policywatch train</code>.")
    newer = newer_than_active(versions)
    for v in versions[:10]:
        scores = " · ".join(
            x for x in (_metric(v.metrics, "combined"), _metric(v.metrics, "model")) if x
        )
        unused = (v.slug, v.version) in newer
        mark = " ← active" if v.active else (" · newer, not in use" if unused else "")
        lines.append(
            f"v{v.version} {esc(v.origin)} {v.created_at:%Y-%m-%d %H:%M} UTC"
            + (f" · validation {esc(scores)}" if scores else "")
            + mark
        )
    lines.append(
        "Turn it off or on with /watch model "
        f"{esc(slug)} off|on; go back a version with /watch model {esc(slug)} rollback, "
        f"or use any stored one with /watch model {esc(slug)} use &lt;version&gt;."
    )
    return "\n".join(lines)
