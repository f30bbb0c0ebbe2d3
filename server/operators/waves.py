"""The wave gate of the power operators (extension `max_in_flight` / `max_failed`).

power-off-graceful and power-on start a node's first power action; before they
do, the node of a capped session must hold a slot (store/waves.py). Nodes
without one stay where they are and are looked at again on the next pass (a
slot frees when a node reaches `configuring` or finishes, which wakes the
operators). When a session's failures exceed `max_failed`, its waiting nodes are
disabled with `NOT_STARTED` and the session gets an error naming the threshold.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence

from ..store import waves
from .framework import Component, PassContext

NOT_STARTED = "Not started: the session's max_failed threshold ({}) was exceeded"
THRESHOLD_ERROR = ("Session stopped starting nodes: more than max_failed={} of its nodes failed "
                   "({} failed of {})")
UNLIMITED_SESSION = ""


def _capped(session: Mapping[str, Any]) -> bool:
    return session.get("max_in_flight") is not None or session.get("max_failed") is not None


# The sessions whose nodes may be enabled: running ones, and pending ones session setup is writing
# batch by batch (each batch is looked at, and its nodes powered on, as soon as it is written: the
# status operator's `look_soon`), before it marks the session running.
GATED_STATUSES = ("pending", "running")


async def _sessions(ctx: PassContext) -> List[Dict[str, Any]]:
    return [s for status in GATED_STATUSES for s in await ctx.bos.session_heads(status=status)]


async def any_capped(ctx: PassContext) -> bool:
    """Whether a session that may have enabled nodes uses the gate (then candidates are gated by
    their session): a pending one too. Counting running sessions only, a capped session's nodes
    were powered on without slots while setup still wrote its later batches (a 300-node session,
    max_in_flight=20, batches of 20: 100 in flight at once)."""
    return any(_capped(s) for s in await _sessions(ctx))


async def gate(ctx: PassContext, candidates: Sequence[Component],
               before_admitting: Optional[Callable[[List[str]], Awaitable[None]]] = None) -> List[Component]:
    """The candidates that may start now: uncapped ones, and capped ones holding a slot.
    `before_admitting` is awaited with a capped session's candidates before they are admitted:
    power-on writes the status operator's S2b patch it carries for them (`ComponentOperator.carry`),
    as a slot is counted by its holder's power phase in the store."""
    redis = ctx.services.redis
    by_session: Dict[str, List[Component]] = defaultdict(list)
    for comp in candidates:
        by_session[comp.get("session") or UNLIMITED_SESSION].append(comp)
    capped = {}
    if redis is not None and any(by_session.keys() - {UNLIMITED_SESSION}):
        capped = {s["name"]: s for s in await _sessions(ctx) if _capped(s)}
    allowed: List[Component] = []
    for name, comps in by_session.items():
        session = capped.get(name)
        if session is None:
            allowed += comps
            continue
        if before_admitting is not None:
            await before_admitting([c["id"] for c in comps])
        allowed += await _admit(ctx, session, comps)
    return allowed


async def _admit(ctx: PassContext, session: Mapping[str, Any], comps: List[Component]) -> List[Component]:
    name = session["name"]
    admission = await waves.admit(ctx.services.redis, name, session.get("max_in_flight"),
                                  session.get("max_failed"), [c["id"] for c in comps])
    admitted = set(admission.admitted)
    if admission.exceeded:
        await _stop_starting(ctx, session, [c for c in comps if c["id"] not in admitted])
    waiting = len(comps) - len(admitted)
    if waiting:
        ctx.log.info("Session %s: %d nodes wait for a slot (max_in_flight=%s)", name, waiting,
                     session.get("max_in_flight"))
    return [c for c in comps if c["id"] in admitted]


async def _stop_starting(ctx: PassContext, session: Mapping[str, Any], waiting: List[Component]) -> None:
    """max_failed exceeded: record the threshold on the session, disable the nodes not yet started."""
    name, threshold = session["name"], session.get("max_failed")
    members = await ctx.services.redis.zcard(waves.keys.by_session(name))
    failed = await ctx.services.redis.zintercard(2, [waves.keys.by_session(name), waves.keys.by_status("failed")])
    error = THRESHOLD_ERROR.format(threshold, failed, members)
    ctx.log.warning("Session %s: %s; %d waiting nodes are not started", name, error, len(waiting))
    status = session.get("status") or {}
    if status.get("error") != error:
        await ctx.bos.patch_session(name, session.get("tenant") or None, {"status": {"error": error}})
    patches = [{"id": c["id"], "enabled": False, "error": NOT_STARTED.format(threshold)} for c in waiting]
    if patches:
        await ctx.bos.patch_components(patches, ctx.batch_size)
