"""`GET /v2/components/{component_id}/history` (extension, api.md §3.4.6): what a node went through.

Entries come oldest first from the component's capped stream (store/history.py);
`start_after` (an entry `id`) and `page_size` page through them. Tenant-scoped like
`GET /v2/components/{component_id}`: another tenant's node is "does not exist".
"""

from __future__ import annotations

from aiohttp import web

from bos_shared import schema

from ..store import history
from .components import _owned_or_404, _path_id
from .context import ctx
from .errors import BadRequest, NotFound
from .routes import Query, integer, query, route
from .responses import respond

DEFAULT_PAGE = 100
MAX_PAGE = 1000


async def get_history(request: web.Request) -> web.Response:
    component_id = _path_id(request)
    await _owned_or_404(request, component_id)
    start_after = request.query.get("start_after")
    if start_after is not None and not history.ENTRY_ID.match(start_after):
        raise BadRequest(f"Invalid query parameter 'start_after': {start_after[:40]!r} is not a history entry id "
                         "like 1700000000000-0")
    page_size = query(request, "page_size")
    store = ctx(request).store.components
    entries = await history.read(store.redis, store.history, component_id, start_after, page_size)
    if not entries and start_after is None and not await store.existing([component_id]):
        raise NotFound(f"Component '{component_id}' does not exist")
    return respond(entries)


ROUTES = [route("GET", "/v2/components/{component_id}/history", get_history, response="[V2ComponentHistoryEntry]",
                query=(Query("start_after", schema.String(1, 64, pattern=r"^[0-9]+-[0-9]+$")),
                       integer("page_size", 1, MAX_PAGE, DEFAULT_PAGE)))]
