"""The shipped config files load, and broken files say what is wrong and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import ConfigError
from models.matching import compile_themes, disambiguated_name
from models.sources import parse_sources_document
from models.themes import parse_themes_document
from models.timeutil import parse_duration
from policywatch.config_files import load_source_specs, load_theme_specs

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_sources_file_loads() -> None:
    specs = load_source_specs(ROOT / "config" / "sources.yaml")
    names = {s.name for s in specs}
    assert {"fr-bis", "cac-wxfb"} <= names
    assert all(s.url.startswith("https://") for s in specs)


def test_shipped_themes_file_loads() -> None:
    specs = load_theme_specs(ROOT / "config" / "themes.yaml")
    assert {s.slug for s in specs} >= {
        "export-controls",
        "china-ai-rules",
        "china-llms",
        "chip-self-sufficiency",
        "us-ai-policy",
        "foreign-model-dependence",
    }
    assert all(s.rules for s in specs)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172800), (45, 45), ("90", 90), ("1.5h", 5400)],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "soon", "5 parsecs"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_the_shipped_disambiguations_are_the_names_an_editor_meant() -> None:
    """A rule that starts with one name and has a NOT part tells the model which other sense
    of the name an item is about (``Matcher.excluded``: the model may not match the theme).
    Only the names below are meant that way; a rule whose NOT part only says when it is not
    enough evidence starts with a group, so the model still decides such items."""
    specs = load_theme_specs(ROOT / "config" / "themes.yaml")
    names = {
        (spec.slug, name)
        for spec in specs
        for name in map(disambiguated_name, spec.rules)
        if name is not None
    }
    assert names == {
        ("china-llms", "Ernie"),
        ("china-llms", "Kimi"),
        ("china-llms", "商汤"),
        ("chip-self-sufficiency", "寒武纪"),
    }
    matcher = compile_themes({s.slug: s.rules for s in specs if s.enabled})
    assert matcher.excluded("Kimi Antonelli takes pole at Monza") == {"china-llms"}
    for title in [
        "Huawei unveils an AI cluster as lawmakers fret",  # no rule matches; the model decides
        "US and UK AI Safety Institutes sign a testing partnership",
        "华为发布新一代AI集群 美方回应",
    ]:
        assert matcher.excluded(title) == frozenset(), title


def test_source_problems_are_all_reported() -> None:
    doc = {
        "sources": [
            {"name": "ok", "kind": "rss", "url": "https://example.org/feed"},
            {"name": "ok", "kind": "rss", "url": "https://example.org/feed2"},
            {"name": "bad-kind", "kind": "gopher", "url": "https://example.org/"},
            {"name": "bad-url", "kind": "rss", "url": "file:///etc/passwd"},
            {"name": "bad-interval", "kind": "rss", "url": "https://e.org/", "interval": "often"},
            {"name": "Bad Name", "kind": "rss", "url": "https://e.org/"},
            {"name": "extra", "kind": "rss", "url": "https://e.org/", "colour": "red"},
            "just a string",
            {"name": "loud", "kind": "rss", "url": "https://e.org/", "alerts": "sometimes"},
        ]
    }
    with pytest.raises(ConfigError) as info:
        parse_sources_document(doc, known_kinds={"rss"})
    text = str(info.value)
    for expected in (
        "duplicate name 'ok'",
        "unknown kind 'gopher'",
        "(bad-url).url: only http and https",
        "(bad-interval).interval",
        "sources[5] (Bad Name).name",
        "unknown keys colour",
        "sources[7]: must be a mapping",
        "(loud).alerts: must be instant or digest, not 'sometimes'",
    ):
        assert expected in text


def test_a_source_may_send_its_matches_to_digests_only() -> None:
    doc = {
        "sources": [
            {"name": "noisy", "kind": "rss", "url": "https://e.org/a", "alerts": "digest"},
            {"name": "plain", "kind": "rss", "url": "https://e.org/b"},
        ]
    }
    specs = parse_sources_document(doc, known_kinds={"rss"})
    assert [(s.name, s.alerts) for s in specs] == [("noisy", "digest"), ("plain", "instant")]
    one = {"name": "bis", "kind": "rss", "url": "https://e.org/c"}
    [spec] = parse_sources_document(
        {"sources": [{**one, "digest_themes": ["export-controls"]}]}, known_kinds={"rss"}
    )
    assert (spec.alerts, spec.digest_themes) == ("instant", ("export-controls",))
    with pytest.raises(ConfigError, match=r"\(bis\).digest_themes: must be a list of theme slugs"):
        parse_sources_document({"sources": [{**one, "digest_themes": "export-controls"}]})


def test_theme_problems_are_all_reported() -> None:
    doc = {
        "themes": [
            {"slug": "a", "title": "A", "priority": "urgent"},
            {"slug": "a", "title": "A again"},
            {"slug": "b", "watchlist": ["ok", 5, [], ["x", ""]]},
        ]
    }
    with pytest.raises(ConfigError) as info:
        parse_themes_document(doc)
    text = str(info.value)
    assert "priority: must be instant or digest" in text
    assert "duplicate slug 'a'" in text
    assert "(b).title: required" in text
    assert "(b).watchlist[1]" in text
    assert "(b).watchlist[2]" in text
    assert "(b).watchlist[3]" in text


def test_alias_lists_become_rules() -> None:
    doc = {"themes": [{"slug": "a", "title": "A", "watchlist": [["华为", "Huawei"], 'say "hi"']}]}
    (theme,) = parse_themes_document(doc)
    assert theme.rules == ('"华为" OR "Huawei"', 'say "hi"')


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_source_specs(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("sources: [\n  - name: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_source_specs(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="'sources' list"):
        load_source_specs(empty)
