"""What every v1 handler shares: the tenant rule (v1.md §1.1), the store, links and error titles."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...store.v1 import V1Store
from ..context import ctx
from ..errors import ApiError, BadRequest, NotFound
from ..params import json_body
from ..tenancy import HEADER

MULTI_TENANCY = "Multi-tenancy not supported"
MULTI_TENANCY_DETAIL = ("BOS v1 endpoints do not support multi-tenancy and a tenant was specified "
                        "in the header")
NOT_FOUND = "Not Found"


class V1NotFound(NotFound):
    """v1's 404 title is plain `Not Found` (v1.md §2.3-§2.4)."""

    title = NOT_FOUND


def reject_tenant(request: web.Request) -> None:
    """A non-empty `Cray-Tenant-Name` is a 400 on every v1 endpoint but the static ones."""
    if request.headers.get(HEADER):
        raise BadRequest(MULTI_TENANCY_DETAIL, title=MULTI_TENANCY)


def v1_store(request: web.Request) -> V1Store:
    return V1Store(ctx(request).store.redis)


async def body_of(request: web.Request, not_json: str = "") -> Any:
    """The JSON body; an unparsable one is a 400 (with `not_json` as detail when given, R's text)."""
    try:
        return await json_body(request)
    except ApiError:
        if not_json:
            raise BadRequest(not_json) from None
        raise


def session_href(sid: str) -> str:
    """Links never carry the gateway prefix (v1.md §2.3)."""
    return f"/v1/session/{sid}"


def status_href(sid: str, *parts: str) -> str:
    return "/".join([session_href(sid) + "/status", *parts])
