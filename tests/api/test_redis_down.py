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


def test_password_protected_redis_works_when_the_url_carries_the_password(tmp_path) -> None:
    redis = RedisServer(tmp_path / "redis", password="s3cret")
    try:
        api = ApiServer(tmp_path / "api", redis.url)
        try:
            assert requests.get(f"{api.url}/v2/healthz", timeout=5).status_code == 200
            assert requests.put(f"{api.url}/v2/components/x1", json={"enabled": False}, timeout=5).status_code == 200
        finally:
            api.stop()
        wrong = ApiServer(tmp_path / "api-wrong", redis.url.replace("s3cret", "wrong"))
        try:
            assert requests.get(f"{wrong.url}/v2/healthz", timeout=5).status_code == 503
            assert_problem(requests.get(f"{wrong.url}/v2/components", timeout=5), 503,
                           "Unable to connect to the Redis database")
        finally:
            wrong.stop()
    finally:
        redis.stop()
