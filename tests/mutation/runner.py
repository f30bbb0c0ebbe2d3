"""Runs one mutant's tests in a child pytest with the mutant applied to every process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from .mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(__file__).resolve().parent / "site"


@dataclass
class Result:
    killed: bool
    failed: List[str]
    output: str


def run_mutant(name: str, timeout: float = 600, basetemp: Optional[Path] = None) -> Result:
    """`basetemp`: the child's own temporary directory (under a parallel run, child pytests
    must not share pytest's numbered directories)."""
    env = dict(os.environ, BOS_MUTANT=name,
               PYTHONPATH=os.pathsep.join(filter(None, [str(SITE), str(ROOT), os.environ.get("PYTHONPATH")])))
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *MUTANTS[name].tests]
    argv += [f"--basetemp={basetemp}"] if basetemp else []
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    failed = sorted(set(re.findall(r"^FAILED (\S+)", output, re.M)))
    # killed = the tests ran and at least one failed (an import error in the mutant is not a kill)
    return Result(proc.returncode == 1 and bool(failed), failed, output)
