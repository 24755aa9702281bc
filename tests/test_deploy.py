"""What the container runs, run here: the entry point against PostgreSQL, several at once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest

from models.db.migrate import head_revision
from tests.procs import running_service
from tests.test_cli import ROOT, cli_env

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def entrypoint_env(database_url: str, **extra: str) -> dict[str, str]:
    env = cli_env(database_url, **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.postgres
def test_three_containers_starting_together_migrate_and_seed_safely(
    fresh_database: Callable[[str], str],
) -> None:
    """Three workers started at once on a new database: each migrates and seeds before it
    runs (they take turns), exactly one of them creates the sources, and all three run."""
    env = entrypoint_env(fresh_database("postgresql"))
    with ExitStack() as stack:
        services = [
            stack.enter_context(running_service(["sh", str(ENTRYPOINT)], env)) for _ in range(3)
        ]
        for service in services:
            assert service.stop() == 0, service.err
    ready = [
        next(line for line in service.err.splitlines() if "database ready" in line)
        for service in services
    ]
    assert all(f"schema={head_revision()}" in line for line in ready), ready
    assert sum("sources='0 created" not in line for line in ready) == 1, ready


@pytest.mark.postgres
def test_entrypoint_migrates_seeds_runs_and_stops_on_sigterm(
    fresh_database: Callable[[str], str],
) -> None:
    env = entrypoint_env(fresh_database("postgresql"))
    with running_service(["sh", str(ENTRYPOINT)], env) as service:
        # exec'd by the entry point: the signal reaches policywatch itself
        assert service.stop() == 0, service.err
    assert "migrated_from=empty" in service.err
    assert "0 created" not in service.err
    assert "policywatch stopped" in service.err


@pytest.mark.postgres
def test_migrate_and_seed_alone_still_work_for_operators(
    fresh_database: Callable[[str], str],
) -> None:
    env = entrypoint_env(fresh_database("postgresql"))
    result = subprocess.run(
        ["sh", "-c", "policywatch migrate && policywatch seed"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "upgraded from empty" in result.stdout
    assert "created" in result.stdout
