"""Running ``policywatch`` as a real process in tests: start it, wait until it says it runs,
stop it with SIGTERM and collect what it printed.

Output goes to files, not pipes, so a chatty process can never block on a full pipe.
"""

from __future__ import annotations

import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNING = "policywatch running"
_HEALTH = re.compile(r"health endpoint listening.*?address=\S*:(\d+)")


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path

    @property
    def out(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    @property
    def health_port(self) -> int:
        """The port its health endpoint listens on (started on port 0: the kernel chose it,
        so no other test can have taken it meanwhile)."""
        found = _HEALTH.search(self.err)
        assert found is not None, self.err
        return int(found.group(1))

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@contextmanager
def running_service(
    command: Sequence[str], env: Mapping[str, str], *, within: float = 60, cwd: Path = ROOT
) -> Iterator[Service]:
    """Start ``command`` in ``cwd`` and wait (up to ``within`` s) for its "policywatch running"
    line."""
    logs = Path(tempfile.mkdtemp(prefix="policywatch-proc-"))  # kept for reading afterwards
    out_path, err_path = logs / "stdout", logs / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdout=out, stderr=err)
    service = Service(proc, out_path, err_path)
    try:
        deadline = time.monotonic() + within
        while RUNNING not in service.err and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        assert RUNNING in service.err, service.err
        yield service
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
