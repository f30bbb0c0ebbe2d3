"""No 503 once Redis is back: right after /v2/healthz turns green, concurrent requests succeed.

Concurrent traffic fills the API's Redis pool; then the real redis-server is
killed (SIGKILL) and started again on the same port, so the pool holds
connections to the old process. As soon as healthz is green, CONCURRENT requests (reads, and writes
that go through the compare-and-set script) are sent at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, List, Tuple

import requests

from bos_sim.stack import ApiServer, RedisServer, wait_until

CONCURRENT = 36
ROUNDS = 3


def _requests(base: str, http: requests.Session, round_: int) -> List[Callable[[], requests.Response]]:
    calls: List[Callable[[], requests.Response]] = []
    for n in range(CONCURRENT):
        kind = n % 4
        if kind == 0:
            calls.append(lambda n=n: http.put(f"{base}/v2/components/r{round_}x{n}", json={"enabled": False}, timeout=30))
        elif kind == 1:
            calls.append(lambda: http.get(f"{base}/v2/components", timeout=30))
        elif kind == 2:
            calls.append(lambda: http.get(f"{base}/v2/sessions", timeout=30))
        else:
            calls.append(lambda n=n: http.patch(f"{base}/v2/options", json={"polling_frequency": 10 + n}, timeout=30))
    return calls


def test_no_503_right_after_healthz_is_green_again(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    api = ApiServer(tmp_path / "api", redis.url)
    http = requests.Session()
    http.mount("http://", requests.adapters.HTTPAdapter(pool_connections=CONCURRENT, pool_maxsize=CONCURRENT))
    failures: List[Tuple[int, int, str]] = []
    try:
        with ThreadPoolExecutor(CONCURRENT) as pool:
            for round_ in range(ROUNDS):
                list(pool.map(lambda call: call(), _requests(api.url, http, round_)))  # many pooled connections
                redis.proc.kill()
                redis.proc.wait()
                redis = RedisServer(tmp_path / f"redis-{round_}", port=redis.port)
                wait_until(lambda: http.get(f"{api.url}/v2/healthz", timeout=10).status_code == 200, 30, "healthz")
                answers = list(pool.map(lambda call: call(), _requests(api.url, http, round_)))
                failures += [(round_, r.status_code, r.text[:200]) for r in answers if r.status_code >= 500]
    finally:
        http.close()
        assert api.stop() == 0
        redis.stop()
    assert failures == [], failures
