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

Per-request updates (request count and latency, reporter reports) are kept in
plain Python counts and written to prometheus-client's values by `flush()`: at
most every FLUSH_SECONDS, at a scrape and at shutdown. In multiprocess mode
every value update is a locked write into a memory-mapped file (≈8 µs a request
for the counter and the histogram); a tally is a dict look-up and a few integer
additions (≈1 µs), and a flush writes each label set once however many
requests it covers. A scrape is exact for the worker that answers it; the other
workers' counts reach it within FLUSH_SECONDS (issue 15: no measurable cost on the
hot path).
"""

from __future__ import annotations

import asyncio
import os
import time
from bisect import bisect_left
from typing import Any, Dict, List, Optional, Tuple

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FLUSH_SECONDS = 0.5  # how long a worker's per-request counts may wait before they reach the scrape files
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
        self.read = Counter("bos_operator_components_read_total",
                            "Component records an operator read under its claim to decide about them", ["operator"])
        self.leases = Counter("bos_operator_leases_total",
                              "Component leases by event: asked, granted, fence_checked, heartbeat_checked, released",
                              ["event"])
        self.cas = Counter("bos_store_component_writes_total",
                           "Component records in compare-and-set rounds: written or conflicted (re-read, retried)",
                           ["outcome"])
        # Per-request tallies (flush()): label set -> [requests, latency sum, count per latency bucket]
        self._http_tally: Dict[Tuple[str, str, int], List[Any]] = {}
        self._report_tally: Dict[str, int] = {}
        self._writes_tally = [0, 0]  # written, conflicted
        self._flush_timer: Optional[asyncio.TimerHandle] = None

    def http(self, route: str, method: str, status: int, seconds: float) -> None:
        """One API request: tallied here, written to the metric values by flush()."""
        row = self._http_tally.get((route, method, status))
        if row is None:
            row = self._http_tally[(route, method, status)] = [0, 0.0] + [0] * (len(LATENCY_BUCKETS) + 1)
        row[0] += 1
        row[1] += seconds
        row[2 + bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the first bucket with seconds <= le (+Inf last)
        if self._flush_timer is None:
            self._arm()

    def report(self, result: str) -> None:
        self._report_tally[result] = self._report_tally.get(result, 0) + 1
        if self._flush_timer is None:
            self._arm()

    def tally_writes(self, written: int, conflicted: int) -> None:
        self._writes_tally[0] += written
        self._writes_tally[1] += conflicted
        if self._flush_timer is None:
            self._arm()

    def _arm(self) -> None:
        """Flush within FLUSH_SECONDS (from the event loop); without a running loop, now."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_timer = loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write the tallies to the metric values (the multiprocess files): one update per label set."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        http, self._http_tally = self._http_tally, {}
        reports, self._report_tally = self._report_tally, {}
        for (route, method, status), row in http.items():
            self.requests.labels(route, method, str(status)).inc(row[0])
            histogram = self.latency.labels(route, method)
            # Histogram.observe() one request at a time would cost what the tally saves; its
            # values (`_sum`, one `_buckets` entry per bound, +Inf last) take the sums directly.
            histogram._sum.inc(row[1])
            for bucket, count in zip(histogram._buckets, row[2:]):
                if count:
                    bucket.inc(count)
        for result, count in reports.items():
            self.reports.labels(result).inc(count)
        (written, conflicted), self._writes_tally = self._writes_tally, [0, 0]
        for outcome, count in (("written", written), ("conflicted", conflicted)):
            if count:
                self.cas.labels(outcome).inc(count)


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

def flush() -> None:
    """Write this process's pending per-request counts (before a scrape, at shutdown)."""
    if METRICS is not None:
        METRICS.flush()


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


def operator_read(operator: str, count: int) -> None:
    """`operator` read `count` component records under its claim (re-read before deciding)."""
    if METRICS is not None and count:
        METRICS.read.labels(operator).inc(count)


def leases(event: str, count: int) -> None:
    """`count` lease keys `asked` for, `granted`, `fence_checked` (checked before a write),
    `heartbeat_checked` (read by the heartbeat) or `released` (claims.py)."""
    if METRICS is not None and count:
        METRICS.leases.labels(event).inc(count)


def component_writes(written: int, conflicted: int) -> None:
    """One compare-and-set round of a component update: records written and records that conflicted
    (tallied like a request: the reporter's PATCH is a hot path)."""
    if METRICS is not None:
        METRICS.tally_writes(written, conflicted)


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
