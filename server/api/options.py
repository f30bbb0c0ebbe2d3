"""Options: `/v2/options` (api.md §3.2). The tenant header is ignored."""

from __future__ import annotations

from aiohttp import web

from bos_shared import schema

from ..logs import apply_level
from .context import ctx
from .params import json_body, validate
from .responses import respond
from .routes import route


async def get_options(request: web.Request) -> web.Response:
    options = await ctx(request).store.options.get()
    apply_level(options["logging_level"])
    return respond(options)


async def patch_options(request: web.Request) -> web.Response:
    values = validate(schema.Options, await json_body(request))  # unknown keys dropped (D11)
    options = await ctx(request).store.options.patch(values)
    apply_level(options["logging_level"])
    return respond(options)


ROUTES = [
    route("GET", "/v2/options", get_options, response="V2Options"),
    route("PATCH", "/v2/options", patch_options, body="V2Options", response="V2Options"),
]
