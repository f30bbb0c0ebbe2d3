"""The guarantees' tests can fail: with each mechanism switched off, its tests go red."""

from __future__ import annotations

from pathlib import Path

import pytest

from .mutants import MUTANTS
from .runner import run_mutant

@pytest.mark.parametrize("name", sorted(n for n, m in MUTANTS.items() if not m.heavy))
def test_switching_the_mechanism_off_turns_its_tests_red(name: str, tmp_path: Path) -> None:
    result = run_mutant(name, basetemp=tmp_path / "pytest")
    assert result.killed, f"{name} survived: {MUTANTS[name].mechanism}\n{result.output[-3000:]}"
