"""A newcomer's first ``make run``: no bot token, no internet. The console shows the pipeline
at work (alerts it would send, one line per poll round), not only connection errors."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.procs import running_service
from tests.test_cli import cli_env

ALERT = "--- to chat 0 ---"


def test_a_run_without_a_token_or_network_prints_alerts(tmp_path: Path) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources: []\n")  # the shipped ones need the internet; none here
    env = cli_env(
        f"sqlite:///{tmp_path}/first.db",
        POLICYWATCH_SOURCES_FILE=str(sources),
        POLICYWATCH_SOURCE_TICK="0.5s",
    )
    env.pop("POLICYWATCH_DEMO", None)  # the default, as a newcomer has it
    with running_service([sys.executable, "-m", "policywatch", "run"], env) as service:
        deadline = time.monotonic() + 90
        while ALERT not in service.out and time.monotonic() < deadline:
            assert service.proc.poll() is None, service.err
            time.sleep(0.2)
        assert service.stop() == 0
    assert ALERT in service.out, service.err
    assert "🏷" in service.out  # an alert: the theme it matched and why
    assert "poll round" in service.err
    assert "items_new=" in service.err
