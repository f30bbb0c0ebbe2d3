"""Version documents, health and the OpenAPI document (api.md §3.1, D6, D16)."""

from __future__ import annotations

from aiohttp import web

from .context import ctx
from .openapi import document
from .responses import respond
from .routes import route

GATEWAY_PREFIX = "/apis/bos"


def _base(request: web.Request) -> str:
    """scheme://host plus the mount prefix this request used (D16)."""
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
    prefix = GATEWAY_PREFIX if request.path.startswith(GATEWAY_PREFIX + "/") or request.path == GATEWAY_PREFIX else ""
    return f"{scheme}://{host}{prefix}"


def version_document(request: web.Request, versions: str = "") -> dict:
    """The Version object; `versions` ("v1", "v2") adds the `versions` link (api.md §3.1, v1.md §2.1)."""
    major, minor, patch = (ctx(request).version.split(".") + ["0", "0"])[:3]
    base = _base(request)
    links = [{"href": f"{base}/", "rel": "self"}]
    if versions:
        links.append({"href": f"{base}/{versions}", "rel": "versions"})
    return {"major": major, "minor": minor, "patch": patch, "links": links}


async def root(request: web.Request) -> web.Response:
    """Both API versions, v1 first; the two elements are identical (v1.md §2.1)."""
    return respond([version_document(request), version_document(request)])


async def v2(request: web.Request) -> web.Response:
    return respond(version_document(request, "v2"))


async def healthz(request: web.Request) -> web.Response:
    ok = await ctx(request).store.ping(timeout=1.0)
    body = {"dbStatus": "ok" if ok else "not_available", "apiStatus": "ok"}
    return respond(body, 200 if ok else 503)


async def openapi(request: web.Request) -> web.Response:
    return respond(document(ctx(request).version))


ROUTES = [
    route("GET", "/", root, response="[Version]"),
    route("GET", "/v2", v2, response="Version"),
    route("GET", "/v2/version", v2, response="Version"),
    route("GET", "/v2/healthz", healthz, response="Healthz"),
    route("GET", "/v2/openapi.json", openapi),
]
