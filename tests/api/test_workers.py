"""Several server processes share one port and stop together on SIGTERM."""

from __future__ import annotations

import requests

from bos_sim.stack import ApiServer


def test_two_workers_serve_one_port_and_stop_cleanly(tmp_path, redis_server) -> None:
    api = ApiServer(tmp_path, redis_server.url, extra_args=["--workers", "2"])
    try:
        with requests.Session() as http:
            for n in range(20):
                resp = http.put(f"{api.url}/v2/components/w{n}", json={"enabled": False}, timeout=10)
                assert resp.status_code == 200
        ids = {r["id"] for r in requests.get(f"{api.url}/v2/components", timeout=10).json()}
        assert {f"w{n}" for n in range(20)} <= ids
    finally:
        assert api.stop() == 0
