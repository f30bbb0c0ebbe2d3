"""`GET /metrics` (extension, docs/metrics.md): Prometheus exposition of the API.

Counters and histograms come from every `--workers` process (prometheus-client's
multiprocess mode: each worker writes its own memory-mapped file, a scrape adds
them up), so any worker answers for all. Components by phase and by status and
sessions by status are read from the store's indexes at scrape time: a few
ZCARDs, whatever the number of components (D1).
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, List

from aiohttp import web

from bos_shared import schema

from .. import metrics
from ..store import keys
from .context import ctx
from .errors import Handler, answer, logged

EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
PREFIXES = ("/apis/bos",)


_ROUTES: Dict[Any, str] = {}  # resource -> label: the app's resources are fixed, so this stays small


def route_of(request: web.Request) -> str:
    """The route template (`/v2/components/{component_id}`), never the raw path (bounded labels)."""
    resource = request.match_info.route.resource
    label = _ROUTES.get(resource)
    if label is None:
        label = _ROUTES[resource] = _label(resource)
    return label


def _label(resource: Any) -> str:
    if resource is None:
        return "unmatched"
    path = resource.canonical
    for prefix in PREFIXES:
        if path.startswith(prefix + "/"):
            path = path[len(prefix):]
    return path.rstrip("/") or "/"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if metrics.METRICS is not None:
            metrics.METRICS.http(route_of(request), request.method, status, time.perf_counter() - started)


@web.middleware
async def counted_problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """metrics_middleware and errors.problem_middleware as one layer: the whole chain when neither auth
    nor the large-body gate comes between them (the default; api/app.py). Each layer is a coroutine
    and a partial per request: a node's report passed through two for what one does (issue 13).
    No HTTPException reaches this layer's caller: the problem handling answers them all."""
    started = time.perf_counter()
    status = 500  # cancelled (the client went away): counted as metrics_middleware counts it
    try:
        response = await answer(request, handler)
        status = response.status
        logged(request, response, started)
        return response
    finally:
        if metrics.METRICS is not None:
            metrics.METRICS.http(route_of(request), request.method, status, time.perf_counter() - started)


class _Families:
    """A collector that yields metric families computed before the scrape."""

    def __init__(self, families: List[Any]) -> None:
        self.families = families

    def collect(self) -> Iterable[Any]:
        return self.families


def _store_families() -> List[Any]:
    from prometheus_client.core import GaugeMetricFamily
    return [GaugeMetricFamily("bos_components_by_phase", "Components by status.phase", labels=["phase"]),
            GaugeMetricFamily("bos_components_by_status", "Components by computed status", labels=["status"]),
            GaugeMetricFamily("bos_sessions_by_status", "Sessions by status", labels=["status"])]


async def get_metrics(request: web.Request) -> web.Response:
    from prometheus_client import CollectorRegistry, REGISTRY, generate_latest
    if metrics.METRICS is None:
        return web.Response(status=404, text="metrics are turned off (--no-metrics)\n")
    metrics.flush()  # this worker's counts exact; the others' are at most FLUSH_SECONDS old
    registry = CollectorRegistry(auto_describe=False)
    if metrics.multiprocess():
        from prometheus_client import multiprocess
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Families(list(REGISTRY.collect())))
    registry.register(_Families(await _counts(request)))
    return web.Response(body=generate_latest(registry), headers={"Content-Type": EXPOSITION})


async def _counts(request: web.Request) -> List[Any]:
    redis = ctx(request).store.redis
    phases = [p for p in schema.PHASES if p]
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.COMPONENT_IDS)
        for phase in phases:
            pipe.zcard(keys.by_phase(phase))
        for status in schema.COMPONENT_STATUSES:
            pipe.zcard(keys.by_status(status))
        for status in schema.SESSION_STATUSES:
            pipe.zcard(keys.sessions_by_status(status))
        counts = iter(await pipe.execute())
    by_phase, by_status, sessions = _store_families()
    total = next(counts)
    phase_counts = [next(counts) for _ in phases]
    for phase, count in zip(phases, phase_counts):
        by_phase.add_metric([phase], count)
    by_phase.add_metric([""], max(0, total - sum(phase_counts)))
    for status in schema.COMPONENT_STATUSES:
        by_status.add_metric([status], next(counts))
    for status in schema.SESSION_STATUSES:
        sessions.add_metric([status], next(counts))
    return [by_phase, by_status, sessions]


ROUTES = [("GET", "/metrics", get_metrics)]
