"""session-setup (operators.md §6): turn a pending session into component patches.

Each session is independent (D30): a BOS API outage leaves that session pending
for the next pass; any other problem completes it with a readable error.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from ..clients.bos import batches
from ..clients.rest import ServiceError, ServiceUnavailable
from ..store.acting import acting
from .framework import Operator, PassContext, one_line
from .plan import NO_NODES, plan_session
from .selection import HsmInventory, SetupError
from .sessions import describe, mark_complete
from .target import component_patch
NONE_IN_BOS = "All nodes found to act upon do not exist as BOS components"


class BosUnavailable(Exception):
    """The BOS API could not be reached: the session stays pending (D30)."""


def components_field(ids: List[str]) -> str:
    """Sorted IDs joined by ','; never cut (our API accepts a 100,000-node list, see docs/deviations.md)."""
    return ",".join(sorted(ids))


def problem_detail(exc: ServiceError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str(body.get("detail") or body.get("title") or exc.reason)


class SessionSetupOperator(Operator):
    name = "session-setup"
    wake_sessions = frozenset({"pending"})

    async def run_pass(self, ctx: PassContext) -> Optional[float]:
        pending = await ctx.bos.list_sessions(status="pending")
        if not pending:
            return None
        inventory = HsmInventory(ctx.services.hsm, ctx.services.tapms)
        retry_soon = False
        for session in pending:
            try:
                await self.setup(ctx, session, inventory)
            except BosUnavailable as exc:
                ctx.log.error("BOS API unavailable; session %s stays pending: %s", describe(session), exc)
                retry_soon = True
            except Exception:  # D30: one session's trouble never stops the others
                ctx.log.exception("Setting up session %s failed; it stays pending", describe(session))
                retry_soon = True
        return ctx.recheck * 5 if retry_soon else None

    async def setup(self, ctx: PassContext, session: Mapping[str, Any], inventory: HsmInventory) -> None:
        """Set up one session, registered as an action in progress (a stop waits for it, store/acting.py)."""
        async with acting(ctx.services.redis):
            if not await self._still_pending(ctx, session):
                ctx.log.info("Session %s is no longer pending (stopped or deleted); not set up", describe(session))
                return
            await self._setup(ctx, session, inventory)

    async def _still_pending(self, ctx: PassContext, session: Mapping[str, Any]) -> bool:
        current = await self._bos(ctx.bos.get_session(session["name"], session.get("tenant") or None))
        return current is not None and (current.get("status") or {}).get("status") == "pending"

    async def _setup(self, ctx: PassContext, session: Mapping[str, Any], inventory: HsmInventory) -> None:
        ctx.log.info("Setting up session %s (%s, template %s)", describe(session), session.get("operation"),
                     session.get("template_name"))
        try:
            template = await self._template(ctx, session)
            patches = await self.patches(ctx, session, template, inventory)
            ids = await self._write(ctx, patches)
            if not ids:
                raise SetupError(NONE_IN_BOS)
        except SetupError as exc:
            await self._complete(ctx, session, str(exc))
            return
        try:
            await self._bos(ctx.bos.patch_session(session["name"], session.get("tenant") or None,
                                                  {"status": {"status": "running"},
                                                   "components": components_field(ids)}))
        except ServiceError as exc:  # refused (not unavailable): retrying would redo the setup forever
            await self._complete(ctx, session, f"Unable to mark the session running: {problem_detail(exc)}")
            return
        ctx.log.info("Session %s is running with %d components", describe(session), len(ids))

    async def _template(self, ctx: PassContext, session: Mapping[str, Any]) -> Dict[str, Any]:
        name = session.get("template_name") or ""
        try:
            template = await self._bos(ctx.bos.get_template(name, session.get("tenant") or None))
        except ServiceError as exc:
            raise SetupError(f"Unable to read session template '{name}': {problem_detail(exc)}") from exc
        if not isinstance(template.get("boot_sets"), dict) or not template["boot_sets"]:
            raise SetupError(f"Session template '{name}' is not valid: it has no boot sets")
        return template

    async def patches(self, ctx: PassContext, session: Mapping[str, Any], template: Mapping[str, Any],
                      inventory: HsmInventory) -> List[Dict[str, Any]]:
        """§6.2 step 2 (operators/plan.py, shared with the dry run): one patch per node."""
        ttl = str(ctx.options["component_actual_state_ttl"])
        plan = await plan_session(session, template, inventory, ctx.services.s3, ttl, ctx.log)
        if not plan.by_node():
            raise SetupError(NO_NODES)
        staged = bool(session.get("stage"))
        operation = session.get("operation") or ""
        return [component_patch(node, session["name"], operation, staged, target)
                for node, target in sorted(plan.by_node().items())]

    async def _write(self, ctx: PassContext, patches: List[Dict[str, Any]]) -> List[str]:
        """PATCH with skip_bad_ids; IDs missing from the answer are unknown to BOS."""
        updated: List[Dict[str, Any]] = []
        try:
            for batch in batches(patches, ctx.batch_size):
                async with ctx.lock:  # never between another operator's read and write of these nodes
                    updated += await self._bos(ctx.bos.patch_components(batch, ctx.batch_size, skip_bad_ids=True))
        except ServiceError as exc:  # e.g. a 400 for an oversize kernel command line
            raise SetupError(f"Unable to update the session's components: {problem_detail(exc)}") from exc
        written = {c.get("id") for c in updated}
        missing = sorted(p["id"] for p in patches if p["id"] not in written)
        if missing:
            ctx.log.warning("%d components not found in BOS: %s", len(missing), ",".join(missing[:100]))
        return [p["id"] for p in patches if p["id"] in written]

    async def _complete(self, ctx: PassContext, session: Mapping[str, Any], error: str) -> None:
        await self._bos(mark_complete(ctx, session, error))

    @staticmethod
    async def _bos(call: Any) -> Any:
        """Await a BOS API call; an outage becomes BosUnavailable (the session stays pending)."""
        try:
            return await call
        except ServiceUnavailable as exc:
            raise BosUnavailable(one_line(exc)) from exc
