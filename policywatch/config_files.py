"""Reading the YAML config files (the only YAML in the program), with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from models.errors import ConfigError
from models.matching import check_rule
from models.sources import SourceSpec, parse_sources_document
from models.themes import ThemeSpec, parse_themes_document
from scrapers.registry import source_kinds

MAX_CONFIG_BYTES = 2_000_000


def load_yaml(path: Path) -> Any:
    """``yaml.safe_load`` of a file, as a ConfigError naming the file when it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            [f"cannot read {path}: {exc.strerror or exc}"], origin=str(path)
        ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path} is larger than {MAX_CONFIG_BYTES} bytes"], origin=str(path))
    try:
        return yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8: {exc}"], origin=str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], origin=str(path)) from None


def load_source_specs(path: Path) -> list[SourceSpec]:
    return parse_sources_document(load_yaml(path), known_kinds=source_kinds(), where=str(path))


def load_theme_specs(path: Path) -> list[ThemeSpec]:
    """The themes file, with every watchlist rule checked by the rule parser."""
    specs = parse_themes_document(load_yaml(path), where=str(path))
    problems = [
        f"themes ({spec.slug}).watchlist: {rule!r}: {error}"
        for spec in specs
        for rule in spec.rules
        if (error := check_rule(rule)) is not None
    ]
    if problems:
        raise ConfigError(problems, origin=str(path))
    return specs
