"""`GET /v1`, `/v1/version`, `/v1/healthz` (v1.md §2.1): no tenant check."""

from __future__ import annotations

import uuid

from aiohttp import web

from ...store import keys
from ..meta import version_document
from ..responses import respond
from .common import v1_store

HEALTHY = {"dbStatus": "ok", "apiStatus": "ok"}
UNHEALTHY = {"dbStatus": "Failed to read from cluster", "apiStatus": "Not Ready"}


async def version(request: web.Request) -> web.Response:
    return respond(version_document(request, "v1"))


async def healthz(request: web.Request) -> web.Response:
    """A write-then-read probe of the store; any failure is the 503 body."""
    probe = str(uuid.uuid4())
    try:
        store = v1_store(request)
        await store.redis.set(keys.V1_HEALTH_PROBE, probe, ex=60)
        read = await store.redis.get(keys.V1_HEALTH_PROBE)
        ok = (read.decode() if isinstance(read, bytes) else read) == probe
    except Exception:  # noqa: BLE001 - every failure means "not ready"
        ok = False
    return respond(HEALTHY if ok else UNHEALTHY, 200 if ok else 503)


ROUTES = [
    ("GET", "/v1", version),
    ("GET", "/v1/version", version),
    ("GET", "/v1/healthz", healthz),
]
