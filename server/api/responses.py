"""JSON responses, encoded with orjson (large component listings dominate the cost)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..store.codec import dumps


def respond(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dumps(data), content_type="application/json")
