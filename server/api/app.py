"""The aiohttp application: every route at the root and under /apis/bos (api.md §1.1)."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from aiohttp import web

from . import applystaged, body_gate, components, history, meta, metrics, options, sessions, templates, v1
from .. import dashboard
from .context import CONTEXT, Context
from .errors import problem_middleware
from .params import MAX_BODY

PREFIXES = ("", "/apis/bos")
Route = Tuple[str, str, Callable[..., Any]]


def all_routes() -> List[Route]:
    return (meta.ROUTES + options.ROUTES + components.ROUTES + applystaged.ROUTES
            + sessions.ROUTES + templates.ROUTES + history.ROUTES + v1.ROUTES)


def extra_routes() -> List[Route]:
    """Routes outside the v2 contract and its OpenAPI document: metrics, dashboard."""
    return metrics.ROUTES + dashboard.ROUTES


def _paths(path: str, prefix: str) -> List[str]:
    """The path under one prefix, plus its trailing-slash twin (accepted, no redirect)."""
    full = (prefix + path) if path != "/" else (prefix + "/")
    variants = [full]
    twin = full[:-1] if full.endswith("/") else full + "/"
    if twin:
        variants.append(twin)
    return variants


def _plain_last(item: Tuple[str, Any]) -> bool:
    """Sort key of the resources' registration: variable paths before plain ones (a stable sort).

    aiohttp tries the resources that share a path prefix in registration order. A node's report
    (`/v2/components/x1`) shares `/v2/components` with the listing's path and its trailing-slash
    twin, which were tried and failed first (two resolves per report). A plain path and a variable
    one of the same prefix never match the same URL (a variable matches a non-empty segment after
    the prefix's slash; a plain path is the prefix, with or without that slash), so the order
    between them decides nothing but the cost; among variable paths, registration order is kept."""
    return "{" not in item[0]


def create_app(context: Context, auth: Optional[Any] = None,
               large_body_permits: int = body_gate.DEFAULT_PERMITS) -> web.Application:
    """`auth`: the auth middleware (bos_server.auth), outermost but for metrics, so it audits final
    statuses; None = off. Metrics come first so that they count refused requests too. Requests with
    large bodies then pass the worker's gate (body_gate.py; `large_body_permits` 0: none, and no
    middleware: a layer every request, a node's report too, would pass through for nothing), after
    auth so that a refused request never waits for it."""
    between = ([auth] if auth is not None else []) + ([body_gate.large_body_gate] if large_body_permits > 0 else [])
    middlewares = ([metrics.metrics_middleware, *between, problem_middleware] if between
                   else [metrics.counted_problems])  # the two in one layer (metrics.counted_problems)
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
    app[CONTEXT] = context
    body_gate.install(app, large_body_permits)
    dashboard.install(app)
    by_path: Dict[str, List[Tuple[str, Callable[..., Any]]]] = {}
    for method, path, handler in all_routes() + extra_routes():
        for prefix in PREFIXES:
            for variant in _paths(path, prefix):
                by_path.setdefault(variant, []).append((method, handler))
    for path, handlers in sorted(by_path.items(), key=_plain_last):
        resource = app.router.add_resource(path)
        for method, handler in handlers:
            resource.add_route(method, handler)
    return app
