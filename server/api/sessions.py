"""Sessions: `/v2/sessions`, `/v2/sessions/{session_id}` and `.../status` (api.md §3.6-§3.8)."""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional, Tuple

from aiohttp import web

from bos_shared import schema
from bos_shared.ages import AgeError, parse_age
from bos_shared.limits import limit_has_nids, names_nothing
from bos_shared.status import extended_status, extended_status_from_counts
from bos_shared.times import epoch, now_str

from .. import random_ids, session_stop
from ..jsonio import dumps
from ..store import TooMuchContention, keys, waves
from ..store.events import encoded, sessions_message
from ..store.scoped import session_indexes
from ..store.session_create import CheckedTemplate, Outcome, SessionCreator
from ..templates import Services, check_boot_sets
from . import dry_run
from .context import ctx
from .errors import BadRequest, Conflict, NotFound
from .params import json_body, validate
from .responses import respond, respond_stored
from .routes import Query, flag, query, route
from .tenancy import owned_xnames, require_tenant_exists, tenant_of

LOG = logging.getLogger(__name__)
Record = Dict[str, Any]
CREATED_EVENT = encoded(sessions_message(["pending"]))
MAX_TEMPLATE_ROUNDS = 10  # the template changed between its check and the create: check the new one


def _not_found(name: str, tenant: Optional[str]) -> NotFound:
    if tenant:
        return NotFound(f"Session for tenant '{tenant}' '{name}' does not exist")
    return NotFound(f"Session '{name}' does not exist")


def _path_name(request: web.Request) -> str:
    return validate(schema.Name(), request.match_info["session_id"], "session_id")


async def services(request: web.Request) -> Services:
    context = ctx(request)
    options = await context.store.options.get()
    context.ims.http.read_timeout = options["ims_read_timeout"]
    context.ims.http.retries = 8 if options["ims_errors_fatal"] else 4
    return Services(context.s3, context.ims, options)


async def create_session(request: web.Request) -> web.Response:
    context, tenant = ctx(request), tenant_of(request)
    dry = query(request, "dry_run")
    await require_tenant_exists(request, tenant)
    body = validate(schema.SessionCreate, await json_body(request))
    svc = await services(request)
    limit = body.get("limit")
    if svc.options["session_limit_required"] and not limit:
        raise BadRequest("session_limit_required option is set, but this session has no limit specified")
    if svc.options["session_limit_required"] and names_nothing(limit):  # D21: fails closed
        raise BadRequest(f"session_limit_required option is set, but this session's limit names no nodes: "
                         f"{limit[:40]!r}")
    if limit_has_nids(limit):
        if svc.options["reject_nids"]:
            raise BadRequest(f"reject_nids: session limit appears to contain NIDs: {limit}")
        LOG.warning("Session limit appears to contain NIDs: %s", limit)
    record = _new_session(body, tenant)
    creator = context.store.session_creator
    for _ in range(MAX_TEMPLATE_ROUNDS):
        checked = await _checked_template(svc, creator, body, tenant, fresh=dry)
        if dry:  # extension: the plan, nothing written
            if body.get("name") and await context.store.sessions.get(tenant, record["name"]) is not None:
                raise Conflict(_exists(record["name"], tenant))
            return await dry_run.plan_response(request, record, checked.template, svc.options)
        stored = dumps(record)
        outcome = await creator.create(record, session_indexes(record), checked, CREATED_EVENT, stored)
        if outcome is Outcome.CREATED:
            return respond_stored(stored, 201)
        if outcome is Outcome.EXISTS:
            raise Conflict(_exists(record["name"], tenant))
    raise TooMuchContention(f"Session template {body['template_name']} kept changing during the create")


async def _checked_template(svc: Services, creator: SessionCreator, body: Record, tenant: Optional[str],
                            fresh: bool) -> CheckedTemplate:
    """The template, checked (§4.2): this process's copy when it passes (the create script refuses it
    if it changed since, session_create.py), the stored one read again before answering an error."""
    checked = await creator.template(tenant, body["template_name"], fresh=fresh)
    problem = await _template_problem(svc, checked, body)
    if problem is not None and not fresh:
        checked = await creator.template(tenant, body["template_name"], fresh=True)
        problem = await _template_problem(svc, checked, body)
    if problem is not None:
        raise BadRequest(problem)
    assert checked is not None  # _template_problem names a missing template
    return checked


async def _template_problem(svc: Services, checked: Optional[CheckedTemplate], body: Record) -> Optional[str]:
    if checked is None:
        return f"Session Template Name invalid: {body['template_name']}"
    outcome, message = await check_boot_sets(svc, checked.template, body["operation"], body["template_name"])
    return f"Session template fails check: {message}" if outcome == "error" else None


def _exists(name: str, tenant: Optional[str]) -> str:
    suffix = f" for tenant '{tenant}'" if tenant else ""
    return f"Session '{name}' already exists{suffix}"


def _new_session(body: Record, tenant: Optional[str]) -> Record:
    record = {"name": body.get("name") or random_ids.uuid4(), "tenant": tenant,
              "operation": body["operation"], "template_name": body["template_name"],
              "limit": body.get("limit") or "", "stage": body.get("stage", False), "components": "",
              "include_disabled": body.get("include_disabled", False),
              "status": {"start_time": now_str(), "end_time": None, "status": "pending", "error": None}}
    for key in schema.SESSION_EXTENSIONS:  # only when given: reference clients never see them
        if body.get(key) is not None:
            record[key] = body[key]
    return record


def _age(request: web.Request, name: str) -> Optional[int]:
    raw = query(request, name)
    if raw is None:
        return None
    try:
        return parse_age(raw)
    except AgeError as exc:
        raise BadRequest(f"Error parsing age field: {exc}") from None


async def _matching(request: web.Request, default_status: Optional[str]) -> List[Record]:
    """Sessions matching the list/delete query (api.md §3.6.2-§3.6.3)."""
    min_age, max_age = _age(request, "min_age"), _age(request, "max_age")
    tenant, within = _listing(request, default_status)
    records = await ctx(request).store.sessions.list(tenant, all_tenants=tenant is None, within=within)
    if min_age is None and max_age is None:
        return records
    now = time.time()
    return [r for r in records if _age_ok(r, now, min_age, max_age)]


def _listing(request: web.Request, default_status: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """The list query's tenant and status index (None: every status)."""
    status = query(request, "status") or default_status
    return tenant_of(request), keys.sessions_by_status(status) if status else None


def _age_ok(record: Record, now: float, min_age: Optional[int], max_age: Optional[int]) -> bool:
    started = epoch((record.get("status") or {}).get("start_time"))
    if started is None:
        return False
    if min_age is not None and started > now - min_age:
        return False
    return max_age is None or started >= now - max_age


async def list_sessions(request: web.Request) -> web.Response:
    """Without an age filter (the operators' listings of pending and running sessions), the
    records are answered as stored (responses.respond_stored)."""
    if _age(request, "min_age") is not None or _age(request, "max_age") is not None:
        return respond(await _matching(request, None))
    tenant, within = _listing(request, None)
    return respond_stored(await ctx(request).store.sessions.list_raw(tenant, all_tenants=tenant is None,
                                                                     within=within))


def _companion_keys(record: Record) -> List[str]:
    tenant, name = record.get("tenant"), record["name"]
    return [keys.session_status(tenant, name), keys.wave_admitted(name), *session_stop.cleanup_keys(tenant, name)]


async def delete_sessions(request: web.Request) -> web.Response:
    matching = await _matching(request, "complete")  # D10: only complete ones unless asked
    for n, record in enumerate(matching):  # extension: a pending or running session is stopped first
        if (record.get("status") or {}).get("status") != "complete":
            matching[n] = (await _stop(request, record["name"], record.get("tenant"), False)).session
    store = ctx(request).store.sessions
    await store.delete_many(matching, _companion_keys)
    return web.Response(status=204)


async def _get(request: web.Request) -> Record:
    name, tenant = _path_name(request), tenant_of(request)
    record = await ctx(request).store.sessions.get(tenant, name)
    if record is None:
        raise _not_found(name, tenant)
    return record


async def get_session(request: web.Request) -> web.Response:
    name, tenant = _path_name(request), tenant_of(request)
    raw = await ctx(request).store.sessions.get_raw(tenant, name)
    if raw is None:
        raise _not_found(name, tenant)
    return respond_stored(raw)  # as stored: never decoded and encoded again (responses.respond_stored)


async def patch_session(request: web.Request) -> web.Response:
    name, tenant = _path_name(request), tenant_of(request)
    patch = validate(schema.SessionUpdate, await json_body(request))

    def compute(old: Record) -> Record:
        new = dict(old)
        if "status" in patch:
            new["status"] = {**(old.get("status") or {}), **patch["status"]}
        if "components" in patch:
            new["components"] = patch["components"]
        return new

    context = ctx(request)
    record = await context.store.sessions.update(tenant, name, compute)
    if record is None:
        raise _not_found(name, tenant)
    await context.store.events.sessions_written([record["status"].get("status", "")])
    return respond(record)


async def delete_session(request: web.Request) -> web.Response:
    """Extension: a pending or running session is stopped (with cleanup) before it is deleted."""
    name, tenant = _path_name(request), tenant_of(request)
    store = ctx(request).store
    record = await store.sessions.get(tenant, name)
    if record is None:
        raise _not_found(name, tenant)
    if (record.get("status") or {}).get("status") != "complete":
        await _stop(request, name, tenant, keep_configuration=False)
    if not await store.sessions.delete(tenant, name):
        raise _not_found(name, tenant)
    await store.redis.delete(*_companion_keys(record))
    return web.Response(status=204)


async def stop_session(request: web.Request) -> web.Response:
    """`POST /v2/sessions/{session_id}/stop` (extension): stop with cleanup, idempotent."""
    name, tenant = _path_name(request), tenant_of(request)
    body = validate(schema.SessionStop, await json_body(request, required=False) or {})
    result = await _stop(request, name, tenant, keep_configuration=body.get("keep_configuration", False))
    return respond({"session": result.session, "stopped": result.stopped, "cleanup": result.cleanup})


async def _stop(request: web.Request, name: str, tenant: Optional[str],
                keep_configuration: bool) -> session_stop.StopResult:
    """Stop within the caller's tenant scope (D25), then save the extended status with the cleanup."""
    context = ctx(request)
    only = await owned_xnames(request, tenant) if tenant else None
    exclude = await _other_tenants_nodes(request, name) if not tenant else set()
    result = await session_stop.stop_session(context.store, context.cfs, tenant, name,
                                             keep_configuration=keep_configuration, only=only, exclude=exclude)
    if result is None:
        raise _not_found(name, tenant)
    if result.stopped:
        status = await live_status(request, result.session)
        await context.store.save_status(tenant, name, status)
    return result


async def live_status(request: web.Request, session: Record) -> Record:
    """The extended status from live component records (api.md §2.9, D25)."""
    store = ctx(request).store
    name, tenant = session["name"], session.get("tenant")
    foreign = await _other_tenants_nodes(request, name) if not tenant else set()
    if not tenant and not foreign:  # the common case: count in Redis, decode nothing
        counts = await store.components.session_counts(name)
        staged_count = await store.redis.zcard(keys.by_staged_session(name))
        return await _with_extensions(request, session, extended_status_from_counts(session, counts, staged_count))
    members = set(await store.components.ids_in(keys.by_session(name)))
    staged = set(await store.components.ids_in(keys.by_staged_session(name)))
    if tenant:
        owned = await owned_xnames(request, tenant)
        members, staged = members & owned, staged & owned
    else:
        members, staged = members - foreign, staged - foreign
    records = await store.components.get_many(sorted(members))
    return await _with_extensions(request, session, extended_status(session, records.values(), len(staged)))


async def _with_extensions(request: web.Request, session: Record, status: Record) -> Record:
    """Extension fields, only for sessions that use the extensions (reference clients never see them)."""
    store = ctx(request).store
    if session.get("max_in_flight"):
        status["waiting_for_slot"] = await waves.waiting_count(store.redis, session["name"])
    if session_stop.was_stopped(session):
        cleanup = await session_stop.saved_cleanup(store, session.get("tenant"), session["name"])
        if cleanup is not None:
            status["cleanup"] = cleanup
    return status


async def _other_tenants_nodes(request: web.Request, name: str) -> set:
    """D25: nodes owned by tenants that have their own session called `name`."""
    foreign: set = set()
    for member in await ctx(request).store.sessions.members(keys.sessions_by_name(name)):
        tenant, _ = keys.split_member(member)
        if tenant:
            foreign |= await owned_xnames(request, tenant)
    return foreign


async def get_session_status(request: web.Request) -> web.Response:
    session = await _get(request)
    if (session.get("status") or {}).get("status") == "complete":
        saved = await ctx(request).store.get_saved_status(session.get("tenant"), session["name"])
        if saved is not None:
            return respond(saved)
    return respond(await live_status(request, session))


async def save_session_status(request: web.Request) -> web.Response:
    session = await _get(request)
    status = await live_status(request, session)
    await ctx(request).store.save_status(session.get("tenant"), session["name"], status)
    return respond(status)


LIST_QUERY = (Query("min_age", schema.AgeString, "raw"), Query("max_age", schema.AgeString, "raw"),
              Query("status", schema.String(enum=schema.SESSION_STATUSES)))
DRY_RUN = flag("dry_run", False, "Extension: validate, then answer 200 with the session's plan (V2SessionPlan); "
                                 "nothing is written")

ROUTES = [
    route("POST", "/v2/sessions", create_session, query=(DRY_RUN,), body="V2SessionCreate", status=201,
          response="V2Session"),
    route("GET", "/v2/sessions", list_sessions, query=LIST_QUERY, response="[V2Session]"),
    route("DELETE", "/v2/sessions", delete_sessions, query=LIST_QUERY, status=204),
    route("GET", "/v2/sessions/{session_id}", get_session, response="V2Session"),
    route("PATCH", "/v2/sessions/{session_id}", patch_session, body="V2SessionUpdate", response="V2Session"),
    route("DELETE", "/v2/sessions/{session_id}", delete_session, status=204),
    route("POST", "/v2/sessions/{session_id}/stop", stop_session, body="V2SessionStop",
          response="V2SessionStopResult"),
    route("GET", "/v2/sessions/{session_id}/status", get_session_status, response="V2SessionExtendedStatus"),
    route("POST", "/v2/sessions/{session_id}/status", save_session_status, response="V2SessionExtendedStatus"),
]
