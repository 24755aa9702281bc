"""What the container runs, run here: the entry point against PostgreSQL, several at once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

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
    env = entrypoint_env(fresh_database("postgresql"))
    procs = [
        subprocess.Popen(
            ["sh", "-c", "policywatch migrate && policywatch seed"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    seeds = [out.splitlines()[-2] for out, _ in outputs]  # the "sources (...)" line of each
    assert sum("0 created" not in line for line in seeds) == 1  # exactly one created them


@pytest.mark.postgres
def test_entrypoint_migrates_seeds_runs_and_stops_on_sigterm(
    fresh_database: Callable[[str], str],
) -> None:
    env = entrypoint_env(fresh_database("postgresql"))
    with running_service(["sh", str(ENTRYPOINT)], env) as service:
        # exec'd by the entry point: the signal reaches policywatch itself
        assert service.stop() == 0, service.err
    assert "upgraded from empty" in service.out
    assert "created" in service.out
