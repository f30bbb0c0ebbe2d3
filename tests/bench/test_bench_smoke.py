"""`make bench QUICK=1` in miniature: the benchmark runs end to end and reports every measurement.

Not a timed test: nothing here asserts a speed, only that each measurement the
issue asks for is present in the JSON and in the generated document.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API_MEASUREMENTS = {"load", "filtered_list", "full_list", "paged_list", "reporter_patch", "bulk_patch",
                    "session_status"}
PROCESSES = {"api", "operators", "simulator", "redis"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    argv = [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out),
            "--doc", str(out / "benchmarks.md"), "--load-seconds", "1"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.mark.slow
def test_quick_bench_reports_every_api_measurement(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    assert results["meta"]["mode"] == "quick"
    assert {"cpu", "cores", "memory_gib", "python", "redis"} <= set(results["meta"]["machine"])
    (size, api), = results["api"].items()
    assert API_MEASUREMENTS <= set(api)
    for name in ("filtered_list", "full_list", "paged_list", "bulk_patch", "session_status"):
        assert api[name]["median_ms"] > 0 and api[name]["runs_ms"], name
    load = api["reporter_patch"]
    assert load["median_rate_per_s"] > 0 and load["errors"] == 0
    assert load["median_p50_ms"] > 0 and load["median_p99_ms"] >= load["median_p50_ms"]
    assert api["load"]["redis_bytes_per_component"] > 0 and api["load"]["record_json_bytes"] > 1000
    assert api["session_status"]["members"] == int(size)


@pytest.mark.slow
def test_quick_bench_times_boot_and_reboot_at_both_latencies(quick_run: Path) -> None:
    e2e = json.loads((quick_run / "results.json").read_text())["e2e"]
    assert set(e2e) == {"zero", "realistic"}
    for latency, by_size in e2e.items():
        (nodes, run), = by_size.items()
        for operation in ("boot", "reboot"):
            timing = run[operation]
            assert timing["managed"] == int(nodes) and timing["percent_successful"] == 100
            assert timing["wall_seconds"] > 0
            if latency == "realistic":
                assert timing["hardware_seconds"] > 0
                assert timing["overhead_seconds"] == pytest.approx(timing["wall_seconds"] - timing["hardware_seconds"],
                                                                   abs=0.02)
        assert PROCESSES <= set(run["processes"])
        assert all(p["rss_peak_mib"] > 0 for p in run["processes"].values())
        assert run["redis_bytes_per_component"] > 0


@pytest.mark.slow
def test_quick_bench_writes_the_document_and_plot(quick_run: Path) -> None:
    doc = (quick_run / "benchmarks.md").read_text()
    assert "<!-- BEGIN GENERATED" in doc and "<!-- END GENERATED -->" in doc
    assert "Quick (smoke) run" in doc and "| Measurement | Size | Median |" in doc
    assert "Machine:" in doc and "Date:" in doc
    try:
        import matplotlib  # noqa: F401  (only installed by `make bench`)
    except ImportError:
        return
    assert (quick_run / "scaling.png").stat().st_size > 10_000
    assert "![scaling](scaling.png)" in doc
