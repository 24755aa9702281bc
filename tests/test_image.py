"""The container image, laid out here without a container runtime: what the Dockerfile copies,
installed the way it installs it, run the way it runs it.

The build stage's ``COPY`` lines decide what goes into the wheel (``pip install .`` of exactly
those files, not the editable checkout the other tests import); the runtime stage's ``COPY``,
``WORKDIR``, ``VOLUME``, ``ENV``, ``ENTRYPOINT``, ``CMD`` and ``HEALTHCHECK`` are read from the
Dockerfile and played under a temporary root. So a package the image forgets to copy, package
data the wheel leaves out, a file the service reads from the checkout rather than from what it
installed, a broken entry point or a health check that cannot pass all fail here, where no
Docker daemon runs. What this cannot see: the base image, the non-root user's permissions.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.procs import ROOT, running_service

DOCKERFILE = ROOT / "Dockerfile"
ALERT = "--- to chat 0 ---"
# the project's top-level packages, as pyproject.toml lists them ("bot*" → "bot")
PACKAGES = tuple(
    name.rstrip("*")
    for name in tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["packages"]["find"]["include"]
)


@dataclass
class Stage:
    name: str
    steps: list[tuple[str, str]] = field(default_factory=list)  # (instruction, its arguments)

    def args(self, instruction: str) -> list[str]:
        return [rest for name, rest in self.steps if name == instruction]


def stages(text: str) -> list[Stage]:
    """The Dockerfile's stages, each with its instructions (comments dropped, continued lines
    joined)."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    out: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            words = rest.split()
            out.append(Stage(words[-1] if len(words) == 3 else words[0]))
        elif out:
            out[-1].steps.append((instruction.upper(), rest.strip()))
    return out


def env_pairs(args: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(args))


def inside(root: Path, workdir: str, path: str) -> Path:
    """Where the container's ``path`` (relative to ``workdir``) lies under ``root``."""
    absolute = path if path.startswith("/") else f"{workdir.rstrip('/')}/{path}"
    return root / absolute.lstrip("/")


def copy_into(root: Path, workdir: str, args: str) -> None:
    *sources, dest = shlex.split(args)
    target = inside(root, workdir, dest)
    for source in sources:
        origin = ROOT / source
        into = target / origin.name if dest.endswith("/") or len(sources) > 1 else target
        into.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, into, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, into)


def test_the_image_layout_installs_migrates_runs_alerts_and_passes_its_health_check(
    tmp_path: Path,
) -> None:
    parsed = stages(DOCKERFILE.read_text(encoding="utf-8"))
    build, runtime = parsed[0], parsed[-1]
    assert build.name == "build"
    assert runtime.name != "build"

    # the build stage: its COPY lines, then `pip install .` of what they copied
    source = tmp_path / "build"
    build_workdir = build.args("WORKDIR")[-1]
    for args in build.args("COPY"):
        copy_into(source, build_workdir, args)
    assert "pip install ." in build.args("RUN")
    project = inside(source, build_workdir, ".")
    copied = {p.name for p in project.iterdir() if (p / "__init__.py").exists()}
    assert copied == set(PACKAGES), f"the image copies {sorted(copied)}"
    wheels = tmp_path / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    subprocess.run(
        [*pip_wheel, "--no-build-isolation", "--wheel-dir", str(wheels), str(project)],
        check=True,
        capture_output=True,
    )
    site = tmp_path / "root" / "opt" / "venv" / "site"  # the dependencies are this .venv's
    (wheel,) = wheels.glob("policywatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)

    # the runtime stage, under a root of its own
    root = tmp_path / "root"
    workdir = runtime.args("WORKDIR")[-1]
    for args in runtime.args("COPY"):
        if not args.startswith("--from"):
            copy_into(root, workdir, args)
    for args in runtime.args("VOLUME"):
        for volume in json.loads(args):
            inside(root, workdir, volume).mkdir(parents=True, exist_ok=True)
    # the shipped sources need the internet (none here): the image's config, less them
    (inside(root, workdir, "config") / "sources.yaml").write_text("sources: []\n")

    declared: dict[str, str] = {}
    for args in runtime.args("ENV"):
        declared |= env_pairs(args)
    (exposed,) = runtime.args("EXPOSE")
    assert declared["POLICYWATCH_HEALTH_ADDR"].endswith(f":{exposed}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYWATCH_", "TELEGRAM"))}
    env |= {
        key: value.replace(workdir, str(inside(root, workdir, ".")))
        for key, value in declared.items()
        if key != "PATH"
    }
    env |= {
        "POLICYWATCH_HEALTH_ADDR": "127.0.0.1:0",  # its port is read from the log
        "POLICYWATCH_SOURCE_TICK": "0.5s",
        "PYTHONPATH": str(site),
        "PATH": os.pathsep.join(
            [str(root / "usr" / "local" / "bin"), str(Path(sys.executable).parent), env["PATH"]]
        ),
    }

    imported = subprocess.run(
        [sys.executable, "-c", f"import {', '.join(PACKAGES)}; print({', '.join(PACKAGES)})"],
        cwd=inside(root, workdir, "."),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.count(str(site)) == len(PACKAGES), imported.stdout

    (entrypoint,) = (json.loads(a) for a in runtime.args("ENTRYPOINT"))
    (cmd,) = (json.loads(a) for a in runtime.args("CMD"))
    found = shutil.which(entrypoint[0], path=env["PATH"])
    assert found is not None
    assert found.startswith(str(root))
    (check,) = runtime.args("HEALTHCHECK")
    probe = json.loads(check.split(" CMD ", 1)[1])

    database = inside(root, workdir, "var") / "policywatch.db"
    with running_service(
        [found, *entrypoint[1:], *cmd], env, cwd=inside(root, workdir, ".")
    ) as svc:
        deadline = time.monotonic() + 90
        while ALERT not in svc.out and time.monotonic() < deadline:
            assert svc.proc.poll() is None, svc.err
            time.sleep(0.2)
        probe = [word.replace(f":{exposed}/", f":{svc.health_port}/") for word in probe]
        health = subprocess.run(probe, env=env, capture_output=True, text=True, check=False)
        assert svc.stop() == 0
    assert "migrated_from=empty" in svc.err
    assert "6 created" in svc.err  # the image's themes.yaml, read from its working directory
    assert ALERT in svc.out, svc.err
    assert "🏷" in svc.out  # an alert, classified with the packaged models
    assert "learned models loaded" in svc.err
    assert health.returncode == 0, health.stderr
    assert database.exists()  # in the volume, not somewhere in the checkout
