"""The server starts without Redis, answers 503 meanwhile, and reconnects by itself (D6)."""

from __future__ import annotations

import requests

from bos_sim.stack import ApiServer, RedisServer, free_port, wait_until
from tests.support.client import assert_problem


def test_server_starts_without_redis_and_recovers_when_it_comes_up(tmp_path) -> None:
    port = free_port()
    api = ApiServer(tmp_path / "api", f"redis://127.0.0.1:{port}/0")
    try:
        assert requests.get(f"{api.url}/v2/version", timeout=5).status_code == 200
        health = requests.get(f"{api.url}/v2/healthz", timeout=5)
        assert health.status_code == 503
        assert health.headers["Content-Type"].startswith("application/json")
        assert health.json() == {"dbStatus": "not_available", "apiStatus": "ok"}
        for path in ("/v2/components", "/v2/sessions", "/v2/options", "/v2/sessiontemplates"):
            assert_problem(requests.get(api.url + path, timeout=5), 503, "Unable to connect to the Redis database")
        redis = RedisServer(tmp_path / "redis", port=port)
        try:
            wait_until(lambda: requests.get(f"{api.url}/v2/healthz", timeout=5).status_code == 200, 15, "reconnect")
            assert requests.get(f"{api.url}/v2/components", timeout=5).json() == []
        finally:
            redis.stop()
        wait_until(lambda: requests.get(f"{api.url}/v2/healthz", timeout=5).status_code == 503, 15, "outage seen")
        assert_problem(requests.get(f"{api.url}/v2/components", timeout=5), 503, "Unable to connect to the Redis database")
    finally:
        assert api.stop() == 0
