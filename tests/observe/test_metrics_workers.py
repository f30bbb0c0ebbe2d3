"""`/metrics` of a server with `--workers 2` counts the requests of both workers."""

from __future__ import annotations

import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from bos_server.metrics import FLUSH_SECONDS
from bos_sim.stack import ApiServer, wait_until


def _component_puts(text: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "bos_http_requests_total" and s.labels.get("route") == "/v2/components/{component_id}"
               and s.labels.get("method") == "PUT")


def test_workers_are_added_up(tmp_path, redis_server) -> None:
    files = tmp_path / "metrics"
    files.mkdir()
    api = ApiServer(tmp_path, redis_server.url, env={"PROMETHEUS_MULTIPROC_DIR": str(files)},
                    extra_args=["--workers", "2"])
    scrape = f"{api.url}/metrics"

    def in_files() -> float:  # read here, not scraped: a scrape would flush the answering worker
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(files))
        return _component_puts(generate_latest(registry).decode())

    try:
        for n in range(40):  # a new connection each: SO_REUSEPORT spreads them over both workers
            assert requests.put(f"{api.url}/v2/components/m{n}", json={"enabled": False}, timeout=10).ok
        # Each worker writes its tallies to the shared files within FLUSH_SECONDS, unasked (metrics.py)
        wait_until(lambda: in_files() == 40, 10 * FLUSH_SECONDS + 5, "both workers' 40 PUTs in the metric files")
        for _ in range(4):  # whichever worker answers the scrape reports all 40, no more
            assert _component_puts(requests.get(scrape, timeout=10).text) == 40
    finally:
        assert api.stop() == 0


def test_a_scrape_counts_its_own_workers_requests_at_once(tmp_path, redis_server) -> None:
    """The answering worker flushes its tallies before the scrape: no wait for FLUSH_SECONDS."""
    api = ApiServer(tmp_path, redis_server.url)
    try:
        for n in range(5):
            assert requests.put(f"{api.url}/v2/components/s{n}", json={"enabled": False}, timeout=10).ok
        assert _component_puts(requests.get(f"{api.url}/metrics", timeout=10).text) == 5
    finally:
        assert api.stop() == 0
