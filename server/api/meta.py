"""Version documents, health and the OpenAPI document (api.md §3.1, D6, D16)."""

from __future__ import annotations

from aiohttp import web

from .context import ctx
from .openapi import document
from .responses import respond

GATEWAY_PREFIX = "/apis/bos"


def _base(request: web.Request) -> str:
    """scheme://host plus the mount prefix this request used (D16)."""
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
    prefix = GATEWAY_PREFIX if request.path.startswith(GATEWAY_PREFIX + "/") or request.path == GATEWAY_PREFIX else ""
    return f"{scheme}://{host}{prefix}"


def _version(request: web.Request, with_versions: bool) -> dict:
    major, minor, patch = (ctx(request).version.split(".") + ["0", "0"])[:3]
    base = _base(request)
    links = [{"href": f"{base}/", "rel": "self"}]
    if with_versions:
        links.append({"href": f"{base}/v2", "rel": "versions"})
    return {"major": major, "minor": minor, "patch": patch, "links": links}


async def root(request: web.Request) -> web.Response:
    return respond([_version(request, False)])


async def v2(request: web.Request) -> web.Response:
    return respond(_version(request, True))


async def healthz(request: web.Request) -> web.Response:
    ok = await ctx(request).store.ping(timeout=1.0)
    body = {"dbStatus": "ok" if ok else "not_available", "apiStatus": "ok"}
    return respond(body, 200 if ok else 503)


async def openapi(request: web.Request) -> web.Response:
    return respond(document(ctx(request).version))


ROUTES = [
    ("GET", "/", root),
    ("GET", "/v2", v2),
    ("GET", "/v2/version", v2),
    ("GET", "/v2/healthz", healthz),
    ("GET", "/v2/openapi.json", openapi),
]
