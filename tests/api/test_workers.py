"""Several server processes share one port and stop together on SIGTERM; the parent that
supervises them is a bare interpreter (supervisor.py), stops them all when one dies, and leaves
no metrics files behind."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import requests

from bos_sim.stack import ApiServer, wait_until

from .test_worker_lifecycle import alive, children_of

# The supervisor's anonymous (private) memory: `python -I -S supervisor.py` ≈3.7 MiB (RSS ≈9.8), without -S
# ≈5.1 MiB (site's path hooks), `python -m bos_server.workers` (site, logging, argparse) ≈8.6 MiB (RSS ≈15.5),
# with the API imported ≈36 MiB (issue 13: the API's memory is its processes' summed RSS). The shared
# libraries' pages (≈6 MiB) are the same whatever it imports.
SLIM_PARENT_ANON = 4.5 * 2 ** 20


def _anonymous(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def test_two_workers_serve_one_port_and_stop_cleanly(tmp_path, redis_server) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    api = ApiServer(tmp_path, redis_server.url, env={"TMPDIR": str(scratch)}, extra_args=["--workers", "2"])
    try:
        with requests.Session() as http:
            for n in range(20):
                resp = http.put(f"{api.url}/v2/components/w{n}", json={"enabled": False}, timeout=10)
                assert resp.status_code == 200
        ids = {r["id"] for r in requests.get(f"{api.url}/v2/components", timeout=10).json()}
        assert {f"w{n}" for n in range(20)} <= ids
        wait_until(lambda: b"supervisor.py" in Path(f"/proc/{api.proc.pid}/cmdline").read_bytes(), 10,
                   "the parent's exec of the slim supervisor")
        assert _anonymous(api.proc.pid) < SLIM_PARENT_ANON
        assert [p.name for p in scratch.iterdir() if p.name.startswith("bos-metrics-")]
    finally:
        assert api.stop() == 0
    assert not list(scratch.iterdir())  # the metrics directory went with the server


def test_a_worker_that_dies_stops_the_others_and_the_server_exits_non_zero(tmp_path, redis_server) -> None:
    api = ApiServer(tmp_path, redis_server.url, extra_args=["--workers", "2"])
    try:
        wait_until(lambda: b"supervisor.py" in Path(f"/proc/{api.proc.pid}/cmdline").read_bytes(), 10,
                   "the parent's exec of the slim supervisor")
        workers = children_of(api.proc.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        assert api.proc.wait(30) == 1
        assert not any(alive(pid) for pid in workers - {victim})
    finally:
        api.stop()
    assert re.search(rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} ERROR bos_server.workers: Worker {victim} "
                     r"exited unexpectedly \(status 9\); stopping the others$", api.log_path.read_text(), re.M)
