"""`POST /v2/sessions?dry_run=true` (extension, docs/deviations.md "Session control").

The body is validated exactly as a real create (sessions.py calls us after every
check). The plan comes from `operators.plan.plan_session`, the function session
setup itself runs, so the nodes and kernel parameters shown are the ones setup
would write. Nothing is written: no record, no component, no BSS/CFS/PCS call
(HSM, TAPMS and S3 are only read).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Dict, List, Mapping, Sequence, Set

from aiohttp import web

from bos_shared import schema
from bos_shared.limits import parse_limit

from ..operators.plan import NO_NODES, Plan, plan_session
from ..operators.selection import HsmInventory, SetupError
from ..store import keys
from .context import ctx
from .errors import Unavailable
from .responses import respond

LOG = logging.getLogger(__name__)
NOT_IN_BOS = "not a BOS component"
Record = Dict[str, Any]


async def plan_response(request: web.Request, record: Record, template: Mapping[str, Any],
                        options: Mapping[str, Any]) -> web.Response:
    """The plan of the session `record` would be (never stored), as a 200 answer."""
    context = ctx(request)
    if context.hsm is None:
        raise Unavailable("Dry run needs HSM; the API server has no HSM URL configured")
    inventory = HsmInventory(context.hsm, context.tapms)
    ttl = str(options["component_actual_state_ttl"])
    body: Record = {"dry_run": True, "session": _session_view(record)}
    try:
        await _prefetch(inventory, record, template)
        plan = await plan_session(record, template, inventory, context.s3, ttl, LOG, explain=True)
    except SetupError as exc:  # what the real session would end with
        body.update(error=str(exc), boot_sets={}, excluded=[], taken_over={}, warnings=[],
                    summary=_summary({}, [], {}))
        return respond(body)
    await _drop_unknown(request, plan)
    if not plan.by_node():
        body["error"] = NO_NODES
    taken = {} if record.get("stage") else await _taken_over(request, plan, record["name"])
    boot_sets = {entry.name: {"nodes": sorted(entry.nodes), "node_count": len(entry.nodes),
                              "boot_artifacts": dict(entry.target.boot_artifacts),
                              "configuration": entry.target.configuration,
                              "arch": template["boot_sets"][entry.name].get("arch") or "X86"}
                 for entry in plan.boot_sets if entry.nodes}
    body.update(boot_sets=boot_sets, excluded=plan.excluded, taken_over=taken, warnings=plan.warnings,
                summary=_summary(boot_sets, plan.excluded, taken))
    return respond(body)


async def _prefetch(inventory: HsmInventory, record: Record, template: Mapping[str, Any]) -> None:
    """Load the HSM tables this plan will read at once, not one after the other (same data:
    the inventory caches them for the selection steps)."""
    boot_sets = template["boot_sets"].values()
    limited = bool(parse_limit(record.get("limit")))
    wanted: List[Awaitable[Any]] = [inventory.locked()]
    if limited or any(b.get("node_roles_groups") for b in boot_sets):
        wanted.append(inventory.roles())
    if limited or any(b.get("node_groups") for b in boot_sets):
        wanted.append(inventory.groups())
    if limited:
        wanted.append(inventory.partitions())
    try:
        await asyncio.gather(*wanted)
    except Exception:  # the selection step that needs it fails the same way, with its context
        LOG.debug("Prefetching the HSM inventory failed; the plan reports it", exc_info=True)


def _session_view(record: Record) -> Record:
    fields = ("name", "operation", "template_name", "limit", "stage", "include_disabled",
              *schema.SESSION_EXTENSIONS)
    return {k: record[k] for k in fields if k in record}


def _summary(boot_sets: Mapping[str, Any], excluded: Sequence[Mapping[str, str]],
             taken: Mapping[str, str]) -> Record:
    by_reason: Dict[str, int] = {}
    for entry in excluded:
        reason = entry["reason"].split(" (")[0]
        by_reason[reason] = by_reason.get(reason, 0) + 1
    return {"nodes": sum(b["node_count"] for b in boot_sets.values()), "excluded": len(excluded),
            "taken_over": len(taken), "excluded_by_reason": by_reason}


async def _drop_unknown(request: web.Request, plan: Plan) -> None:
    """Setup writes with skip_bad_ids: nodes that are not BOS components are left out."""
    wanted = sorted({node for entry in plan.boot_sets for node in entry.nodes})
    known = await ctx(request).store.components.existing(wanted)
    for entry in plan.boot_sets:
        missing = entry.nodes - known
        plan.excluded += [{"id": node, "boot_set": entry.name, "reason": NOT_IN_BOS} for node in sorted(missing)]
        entry.nodes -= missing


async def _taken_over(request: web.Request, plan: Plan, name: str) -> Dict[str, str]:
    """Nodes enabled under another running session: this session would take them over."""
    store = ctx(request).store
    running: Set[str] = {r["name"] for r in await store.sessions.list(
        None, all_tenants=True, within=keys.sessions_by_status("running"))}
    running.discard(name)
    if not running:
        return {}
    nodes = sorted({node for entry in plan.boot_sets for node in entry.nodes})
    if not nodes:
        return {}
    enabled = [n for n, score in zip(nodes, await store.redis.zmscore(keys.COMPONENT_ENABLED, nodes))
               if score is not None]  # index look-ups only: no record is decoded
    taken: Dict[str, str] = {}
    for owner in sorted(running):
        if not enabled:
            break
        scores = await store.redis.zmscore(keys.by_session(owner), enabled)
        taken.update({n: owner for n, score in zip(enabled, scores) if score is not None})
        enabled = [n for n in enabled if n not in taken]
    return taken
