"""v1 sessions (v1.md §2.3): create, list, describe, delete.

A v1 session is a record plus its status tree; the agent (operators/v1_agent.py)
carries it out on the v2 engine. Templates are copied into the record at creation
(v1.md §3.2: later template changes do not affect the session).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Dict

from aiohttp import web

from bos_shared import schema_v1

from ...store.v1 import server_time
from ...templates import hardware_problem
from ..context import ctx
from ..errors import BadRequest
from ..params import validate
from ..responses import respond
from .cancel import cancel
from .common import V1NotFound, body_of, reject_tenant, session_href, status_href, v1_store
from .status import session_metadata

LOG = logging.getLogger(__name__)
Record = Dict[str, Any]
NOT_JSON = "Post must be in JSON format"
V1_EVENT = {"kind": "sessions", "statuses": ["v1"]}


def _check_template(name: str, template: Record) -> None:
    """The defensive checks of v1.md §2.3 (our stored templates always pass them)."""
    boot_sets = template.get("boot_sets") or {}
    if not boot_sets:
        raise BadRequest(f"Session template '{name}' must have one or more defined boot sets for "
                         "creation of a session.")
    for bs_name, boot_set in boot_sets.items():
        if hardware_problem(boot_set):
            raise BadRequest(f"Session template '{name}' boot set '{bs_name}' must have at least one "
                             "hardware specifier field provided (node_groups, node_list, node_roles_groups); "
                             "None defined.")


def _response(record: Record) -> Record:
    sid = record["id"]
    out: Record = {"operation": record["operation"], "templateName": record["templateName"], "job": record["job"]}
    if record.get("limit"):
        out["limit"] = record["limit"]
    out["links"] = [{"rel": "session", "href": session_href(sid), "jobId": record["job"], "type": "GET"},
                    {"rel": "status", "href": status_href(sid), "type": "GET"}]
    return out


async def create_session(request: web.Request) -> web.Response:
    reject_tenant(request)
    raw = await body_of(request, NOT_JSON)
    if isinstance(raw, dict):
        for field in schema_v1.SESSION_READ_ONLY:
            if field in raw:
                raise BadRequest(f"'{field}' is read-only and must not be sent")
    body = validate(schema_v1.SessionCreate, raw)
    name = body.get("templateName") or body.get("templateUuid")
    if not name:
        raise BadRequest("templateName is a required parameter")
    template = await ctx(request).store.templates.get(None, name)
    if template is None:
        raise V1NotFound(f"Session Template ID invalid: {name}")
    _check_template(name, template)
    sid = str(uuid.uuid4())
    record = {"id": sid, "operation": body["operation"], "templateName": name, "job": f"boa-{sid}",
              "limit": body.get("limit") or "", "template": template}
    await v1_store(request).create_session(record, server_time())
    await ctx(request).store.events.publish(V1_EVENT)
    LOG.info("v1 session %s created: %s of template %s%s", sid, body["operation"], name,
             f", limit {record['limit']}" if record["limit"] else "")
    return respond(_response(record), 201)


async def list_sessions(request: web.Request) -> web.Response:
    reject_tenant(request)
    return respond(await v1_store(request).session_ids())


def _session_id(request: web.Request) -> str:
    return request.match_info["session_id"]


async def get_session(request: web.Request) -> web.Response:
    reject_tenant(request)
    sid = _session_id(request)
    store = v1_store(request)
    record = await store.get_session(sid)
    if record is None:
        raise V1NotFound(f"Session {sid} not found")
    meta = await session_metadata(store, sid)
    flat: Dict[str, Any] = {k: "" for k in ("start_time", "stop_time", "complete", "in_progress", "error_count")}
    if meta is not None:
        flat = {k: meta.get(k) for k in flat}
    return respond({"templateName": record["templateName"], "operation": record["operation"],
                    "job": record["job"], "status_link": status_href(sid), **flat})


async def delete_session(request: web.Request) -> web.Response:
    reject_tenant(request)
    sid = _session_id(request)
    store = v1_store(request)
    if await store.get_session(sid) is None:
        raise V1NotFound(f"Sesssion: {sid} not found")  # sic, R's three s (v1.md §2.3)
    report = await cancel(ctx(request).store, ctx(request).cfs, sid)
    await store.delete_session(sid)
    LOG.info("v1 session %s deleted; %d components stopped, CFS configuration cleared on %d", sid,
             len(report["disabled"]), len(report["configuration_cleared"]))
    return web.Response(status=204)


ROUTES = [
    ("POST", "/v1/session", create_session),
    ("GET", "/v1/session", list_sessions),
    ("GET", "/v1/session/{session_id}", get_session),
    ("DELETE", "/v1/session/{session_id}", delete_session),
]
