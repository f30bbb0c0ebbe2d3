"""Per-request tallies (server/metrics.py) flush to the same values Counter.inc and
Histogram.observe would have written: counts, bucket placement (a bound is inclusive,
+Inf last) and the latency sum."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from bos_server import metrics

pytestmark = pytest.mark.skipif(metrics.multiprocess(), reason="reads the in-process registry")


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_flush_writes_what_observe_would() -> None:
    tally = metrics.init()
    route = dict(route="/tally-test", method="GET")
    latencies = [0.0005, 0.001, 0.0010001, 0.7, 100.0]
    for seconds in latencies:
        tally.http("/tally-test", "GET", 200, seconds)
    tally.report("tally-test")
    tally.flush()
    assert _value("bos_http_requests_total", status="200", **route) == 5
    assert _value("bos_http_request_duration_seconds_count", **route) == 5
    assert _value("bos_http_request_duration_seconds_sum", **route) == pytest.approx(sum(latencies))
    for le, count in (("0.001", 2), ("0.0025", 3), ("0.5", 3), ("1.0", 4), ("30.0", 4), ("+Inf", 5)):
        assert _value("bos_http_request_duration_seconds_bucket", le=le, **route) == count, le
    assert _value("bos_reporter_reports_total", result="tally-test") == 1
    tally.flush()  # nothing pending: nothing counted twice
    assert _value("bos_http_requests_total", status="200", **route) == 5
