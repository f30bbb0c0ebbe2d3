"""Prometheus metrics (docs/metrics.md): both endpoints parse as exposition, counters move
while a session runs, and a PCS outage shows in the PCS error counter."""

from __future__ import annotations

from typing import Dict, Tuple

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.operators.stack import Stack
from tests.operators.test_lifecycle import boot

pytestmark = pytest.mark.slow

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= set(lbls))


def test_counters_move_during_a_session(cluster: Stack) -> None:
    api_url, ops_url = cluster.api_server.url + "/metrics", cluster.operators.metrics_url
    api_before, ops_before = scrape(api_url), scrape(ops_url)
    nodes = cluster.take(6)
    boot(cluster, "metrics-boot", nodes)
    api_after, ops_after = scrape(api_url), scrape(ops_url)

    route = dict(route="/v2/components/{component_id}", method="PATCH", status="204")  # the nodes' reports: Prefer: return=minimal
    assert total(api_after, "bos_http_requests_total", **route) > total(api_before, "bos_http_requests_total", **route)
    assert total(api_after, "bos_http_request_duration_seconds_count", method="GET") > 0
    assert total(api_after, "bos_reporter_reports_total", result="accepted") >= \
        total(api_before, "bos_reporter_reports_total", result="accepted") + len(nodes)
    assert total(api_after, "bos_components_by_status", status="stable") >= len(nodes)
    assert total(api_after, "bos_sessions_by_status", status="complete") >= 1
    assert total(api_after, "bos_components_by_phase") == len(cluster.api.get("/v2/components").json())

    # Power-on acts on what status hands over in-process (no pass of its own needed, and since S2b is
    # carried by its action update no write wakes one): its components count, the status passes.
    name = "bos_operator_components_acted_on_total"
    assert total(ops_after, name, operator="power-on") > total(ops_before, name, operator="power-on")
    name = "bos_operator_passes_total"
    assert total(ops_after, name, operator="status") > total(ops_before, name, operator="status")
    assert total(ops_after, "bos_operator_pass_duration_seconds_count", operator="status") > 0
    assert total(ops_after, "bos_service_requests_total", service="pcs", outcome="ok") > \
        total(ops_before, "bos_service_requests_total", service="pcs", outcome="ok")
    assert total(ops_after, "bos_service_request_duration_seconds_count", service="bss") > 0


def test_pcs_outage_shows_in_the_pcs_error_counter(cluster: Stack) -> None:
    ops_url = cluster.operators.metrics_url
    before = scrape(ops_url)
    cluster.sim.add_service_fault("pcs", status=503, seconds=3)
    nodes = cluster.take(3)
    boot(cluster, "metrics-pcs-outage", nodes)
    after = scrape(ops_url)
    assert total(after, "bos_service_errors_total", service="pcs") > total(before, "bos_service_errors_total", service="pcs")


def test_metrics_under_apis_bos_too(cluster: Stack) -> None:
    assert scrape(cluster.api_server.url + "/apis/bos/metrics")
