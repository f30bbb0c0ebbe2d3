"""Prometheus metrics of bos-server and bos-operators (extension, docs/metrics.md).

Metric objects are created by `init()`, not at import: prometheus-client picks
its value store (in-process, or the multiprocess files of PROMETHEUS_MULTIPROC_DIR
that let `/metrics` add up every `--workers` process) when a metric is created,
so the server first decides the mode, then creates them. Until `init()` every
hook below is a no-op, so code paths that record metrics need no checks.

Names follow the Prometheus conventions: `bos_` prefix, `_total` counters,
`_seconds` durations. Gauges that describe the data (components by phase and
status, sessions by status) are not kept here: the API reads them from the
store's indexes at scrape time (api/metrics.py), so they are exact and free
between scrapes.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional, Tuple

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PASS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """Every counter and histogram of one process."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram
        self.requests = Counter("bos_http_requests_total", "API requests by route, method and status",
                                ["route", "method", "status"])
        self.latency = Histogram("bos_http_request_duration_seconds", "API request latency by route and method",
                                 ["route", "method"], buckets=LATENCY_BUCKETS)
        self.reports = Counter("bos_reporter_reports_total",
                               "Node reporter actual-state reports: accepted, rejected (409) or not_found (404)",
                               ["result"])
        self.redis_errors = Counter("bos_redis_errors_total", "Redis commands that failed", ["process"])
        self.redis_reconnects = Counter("bos_redis_reconnects_total",
                                        "Re-established Redis connections (change-event subscription)", ["process"])
        self.passes = Counter("bos_operator_passes_total", "Operator passes", ["operator"])
        self.pass_seconds = Histogram("bos_operator_pass_duration_seconds", "Operator pass duration", ["operator"],
                                      buckets=PASS_BUCKETS)
        self.acted = Counter("bos_operator_components_acted_on_total", "Components an operator acted on",
                             ["operator"])
        self.operator_errors = Counter("bos_operator_errors_total",
                                       "Operator errors: failed passes and components that recorded an error",
                                       ["operator"])
        self.calls = Counter("bos_service_requests_total", "Calls to external services by outcome",
                             ["service", "method", "outcome"])
        self.call_seconds = Histogram("bos_service_request_duration_seconds",
                                      "External service call latency, retries included", ["service"],
                                      buckets=LATENCY_BUCKETS)
        self.call_errors = Counter("bos_service_errors_total", "External service calls that failed for good",
                                   ["service"])
        self.retries = Counter("bos_service_retries_total", "Retried attempts of external service calls",
                               ["service"])
        self._http: Dict[Tuple[str, str, int], Tuple[Any, Any]] = {}
        self._reports: Dict[str, Any] = {}

    def http(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._http.get(key)
        if children is None:  # labels() costs a lock and a dict; the children are cached per key
            children = self._http[key] = (self.requests.labels(route, method, str(status)),
                                          self.latency.labels(route, method))
        children[0].inc()
        children[1].observe(seconds)

    def report(self, result: str) -> None:
        child = self._reports.get(result)
        if child is None:
            child = self._reports[result] = self.reports.labels(result)
        child.inc()


METRICS: Optional[Metrics] = None


def init() -> Metrics:
    """Create this process's metrics (once); call after PROMETHEUS_MULTIPROC_DIR is decided."""
    global METRICS
    if METRICS is None:
        METRICS = Metrics()
    return METRICS


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


# -- hooks: no-ops until init() --

def reporter_report(result: str) -> None:
    if METRICS is not None:
        METRICS.report(result)


def redis_error(process: str) -> None:
    if METRICS is not None:
        METRICS.redis_errors.labels(process).inc()


def redis_reconnect(process: str) -> None:
    if METRICS is not None:
        METRICS.redis_reconnects.labels(process).inc()


def operator_pass(operator: str, seconds: float, failed: bool) -> None:
    """One pass of `operator` that took `seconds`."""
    if METRICS is not None:
        METRICS.passes.labels(operator).inc()
        METRICS.pass_seconds.labels(operator).observe(seconds)
        if failed:
            METRICS.operator_errors.labels(operator).inc()


def operator_acted(operator: str, count: int, errors: int) -> None:
    if METRICS is not None:
        METRICS.acted.labels(operator).inc(count)
        if errors:
            METRICS.operator_errors.labels(operator).inc(errors)


def service_call(service: str, method: str, started: float, attempts: int, failed: bool) -> None:
    """One call to an external service (all its attempts) that began at `started`."""
    if METRICS is not None:
        name = service.lower()
        METRICS.calls.labels(name, method, "error" if failed else "ok").inc()
        METRICS.call_seconds.labels(name).observe(time.monotonic() - started)
        if failed:
            METRICS.call_errors.labels(name).inc()
        if attempts > 1:
            METRICS.retries.labels(name).inc(attempts - 1)
