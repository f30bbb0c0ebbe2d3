"""`POST /v2/applystaged` (api.md §3.5, D18): make staged state desired, in batches."""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Tuple

from aiohttp import web

from bos_shared import schema
from bos_shared.components import ARTIFACT_KEYS, empty_actual_state, empty_boot_artifacts, empty_staged_state
from bos_shared.times import now_str

from ..component_writes import apply_auto_fields
from .context import ctx
from .params import json_body, validate
from .responses import respond
from .routes import route
from .tenancy import owned_xnames, tenant_of

Record = Dict[str, Any]


def staged_problem(operation: Optional[str], artifacts: Dict[str, Any], where: str) -> Optional[str]:
    """The error of applying this staged state, or None when it is valid."""
    if operation is None:
        return f"Staged session no longer exists {where}"
    filled = [bool(artifacts.get(key)) for key in ARTIFACT_KEYS]
    if operation == "shutdown":
        return f"Staged operation is shutdown but boot artifacts have been specified {where}" if any(filled) else None
    if operation in ("boot", "reboot"):
        if all(filled):
            return None
        return f"Staged operation is {operation} but some boot artifacts have not been specified {where}"
    return f"Invalid operation ({operation}) in staged session {where}"


def applied(record: Record, operation: Optional[str], clear_stage: bool, tenant: Optional[str]) -> Tuple[Record, bool]:
    """The record after applying its staged state (steps 3-6); True when it succeeded."""
    out = copy.deepcopy(record)
    staged = out.get("staged_state") or {}
    session = staged["session"]
    artifacts = staged.get("boot_artifacts") or {}
    error = staged_problem(operation, artifacts, f"(session: {session}, tenant: {tenant or ''})")
    if error is None:
        out["desired_state"] = {"boot_artifacts": copy.deepcopy(artifacts) if artifacts else empty_boot_artifacts(),
                                "configuration": staged.get("configuration", "")}
        if operation == "reboot":
            out["actual_state"] = empty_actual_state()
        out["enabled"] = True
    else:
        out["error"] = error
        out["enabled"] = False
    out["session"] = session
    out.setdefault("last_action", {})["action"] = "apply_staged"
    if clear_stage:
        out["staged_state"] = empty_staged_state()
    return out, error is None


async def apply_staged(request: web.Request) -> web.Response:
    body = validate(schema.ApplyStagedRequest, await json_body(request))
    tenant = tenant_of(request)
    xnames = list(dict.fromkeys(body.get("xnames") or []))
    owned = await owned_xnames(request, tenant) if tenant else None
    wanted = [x for x in xnames if owned is None or x in owned]
    context = ctx(request)
    clear_stage = (await context.store.options.get())["clear_stage"]
    operations: Dict[str, Optional[str]] = {}
    outcome: Dict[str, bool] = {}
    now = now_str()

    async def operation_of(name: str) -> Optional[str]:
        if name not in operations:
            session = await context.store.sessions.get(tenant, name)
            operations[name] = session.get("operation") if session else None
        return operations[name]

    records = await context.store.components.get_many(wanted)
    for record in records.values():  # warm the per-session look-ups outside the atomic step
        name = (record.get("staged_state") or {}).get("session")
        if name:
            await operation_of(name)

    def compute(component_id: str, old: Optional[Record]) -> Optional[Record]:
        name = ((old or {}).get("staged_state") or {}).get("session")
        if not name or name not in operations:
            outcome.pop(component_id, None)
            return None
        assert old is not None  # it has a staged session
        new, ok = applied(old, operations[name], clear_stage, tenant)
        outcome[component_id] = ok
        return apply_auto_fields(new, None, now)

    await context.store.components.update(wanted, compute)
    result: Dict[str, List[str]] = {"succeeded": [], "failed": [], "ignored": []}
    for xname in xnames:
        key = {True: "succeeded", False: "failed"}.get(outcome.get(xname), "ignored")  # type: ignore[arg-type]
        result[key].append(xname)
    return respond(result)


ROUTES = [route("POST", "/v2/applystaged", apply_staged, body="V2ApplyStagedComponents",
               response="V2ApplyStagedStatus")]
