"""`python -m bench.v1` in miniature: both v1 measurements run and are reported (no speed asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_v1_bench_reports_reboot_and_status_cost(tmp_path: Path) -> None:
    out = tmp_path / "v1.json"
    argv = [sys.executable, "-m", "bench.v1", "--nodes", "20", "--status-nodes", "300", "--runs", "2",
            "--out", str(out)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["reboot"]["nodes"] == 20 and result["reboot"]["reboot_wall_seconds"] > 0
    assert result["reboot"]["ordinal_gap_seconds"] >= 0  # ordinal 2 powers on only after ordinal 1 finished
    for key in ("v1_session_status_ms", "v1_session_describe_ms", "v1_boot_set_status_ms", "v2_extended_status_ms"):
        assert result["status"][key] > 0, key
