"""The generated table's header (bench/report.py): what it says about the run's machine."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402


def header(steal: float, tmp_path: Path, **more: Any) -> str:
    meta: Dict[str, Any] = {"mode": "full", "seconds": 600, "steal_seconds": steal, "machine": {"cores": 2},
                            "settings": {}, **more}
    return report.generated({"meta": meta}, tmp_path / "benchmarks.md", [])


def test_steal_is_told_only_when_it_was_a_notable_share_of_the_run(tmp_path: Path) -> None:
    assert "Hypervisor steal" not in header(0.4, tmp_path)  # "0 s of CPU (0%)": not what slowed a run
    assert "Hypervisor steal during the run: 60 s of CPU (5% of the run's core time)" in header(60.0, tmp_path)


def test_the_host_speed_probe_is_told_when_the_run_measured_it(tmp_path: Path) -> None:
    """The same host ran this workload ~1.6x slower in one hour than in another, with neither steal
    nor load to show it: the header gives the probe's seconds at the run's start and end."""
    assert "Host speed" not in header(0.0, tmp_path)  # results of runs before the probe
    assert ("- Host speed: a 10,000,000-addition Python loop took 0.81 s at the start and 1.62 s at the end"
            in header(0.0, tmp_path, speed_probe_seconds={"start": 0.81, "end": 1.62}))


def test_the_memory_probe_is_told_beside_the_speed_probe(tmp_path: Path) -> None:
    """Sitting 39: an hour in which the loop ran as fast as ever but Redis read a record 2-3x slower
    (memory latency, which a loop in the caches does not feel): the header gives both."""
    text = header(0.0, tmp_path, speed_probe_seconds={"start": 0.36, "end": 0.37},
                  memory_probe_ns={"start": 190, "end": 1210})
    assert ("0.37 s at the end (compare runs by it: the same host varies from hour to hour); a read at a random "
            "place in 256 MiB cost 190 ns more than one in the caches at the start and 1,210 ns at the end") in text


def test_the_probes_before_each_part_are_told(tmp_path: Path) -> None:
    """The growth column divides a figure at 100,000 by one measured minutes earlier at 10,000: the
    probes before each part show whether the host's speed moved in between."""
    probes = [{"part": "API/store, 10,000", "loop_seconds": 0.68, "memory_ns": 249},  # before the IPC probe
              {"part": "API/store, 100,000", "loop_seconds": 0.41, "memory_ns": 1183, "ipc_us": 17.46}]
    assert ("- Host probes before each part (loop / memory read / round trip between two processes): "
            "API/store, 10,000: 0.68 s / 249 ns; API/store, 100,000: 0.41 s / 1,183 ns / 17.5 µs"
            in header(0.0, tmp_path, probes=probes))


def test_the_probes_are_taken_before_each_part(monkeypatch) -> None:
    from bench import boot, run
    monkeypatch.setattr(boot, "run_stack", lambda nodes, latency, **_kw: {"nodes": nodes})
    monkeypatch.setattr(run, "log", lambda text: None)
    monkeypatch.setattr(run, "speed_probe", lambda: 0.5)
    monkeypatch.setattr(run, "memory_probe", lambda: 200.0)
    monkeypatch.setattr(run, "ipc_probe", lambda: 12.34)
    args = run.parse_args(["--e2e-sizes", "1000,2000", "--latencies", "zero", "--zero-runs", "1"])
    probes: list = []
    run.run_e2e(args, probes)
    assert [p["part"] for p in probes] == ["end to end, 1,000, zero", "end to end, 2,000, zero"]
    assert probes[0] == {"part": "end to end, 1,000, zero", "loop_seconds": 0.5, "memory_ns": 200, "ipc_us": 12.3}


def test_the_probes_time_their_loops() -> None:
    from bench.common import ipc_probe, memory_probe
    assert 0 <= memory_probe() < 10_000
    assert 0 < ipc_probe() < 10_000


def test_the_speed_probe_times_the_loop() -> None:
    from bench.common import speed_probe
    assert 0 < speed_probe() < 60


def test_the_header_tells_when_the_sizes_ran_in_turn_and_the_cpu_is_the_sessions(tmp_path: Path) -> None:
    """A run before these two changes ran each size's stacks together and counted discovery's CPU
    in the "boot + reboot" rows: its header must not claim either."""
    settings = {"zero_runs": 3, "realistic_runs": 3}
    old = header(0.0, tmp_path, settings=settings)
    assert "stack 3 times per size, shown by" in old and "in turn" not in old and "sessions' alone" not in old
    new = header(0.0, tmp_path, settings={**settings, "e2e_sizes_in_turn": True, "e2e_cpu": "sessions"})
    assert ("stack 3 times per size (the sizes taken in turn), shown by the run with the median wall time of each "
            "operation, with each process's median CPU (the sessions' alone, discovery left out) and largest peak RSS"
            in new)
