"""`/metrics` of a server with `--workers 2` counts the requests of both workers."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from bos_sim.stack import ApiServer


def _component_puts(text: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "bos_http_requests_total" and s.labels.get("route") == "/v2/components/{component_id}"
               and s.labels.get("method") == "PUT")


def test_workers_are_added_up(tmp_path, redis_server) -> None:
    api = ApiServer(tmp_path, redis_server.url, extra_args=["--workers", "2"])
    try:
        for n in range(40):  # a new connection each: SO_REUSEPORT spreads them over both workers
            assert requests.put(f"{api.url}/v2/components/m{n}", json={"enabled": False}, timeout=10).ok
        for _ in range(4):  # whichever worker answers the scrape, it reports all 40
            assert _component_puts(requests.get(f"{api.url}/metrics", timeout=10).text) == 40
    finally:
        assert api.stop() == 0
