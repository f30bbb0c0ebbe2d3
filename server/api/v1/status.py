"""The v1 status tree (v1.md §2.4): session, boot set, phase and category.

Trees are written by the agent (operators/v1_agent.py) through the store and
by clients through these paths, with the same semantics. Computed metadata
comes from category sizes (ZCARD), never from walking node lists.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from aiohttp import web

from bos_shared import schema_v1
from bos_shared.schema_types import SchemaError

from ...jsonio import loads
from ...store.v1 import TIMES, V1Store, agent_time
from ..errors import BadRequest, Conflict
from ..params import validate
from ..responses import respond
from .common import V1NotFound, body_of, reject_tenant, status_href, v1_store

Record = Dict[str, Any]
# Extension fields of the session-status metadata (docs/deviations.md): stored as JSON.
EXTENSIONS = ("overlaps", "retry_hints", "error")


# -- reading --

def _phase_meta(times: Mapping[str, str], phase: str, counts: Mapping[Tuple[str, str], int]) -> Record:
    meta: Record = {k: times[f"{phase}.{k}"] for k in TIMES if times.get(f"{phase}.{k}")}
    in_progress = counts.get((phase, "in_progress"), 0) > 0
    meta["complete"] = not in_progress and counts.get((phase, "not_started"), 0) == 0
    meta["in_progress"] = in_progress
    meta["error_count"] = counts.get((phase, "failed"), 0)
    return meta


async def session_metadata(store: V1Store, sid: str) -> Optional[Record]:
    """`{start_time, stop_time, complete, in_progress, error_count}` (+ extensions), or None."""
    fields = await store.status_fields(sid)
    if fields is None:
        return None
    meta: Record = {"start_time": fields.get("start_time"), "stop_time": fields.get("stop_time") or None}
    meta["complete"] = bool(fields.get("stop_time"))
    meta["in_progress"] = not meta["complete"]
    meta["error_count"] = await store.session_error_count(sid, await store.boot_set_names(sid))
    for name in EXTENSIONS:
        if fields.get(name):
            meta[name] = loads(fields[name])
    return meta


def _omit_nulls(record: Record) -> Record:
    return {k: v for k, v in record.items() if v is not None}


async def session_status(store: V1Store, sid: str) -> Optional[Record]:
    meta = await session_metadata(store, sid)
    if meta is None:
        return None
    names = await store.boot_set_names(sid)
    links = [{"href": status_href(sid), "rel": "self"}]
    links += [{"href": status_href(sid, n), "rel": "Boot Set"} for n in names]
    return {"id": sid, "boot_sets": names, "metadata": _omit_nulls(meta), "links": links}


async def boot_set_status(store: V1Store, sid: str, name: str, with_nodes: bool = True) -> Optional[Record]:
    layout = await store.layout(sid, name)
    if layout is None:
        return None
    times = await store.boot_set_times(sid, name)
    counts = await store.category_counts(sid, name, layout)
    phases = [await _phase(store, sid, name, p, times, counts) for p in layout["phases"]]
    meta: Record = {k: times[k] for k in TIMES if times.get(k)}
    meta["complete"] = all(p["metadata"]["complete"] for p in phases)
    meta["in_progress"] = any(p["metadata"]["in_progress"] for p in phases)
    meta["error_count"] = sum(p["metadata"]["error_count"] for p in phases)
    links = [{"href": status_href(sid, name), "rel": "self"}]
    links += [{"href": status_href(sid, name, p["name"]), "rel": "Phase"} for p in layout["phases"]]
    return {"name": name, "session": sid, "metadata": meta, "phases": phases, "links": links}


async def _phase(store: V1Store, sid: str, bs: str, layout: Mapping[str, Any], times: Mapping[str, str],
                 counts: Mapping[Tuple[str, str], int]) -> Record:
    name = layout["name"]
    categories = [{"name": c, "node_list": await store.nodes(sid, bs, name, c) if counts.get((name, c)) else []}
                  for c in layout["categories"]]
    return {"name": name, "metadata": _phase_meta(times, name, counts), "categories": categories,
            "errors": await store.errors(sid, bs, name)}


# -- handlers --

def _ids(request: web.Request) -> Tuple[str, str]:
    return request.match_info["session_id"], request.match_info.get("boot_set_name", "")


def _no_status(sid: str) -> V1NotFound:
    return V1NotFound(f"Status for session {sid} not found")


def _no_boot_set(sid: str, bs: str) -> V1NotFound:
    return V1NotFound(f"Status for boot set {bs} in session {sid} not found")


def _phase_not_found(phase: str) -> V1NotFound:
    return V1NotFound(f"Phase '{phase}' is not found.")


async def _require_session(store: V1Store, sid: str) -> None:
    """V7: status records only for existing sessions."""
    if await store.get_session(sid) is None:
        raise V1NotFound(f"Session {sid} not found")


async def get_status(request: web.Request) -> web.Response:
    reject_tenant(request)
    sid, _ = _ids(request)
    status = await session_status(v1_store(request), sid)
    if status is None:
        raise _no_status(sid)
    return respond(status)


async def create_status(request: web.Request) -> web.Response:
    body = validate(schema_v1.SessionStatusCreate, await body_of(request))
    reject_tenant(request)
    sid, _ = _ids(request)
    store = v1_store(request)
    await _require_session(store, sid)
    start = (body.get("metadata") or {}).get("start_time") or agent_time()
    if not await store.create_status(sid, body.get("boot_sets") or [], start):
        raise Conflict(f"Status for session {sid} already exists")
    stop = (body.get("metadata") or {}).get("stop_time")
    if stop:
        await store.set_status_field(sid, "stop_time", stop)
    return respond(await session_status(store, sid))


async def patch_status(request: web.Request) -> web.Response:
    body = validate(schema_v1.Metadata, await body_of(request))
    reject_tenant(request)
    sid, _ = _ids(request)
    store = v1_store(request)
    if not await store.status_exists(sid):
        raise _no_status(sid)
    for name in TIMES:  # first write wins (v1.md §2.4)
        if body.get(name):
            await store.set_status_field(sid, name, body[name])
    return respond(await session_status(store, sid))


async def delete_status(request: web.Request) -> web.Response:
    reject_tenant(request)
    sid, _ = _ids(request)
    if not await v1_store(request).delete_status(sid):
        raise _no_status(sid)
    return web.Response(status=204)


async def get_boot_set(request: web.Request) -> web.Response:
    reject_tenant(request)
    sid, bs = _ids(request)
    status = await boot_set_status(v1_store(request), sid, bs)
    if status is None:
        raise _no_boot_set(sid, bs)
    return respond(status)


def _phases_of(body: Record) -> List[Record]:
    """Request phases as the store takes them: names and categories lower-cased, errors kept."""
    phases = []
    for phase in body.get("phases") or []:
        categories: Dict[str, List[str]] = {}
        for category in phase.get("categories") or []:
            categories.setdefault(category["name"].lower(), []).extend(category.get("node_list") or [])
        phases.append({"name": phase["name"].lower(), "categories": categories,
                       "errors": phase.get("errors") or {}, "metadata": phase.get("metadata") or {}})
    return phases


async def create_boot_set(request: web.Request) -> web.Response:
    body = validate(schema_v1.BootSetStatusCreate, await body_of(request))
    reject_tenant(request)
    sid, bs = _ids(request)
    store = v1_store(request)
    await _require_session(store, sid)
    meta = body.get("metadata") or {}
    times = {"start_time": meta.get("start_time") or agent_time()}
    if meta.get("stop_time"):
        times["stop_time"] = meta["stop_time"]
    if not await store.create_boot_set(sid, bs, _phases_of(body), times):
        raise Conflict(f"Status for boot set {bs} already exists")
    return respond(await boot_set_status(store, sid, bs))


def _update(item: Any, phases: List[str], index: int) -> Tuple[str, str, Any]:
    """One PATCH item validated against its type and the boot set's phases."""
    try:
        head = schema_v1.UpdateHead.validate({k: v for k, v in item.items() if k != "data"}
                                             if isinstance(item, dict) else item, f"[{index}]")
        if "data" not in item:
            raise SchemaError(f"[{index}].data", "is a required property")
        data = schema_v1.DATA_BY_TYPE[head["update_type"]].validate(item["data"], f"[{index}].data")
    except SchemaError as exc:
        raise BadRequest(f"Invalid {exc}") from None
    phase = head["phase"].lower()
    allowed = phases + ([schema_v1.BOOT_SET_PHASE] if head["update_type"] == "GenericMetadata" else [])
    if phase not in allowed:
        raise BadRequest(f"Phase '{head['phase']}' is not found.")
    if head["update_type"] == "NodeChangeList" and data["phase"].lower() not in phases:
        raise BadRequest(f"Phase '{data['phase']}' is not found.")
    return head["update_type"], phase, data


async def patch_boot_set(request: web.Request) -> web.Response:
    body = await body_of(request)
    if not isinstance(body, list):
        raise BadRequest("Invalid body: must be an array of update items")
    reject_tenant(request)
    sid, bs = _ids(request)
    store = v1_store(request)
    layout = await store.layout(sid, bs)
    if layout is None:
        raise _no_boot_set(sid, bs)
    phases = [p["name"] for p in layout["phases"]]
    updates = [_update(item, phases, n) for n, item in enumerate(body)]  # all valid before any is applied
    for kind, phase, data in updates:
        await apply_update(store, sid, bs, kind, phase, data)
    return web.Response(status=204)


async def apply_update(store: V1Store, sid: str, bs: str, kind: str, phase: str, data: Any) -> None:
    if kind == "NodeChangeList":
        await store.move(sid, bs, data["phase"].lower(), data["source"].lower(), data["destination"].lower(),
                         data["node_list"])
    elif kind == "NodeErrorsList":
        await store.add_errors(sid, bs, phase, data)
    else:
        where = None if phase == schema_v1.BOOT_SET_PHASE else phase
        for name in TIMES:
            if name in data:
                await store.set_time(sid, bs, where, name, data[name])


async def delete_boot_set(request: web.Request) -> web.Response:
    reject_tenant(request)
    sid, bs = _ids(request)
    if not await v1_store(request).delete_boot_set(sid, bs):
        raise _no_boot_set(sid, bs)
    return web.Response(status=204)


async def _phase_of(request: web.Request) -> Tuple[V1Store, str, str, Record]:
    """(store, session, boot set, phase layout) of a phase path; 404s as v1.md §2.4 says."""
    reject_tenant(request)
    sid, bs = _ids(request)
    store = v1_store(request)
    layout = await store.layout(sid, bs)
    if layout is None:
        raise _no_boot_set(sid, bs)
    wanted = request.match_info["phase_name"]
    for phase in layout["phases"]:
        if phase["name"] == wanted.lower():
            return store, sid, bs, phase
    raise _phase_not_found(wanted)


async def get_phase(request: web.Request) -> web.Response:
    """One phase: only its own categories are read (a boot set's other phases are not)."""
    store, sid, bs, layout = await _phase_of(request)
    counts = await store.category_counts(sid, bs, {"phases": [layout]})
    return respond(await _phase(store, sid, bs, layout, await store.boot_set_times(sid, bs), counts))


async def get_category(request: web.Request) -> web.Response:
    store, sid, bs, layout = await _phase_of(request)
    wanted = request.match_info["category_name"]
    if wanted.lower() not in layout["categories"]:
        raise V1NotFound(f"Category '{wanted}' is not found.")
    return respond({"name": wanted.lower(), "node_list": await store.nodes(sid, bs, layout["name"], wanted.lower())})


_STATUS = "/v1/session/{session_id}/status"
_BOOT_SET = _STATUS + "/{boot_set_name}"
ROUTES = [
    ("GET", _STATUS, get_status),
    ("POST", _STATUS, create_status),
    ("PATCH", _STATUS, patch_status),
    ("DELETE", _STATUS, delete_status),
    ("GET", _BOOT_SET, get_boot_set),
    ("POST", _BOOT_SET, create_boot_set),
    ("PATCH", _BOOT_SET, patch_boot_set),
    ("DELETE", _BOOT_SET, delete_boot_set),
    ("GET", _BOOT_SET + "/{phase_name}", get_phase),
    ("GET", _BOOT_SET + "/{phase_name}/{category_name}", get_category),
]
