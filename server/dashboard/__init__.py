"""The web dashboard (extension, docs/dashboard.md), served by bos-server at `/dashboard/`.

Static pages (plain JavaScript and CSS in `static/`, no build step, nothing from
the network) over the public API, plus two read-only helpers the API lacks:

- `GET /dashboard/api/sessions/{session_id}/nodes`: a session's members grouped by
  computed status, read from the store's indexes (no record decoded), the
  snapshot a session page starts from;
- `GET /dashboard/api/events[?session=NAME]`: server-sent events, a `snapshot`
  first (for a session), then `changes` (the members whose tracked fields
  changed, from the store's change events) and `session` (the sessions changed).

Tenancy: the `Cray-Tenant-Name` header (with auth on, a tenant admin's token tenant),
or `?tenant=` for clients that cannot set headers; two of them naming different tenants
is a 400. A tenant sees only its own sessions and, of their members, only the xnames it
owns (api.md §1.8). The page itself reads the event stream with fetch(), so it sends
the header and, with auth on, its bearer token (docs/dashboard.md).
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from aiohttp import web

from bos_shared import schema

from ..api.context import ctx
from ..api.errors import BadRequest, NotFound, Unavailable
from ..api.params import validate
from ..api.tenancy import HEADER, MAX_LENGTH, owned_xnames, tenant_of
from ..store import keys
from ..store.codec import dumps
from .feed import Feed

STATIC = Path(__file__).resolve().parent / "static"
FEED = web.AppKey("dashboard_feed", Feed)
ASSET = re.compile(r"^[a-z0-9_-]+\.(js|css|html|svg)$")
TYPES = {"js": "text/javascript", "css": "text/css", "html": "text/html", "svg": "image/svg+xml"}
KEEPALIVE = 15.0  # seconds between comments on an idle stream (proxies drop silent ones)
COALESCE = 0.25  # seconds: changes within this window go out as one message


def install(app: web.Application) -> None:
    """Give the app its change feed (started by the first viewer, stopped with the app)."""
    feed = Feed()
    app[FEED] = feed

    async def end_streams(_app: web.Application) -> None:
        feed.end_streams()  # before the server waits for open requests: a stream never ends by itself

    async def stop(_app: web.Application) -> None:
        await feed.close()
    app.on_shutdown.append(end_streams)
    app.on_cleanup.append(stop)


def _tenant(request: web.Request) -> Optional[str]:
    """The viewer's tenant: a tenant admin's token tenant (auth on), else the header, else `?tenant=`.

    A `?tenant=` naming another tenant than the header or the token is a 400, so a
    tenant admin can never choose another tenant's view (docs/auth.md).
    """
    header, query = tenant_of(request), request.query.get("tenant")
    if header and query and header != query:
        raise BadRequest(f"The {HEADER} header and the tenant parameter name different tenants")
    value = header or query or None
    if value is not None and len(value) > MAX_LENGTH:
        raise BadRequest(f"The tenant must be at most {MAX_LENGTH} characters long")
    return value


# -- pages --

async def index(request: web.Request) -> web.StreamResponse:
    if not request.path.endswith("/"):  # relative asset URLs need the slash
        raise web.HTTPFound(request.path + "/" + (f"?{request.query_string}" if request.query_string else ""))
    return _file("index.html")


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if not ASSET.match(name) or not (STATIC / name).is_file():
        raise NotFound(f"No such dashboard file: {name[:60]}")
    return _file(name)


def _file(name: str) -> web.Response:
    kind = name.rsplit(".", 1)[1]
    return web.Response(body=(STATIC / name).read_bytes(), content_type=TYPES[kind],
                        headers={"Cache-Control": "no-cache"})


# -- data --

async def _session_scope(request: web.Request, name: str) -> Tuple[Dict[str, Any], Optional[FrozenSet[str]], set]:
    """The session record, the tenant's xnames (None: no tenant) and other tenants' nodes (D25)."""
    from ..api.sessions import _other_tenants_nodes  # the extended status's own D25 rule
    tenant = _tenant(request)
    session = await ctx(request).store.sessions.get(tenant, name)
    if session is None:
        raise NotFound(f"Session '{name}' does not exist" + (f" for tenant '{tenant}'" if tenant else ""))
    owned = await owned_xnames(request, tenant) if tenant else None
    foreign = await _other_tenants_nodes(request, name) if not tenant else set()
    return session, owned, foreign


def _visible(component_id: str, owned: Optional[FrozenSet[str]], foreign: set) -> bool:
    return component_id in owned if owned is not None else component_id not in foreign


async def _snapshot(request: web.Request, name: str, owned: Optional[FrozenSet[str]], foreign: set) -> Dict[str, Any]:
    """Members by computed status, and those with an error: ZINTERs of the indexes."""
    started = round(time.time() * 1000)
    redis = ctx(request).store.redis
    members = keys.by_session(name)
    async with redis.pipeline(transaction=True) as pipe:
        for status in schema.COMPONENT_STATUSES:
            pipe.zinter([members, keys.by_status(status)])
        pipe.zinter([members, keys.COMPONENT_ERRORED])
        results = await pipe.execute()
    by_status: Dict[str, List[str]] = {}
    for status, ids in zip(schema.COMPONENT_STATUSES, results):
        visible = [i.decode() for i in ids if _visible(i.decode(), owned, foreign)]
        if visible:
            by_status[status] = visible
    errors = [i.decode() for i in results[-1] if _visible(i.decode(), owned, foreign)]
    return {"session": name, "t": started, "statuses": by_status, "errors": errors}


async def session_nodes(request: web.Request) -> web.Response:
    name = validate(schema.Name(), request.match_info["session_id"], "session_id")
    _session, owned, foreign = await _session_scope(request, name)
    return web.Response(body=dumps(await _snapshot(request, name, owned, foreign)), content_type="application/json")


# -- live events --

async def events(request: web.Request) -> web.StreamResponse:
    name = request.query.get("session")
    if name is not None:
        name = validate(schema.Name(), name, "session")
        _session, owned, foreign = await _session_scope(request, name)
    else:
        _tenant(request)
        owned, foreign = None, set()
    try:
        queue = await request.app[FEED].subscribe(ctx(request).store.redis)
    except asyncio.TimeoutError:
        raise Unavailable("The change events are not available (Redis)") from None
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    try:
        await response.prepare(request)
        members: set = set()
        if name is not None:
            snapshot = await _snapshot(request, name, owned, foreign)
            members = {i for ids in snapshot["statuses"].values() for i in ids}
            await _send(response, "snapshot", snapshot)
        await _follow(response, queue, name, members, owned, foreign)
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the viewer went away
    finally:
        request.app[FEED].unsubscribe(queue)
    return response


async def _follow(response: web.StreamResponse, queue: asyncio.Queue, name: Optional[str], members: set,
                  owned: Optional[FrozenSet[str]], foreign: set) -> None:
    while True:
        try:
            first = await asyncio.wait_for(queue.get(), KEEPALIVE)
        except asyncio.TimeoutError:
            await response.write(b": keep-alive\n\n")
            continue
        await asyncio.sleep(COALESCE)  # let a burst of writes arrive, then send them as one
        batch = [first] + [queue.get_nowait() for _ in range(queue.qsize())]
        if any(event is None for event in batch):
            return  # the feed was lost or we fell behind: the browser reconnects to a fresh snapshot
        changes, t, sessions = _relevant(batch, name, members, owned, foreign)
        if changes:
            await _send(response, "changes", {"t": t, "changes": changes})
        elif name is None and any(e.get("kind") == "components" for e in batch):
            await _send(response, "components", {})
        if sessions:
            await _send(response, "session", {})


def _relevant(batch: List[Dict[str, Any]], name: Optional[str], members: set,
              owned: Optional[FrozenSet[str]], foreign: set) -> Tuple[List[list], int, bool]:
    """The changes a viewer of session `name` must see; also whether sessions changed."""
    changes: List[list] = []
    t = 0
    sessions = False
    for event in batch:
        kind = event.get("kind")
        sessions = sessions or kind == "sessions"
        if kind != "components" or name is None:
            continue
        t = max(t, int(event.get("t") or 0))
        for change in event.get("changes") or ():
            component_id, session = change[0], change[1]
            if session == name and _visible(component_id, owned, foreign):
                members.add(component_id)
                changes.append(change)
            elif component_id in members:  # it left the session
                members.discard(component_id)
                changes.append(change)
    return changes, t, sessions


async def _send(response: web.StreamResponse, event: str, data: Any) -> None:
    await response.write(b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n")


ROUTES = [
    ("GET", "/dashboard/", index),
    ("GET", "/dashboard/static/{name}", asset),
    ("GET", "/dashboard/api/sessions/{session_id}/nodes", session_nodes),
    ("GET", "/dashboard/api/events", events),
]
