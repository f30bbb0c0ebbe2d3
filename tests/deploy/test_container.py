"""The container image (deploy/Containerfile), checked statically.

Images cannot be run on our machines (no registry to pull the base image from, and
the sandbox forbids the OCI runtime's rlimits), so `make test` checks the file
instead: hadolint (from PyPI, a binary in the wheel) and our own rules: multi-stage,
nothing to build with in the final stage, a non-root user, a health check, every
copied path present, the commands it runs really installed by the packages it
installs. `make image` builds it for real where podman or buildah can.
The health check script runs here against the real processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import tomllib
from pathlib import Path
from typing import List, Tuple

import pytest

from bos_sim.stack import BIN, ApiServer, free_port

from .conftest import DEPLOY, ROOT

CONTAINERFILE = DEPLOY / "Containerfile"
HEALTHCHECK = DEPLOY / "container" / "healthcheck.py"
BUILD_TOOLS = ("apt-get", "apt ", "dnf", "yum", "gcc", "make ", "pip ", "pip3", "build-essential", "cargo")


def instructions() -> List[Tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in CONTAINERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            lines.append(current)
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def stages() -> List[List[Tuple[str, str]]]:
    found: List[List[Tuple[str, str]]] = []
    for op, args in instructions():
        if op == "FROM":
            found.append([])
        if found:
            found[-1].append((op, args))
    return found


@pytest.mark.skipif(shutil.which("hadolint") is None and not (BIN / "hadolint").exists(),
                    reason="hadolint not installed (requirements-dev.txt: x86_64 Linux only)")
def test_hadolint_finds_nothing() -> None:
    exe = shutil.which("hadolint") or str(BIN / "hadolint")
    done = subprocess.run([exe, "--no-color", str(CONTAINERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_multi_stage_with_nothing_to_build_with_in_the_final_stage() -> None:
    build, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2
    assert any(op == "RUN" and "pip" in args for op, args in build)
    for op, args in final:
        assert op != "RUN" or not any(tool in args + " " for tool in BUILD_TOOLS), args
    copied = [args for op, args in final if op == "COPY"]
    assert any(args.startswith("--from=build /opt/bos") for args in copied)


def test_final_stage_runs_unprivileged_with_a_health_check() -> None:
    final = dict((op, args) for op, args in stages()[-1])
    user = final["USER"].split(":")[0]
    assert user not in ("root", "0") and user.isdigit(), "USER must be a numeric non-root UID (runAsNonRoot)"
    assert "healthcheck.py" in final["HEALTHCHECK"] and "CMD" in final["HEALTHCHECK"]
    assert final["CMD"] == '["bos-server"]'


def test_every_copied_path_exists_and_every_command_is_installed() -> None:
    copied = []
    for op, args in instructions():
        if op == "COPY" and not args.startswith("--from"):
            *sources, _dest = args.split()
            copied += sources
    for source in copied:
        assert (ROOT / source).exists(), source
    scripts = set()
    for package in ("shared", "server", "cli"):
        assert f"{package}/" in copied, package
        meta = tomllib.loads((ROOT / package / "pyproject.toml").read_text())
        scripts |= set(meta["project"].get("scripts", {}))
    assert {"bos-server", "bos-operators", "bos-import", "bos"} <= scripts
    ignore = (DEPLOY / "container" / "ignore").read_text().split()
    assert all(f"!{source}" in ignore for source in copied), "the build context filter drops a copied path"


# -- the health check script, against the real processes --

def _cmdline(tmp_path: Path, *argv: str) -> str:
    path = tmp_path / "cmdline"
    path.write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    return str(path)


def _run(cmdline: str, **env: str) -> int:
    full = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", **env)
    return subprocess.run([str(BIN / "python"), str(HEALTHCHECK), cmdline], env=full, timeout=30).returncode


def test_healthcheck_of_the_api(api_server: ApiServer, tmp_path: Path) -> None:
    cmdline = _cmdline(tmp_path, "/opt/bos/bin/python", "/opt/bos/bin/bos-server")
    assert _run(cmdline, BOS_PORT=str(api_server.port)) == 0
    assert _run(cmdline, BOS_PORT=str(free_port())) == 1
    down = ApiServer(tmp_path / "down", f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert _run(cmdline, BOS_PORT=str(down.port)) == 1  # up, but Redis is not: unhealthy
    finally:
        down.stop()


def test_healthcheck_of_the_operators(tmp_path: Path) -> None:
    cmdline = _cmdline(tmp_path, "/opt/bos/bin/python", "/opt/bos/bin/bos-operators", "--only", "power-on")
    liveness = tmp_path / "liveness"
    assert _run(cmdline, BOS_LIVENESS_FILE=str(liveness)) == 1
    liveness.write_text(str(time.time()))
    assert _run(cmdline, BOS_LIVENESS_FILE=str(liveness)) == 0
