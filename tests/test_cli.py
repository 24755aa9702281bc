"""The ``policywatch`` command, run as a real process."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.procs import running_service

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = (
    "run",
    "migrate",
    "seed",
    "poll",
    "classify",
    "events",
    "reclassify",
    "parse",
    "train",
    "model",
)


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYWATCH_", "TELEGRAM_"))}
    env["POLICYWATCH_DATABASE_URL"] = database_url
    env["POLICYWATCH_DEMO"] = "false"  # no demo source or console chat unless a test asks
    env.update(extra)
    return env


def policywatch(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policywatch", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_help_lists_every_subcommand(tmp_path: Path) -> None:
    result = policywatch("--help", env=cli_env(f"sqlite:///{tmp_path}/x.db"))
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(tmp_path: Path, name: str) -> None:
    result = policywatch(name, "--help", env=cli_env(f"sqlite:///{tmp_path}/x.db"))
    assert result.returncode == 0
    assert "usage: policywatch" in result.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrate_twice_is_a_no_op(backend: str, fresh_database: Callable[[str], str]) -> None:
    env = cli_env(fresh_database(backend))
    first = policywatch("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "upgraded from empty" in first.stdout
    second = policywatch("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout


def test_seed_is_idempotent(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/pw.db")
    assert policywatch("migrate", env=env).returncode == 0
    first = policywatch("seed", env=env)
    assert first.returncode == 0, first.stderr
    assert "0 created" not in first.stdout.splitlines()[0]
    second = policywatch("seed", env=env)
    assert second.returncode == 0, second.stderr
    assert all(
        line.split(": ", 1)[1].startswith("0 created, 0 updated")
        for line in second.stdout.splitlines()
    )


def test_seed_with_a_broken_file_changes_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "themes.yaml"
    broken.write_text("themes:\n  - slug: Not A Slug\n", encoding="utf-8")
    env = cli_env(f"sqlite:///{tmp_path}/pw.db", POLICYWATCH_THEMES_FILE=str(broken))
    assert policywatch("migrate", env=env).returncode == 0
    result = policywatch("seed", env=env)
    assert result.returncode == 2
    assert "themes[0]" in result.stderr
    assert "slug" in result.stderr
    env.pop("POLICYWATCH_THEMES_FILE")
    assert "created" in policywatch("seed", env=env).stdout  # nothing was half-written before


def test_bad_setting_fails_at_start_naming_the_variable(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/pw.db", POLICYWATCH_LOG_LEVEL="CHATTY")
    result = policywatch("migrate", env=env)
    assert result.returncode == 2
    assert "POLICYWATCH_LOG_LEVEL" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_on_an_empty_database_migrates_seeds_and_serves(tmp_path: Path) -> None:
    """``policywatch run`` alone brings a new database to a working state."""
    path = tmp_path / "new" / "pw.db"
    env = cli_env(f"sqlite:///{path}", POLICYWATCH_HEALTH_ADDR="127.0.0.1:0")
    with running_service([sys.executable, "-m", "policywatch", "run"], env) as service:
        assert "database ready" in service.err
        address = re.search(r"address=127\.0\.0\.1:(\d+)", service.err)
        assert address, service.err
        health = httpx.get(f"http://127.0.0.1:{address.group(1)}/healthz", timeout=5)
        assert health.status_code == 200, health.text
        with sqlite3.connect(path) as conn:
            themes = conn.execute("SELECT count(*) FROM themes").fetchone()[0]
            sources = conn.execute("SELECT count(*) FROM sources").fetchone()[0]
        assert themes >= 6
        assert sources >= 5
        assert service.stop() == 0, service.err
    # A second start finds the database current and the config loaded: nothing to redo.
    with running_service([sys.executable, "-m", "policywatch", "run"], env) as again:
        line = next(ln for ln in again.err.splitlines() if "database ready" in ln)
        assert "migrated_from" not in line
        assert "0 created, 0 updated" in line
        assert again.stop() == 0, again.err


def test_commands_other_than_run_refuse_an_unmigrated_database(tmp_path: Path) -> None:
    result = policywatch("poll", "--once", env=cli_env(f"sqlite:///{tmp_path}/pw.db"))
    assert result.returncode == 2
    assert "policywatch migrate" in result.stderr


def test_run_serves_health_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/pw.db", POLICYWATCH_HEALTH_ADDR="127.0.0.1:0")
    with running_service([sys.executable, "-m", "policywatch", "run"], env) as service:
        assert "console" in service.err  # no token: alerts go to the console
        address = re.search(r"address=127\.0\.0\.1:(\d+)", service.err)
        assert address, service.err
        health = httpx.get(f"http://127.0.0.1:{address.group(1)}/healthz", timeout=5)
        assert health.status_code == 200, health.text
        assert health.json()["checks"]["database"] == "ok"
        metrics = httpx.get(f"http://127.0.0.1:{address.group(1)}/metrics", timeout=5)
        assert "policywatch_ticks_total" in metrics.text
        assert service.stop() == 0, service.err
    assert "policywatch stopped" in service.err
