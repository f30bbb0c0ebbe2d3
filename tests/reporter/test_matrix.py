"""The reporter's unit tests under Python 3.9 and 3.13 too (3.11 is this suite's own interpreter).

Node images carry whatever python3 their distribution has, so the agent must run
on 3.9 to 3.13; on 3.12+ pyinotify needs the pyasyncore backport. Each
interpreter gets a cached venv (.venv-reporter-py39, .venv-reporter-py313) with
only the reporter's declared dependencies and pytest; bos_reporter and bos_shared
come from this checkout through symlinks, so nothing is installed into the tree.
Both interpreters run at the same time; the first run creates the venvs (PyPI).
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from .conftest import find_python

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("3.9", "3.13")
MUST_PASS = (  # the pyinotify path and the polling fallback, on every interpreter
    "test_pyinotify_imports_on_this_python",
    "test_auto_mode_uses_inotify_for_every_file",
    "test_trigger_file_makes_it_report_at_once[auto]",
    "test_trigger_file_makes_it_report_at_once[poll]",
    "test_no_inotify_instance_left_falls_back_to_polling",
)


def requirements() -> List[str]:
    """The reporter's own dependencies (markers kept: pyasyncore only on 3.12+) and pytest."""
    project = tomllib.loads((ROOT / "reporter" / "pyproject.toml").read_text())["project"]
    deps = [d for d in project["dependencies"] if not d.startswith("bos-shared")]
    dev = (ROOT / "requirements-dev.txt").read_text().splitlines()
    tools = [line.strip() for line in dev if re.match(r"pytest(-timeout)?\s*[<>=!~]", line.strip())]
    return deps + tools


def ensure_venv(python: str, version: str) -> Path:
    """Create or refresh the cached venv; a lock keeps parallel runs (xdist) from racing."""
    venv = ROOT / f".venv-reporter-py{version.replace('.', '')}"
    wanted = "\n".join(requirements())
    stamp = venv / ".bos-requirements"
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == wanted and (venv / "bin" / "python").exists():
            return venv
        if not (venv / "bin" / "python").exists():
            subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *wanted.splitlines()], check=True)
        stamp.write_text(wanted)
    return venv


def source_links(directory: Path) -> Path:
    """A directory where `bos_reporter` and `bos_shared` are this checkout's folders."""
    directory.mkdir(parents=True, exist_ok=True)
    for package, folder in (("bos_reporter", "reporter"), ("bos_shared", "shared")):
        link = directory / package
        if not link.exists():
            link.symlink_to(ROOT / folder, target_is_directory=True)
    return directory


def run_unit_tests(python: str, version: str, scratch: Path) -> Tuple[subprocess.CompletedProcess, Path]:
    venv = ensure_venv(python, version)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BOS_REPORTER_"))}
    env["PYTHONPATH"] = str(source_links(scratch / "src"))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the 3.11 run owns __pycache__ in the tree
    junit = scratch / "junit.xml"
    argv = [str(venv / "bin" / "python"), "-m", "pytest", "tests/reporter/unit", "-q", "-p", "no:cacheprovider",
            "--confcutdir", "tests/reporter/unit", f"--junitxml={junit}", "--basetemp", str(scratch / "tmp")]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600), junit


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, "Future[Tuple[subprocess.CompletedProcess, Path]]"]:
    pool = ThreadPoolExecutor(max_workers=len(VERSIONS))
    runs = {}
    for version in VERSIONS:
        python = find_python(version)
        if python:
            runs[version] = pool.submit(run_unit_tests, python, version, tmp_path_factory.mktemp(f"py{version}"))
    pool.shutdown(wait=False)
    return runs


@pytest.mark.parametrize("version", VERSIONS)
def test_reporter_unit_tests_pass_on(version: str,
                                     matrix: Dict[str, "Future[Tuple[subprocess.CompletedProcess, Path]]"]) -> None:
    if version not in matrix:
        pytest.skip(f"no python{version} found (pyenv or PATH; set BOS_REPORTER_PY{version.replace('.', '')})")
    done, junit = matrix[version].result()
    assert done.returncode == 0, f"python{version}:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    cases = {case.get("name"): case for case in ET.parse(junit).iter("testcase")}
    for name in MUST_PASS:
        assert name in cases and len(cases[name]) == 0, f"{name} did not pass on python{version}"
