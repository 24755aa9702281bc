"""Conventions the code must keep, checked rather than remembered.

- The core (``models`` except ``models.db``) imports only the standard library, itself and
  the pure computational libraries in ``CORE_ALLOWED``.
- ``models.db`` never imports ``scrapers`` or ``bot``; ``scrapers`` never imports ``bot``,
  ``models.db``, SQLAlchemy or telegram.
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


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_modules(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


CORE_FILES = [p for p in python_files("models") if "db" not in p.relative_to(ROOT).parts]
# Pure computation, no I/O: the Aho-Corasick automaton and the OpenCC converter (matching).
CORE_ALLOWED = {"ahocorasick", "opencc"}


@pytest.mark.parametrize("path", CORE_FILES, ids=_rel)
def test_core_imports_only_the_standard_library(path: Path) -> None:
    bad = [
        m
        for m in imported_modules(path)
        if m.split(".")[0] not in STDLIB | CORE_ALLOWED
        and m != "models"
        and not m.startswith("models.")
    ]
    assert bad == [], f"{_rel(path)} imports {bad}"
    assert not [m for m in imported_modules(path) if m.startswith("models.db")]


LAYER_RULES = {
    "models/db": ("bot", "scrapers", "telegram", "httpx", "feedparser"),
    "scrapers": ("bot", "models.db", "sqlalchemy", "telegram", "alembic"),
}


@pytest.mark.parametrize(
    "path",
    [p for folder in LAYER_RULES for p in sorted((ROOT / folder).rglob("*.py"))],
    ids=_rel,
)
def test_layers_import_only_downward(path: Path) -> None:
    folder = next(f for f in LAYER_RULES if _rel(path).startswith(f + "/"))
    forbidden = LAYER_RULES[folder]
    bad = [
        m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in forbidden)
    ]
    assert bad == [], f"{_rel(path)} imports {bad}"


ALL_SOURCE = [p for pkg in ("bot", "scrapers", "models") for p in python_files(pkg)]
FACTORIES = {"create_async_engine", "make_engine", "AsyncClient", "load_settings", "Settings"}


@pytest.mark.parametrize("path", ALL_SOURCE, ids=_rel)
def test_nothing_is_built_at_import_time(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
            func = node.value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            assert name not in FACTORIES, f"{_rel(path)}:{node.lineno} builds {name} at import"
