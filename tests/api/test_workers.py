"""Several server processes share one port and stop together on SIGTERM; the parent that
supervises them is a bare interpreter (workers.py), and leaves no metrics files behind."""

from __future__ import annotations

from pathlib import Path

import requests

from bos_sim.stack import ApiServer, wait_until

SLIM_PARENT_BYTES = 30 * 2 ** 20  # a bare interpreter is ≈15 MiB; with the API imported ≈56 MiB


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
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
        wait_until(lambda: b"bos_server.workers" in Path(f"/proc/{api.proc.pid}/cmdline").read_bytes(), 10,
                   "the parent's exec of the slim supervisor")
        assert _rss(api.proc.pid) < SLIM_PARENT_BYTES
        assert [p.name for p in scratch.iterdir() if p.name.startswith("bos-metrics-")]
    finally:
        assert api.stop() == 0
    assert not list(scratch.iterdir())  # the metrics directory went with the server
