"""session-setup (operators.md §6): turn a pending session into component patches.

Each session is independent (D30): a BOS API outage leaves that session pending
for the next pass; any other problem completes it with a readable error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, TypeVar

from ..clients.bos import batches
from ..clients.rest import ServiceError, ServiceUnavailable
from ..store import keys
from ..store.acting import acting
from .claims import Claim, FenceLost, fenced
from .framework import ComponentsBusy, Operator, PassContext, claimed, in_flight, one_line
from .plan import NO_NODES, plan_session
from .selection import HsmInventory, SetupError
from .sessions import describe, mark_complete
from .target import Target, component_patch

SETUP_BEGUN_SECONDS = 86400  # a setup marker outlives any setup (docs/ha.md §4)

if TYPE_CHECKING:
    from .status import StatusOperator
NONE_IN_BOS = "All nodes found to act upon do not exist as BOS components"

T = TypeVar("T")


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

    def __init__(self) -> None:
        # The status operator of this process, if it runs here (registry.link): each batch this
        # operator enables is looked at by it at once (`StatusOperator.look_soon`).
        self.status: Optional["StatusOperator"] = None

    async def run_pass(self, ctx: PassContext) -> Optional[float]:
        pending = await ctx.bos.list_sessions(status="pending")
        if not pending:
            return None
        inventory = HsmInventory(ctx.services.hsm, ctx.services.tapms)
        retry_soon = False
        for session in pending:
            try:
                retry_soon |= not await self.setup_claimed(ctx, session, inventory)
            except BosUnavailable as exc:
                ctx.log.error("BOS API unavailable; session %s stays pending: %s", describe(session), exc)
                retry_soon = True
            except ServiceError as exc:  # D30, one line: the service is named in the text
                ctx.log.error("Setting up session %s failed; it stays pending: %s", describe(session), exc)
                retry_soon = True
            except Exception:  # D30: one session's trouble never stops the others
                ctx.log.exception("Setting up session %s failed; it stays pending", describe(session))
                retry_soon = True
        return ctx.recheck * 5 if retry_soon else None

    async def setup_claimed(self, ctx: PassContext, session: Mapping[str, Any], inventory: HsmInventory) -> bool:
        """Set the session up under its lease, if it is still pending once held (docs/ha.md): one
        replica sets up a session, once. False if another replica is setting it up now."""
        tenant = session.get("tenant") or None
        claim = await ctx.claims.claim_key(keys.session_lease(tenant, session["name"]))
        if claim is None:
            ctx.log.info("Session %s is being set up by another replica", describe(session))
            return False
        try:
            async with acting(ctx.services.redis):  # before the re-check: a session stop waits for us
                try:
                    current = await self._bos(ctx.bos.get_session(session["name"], tenant))
                except ServiceError as exc:
                    if exc.status == 404:
                        return True  # deleted meanwhile
                    raise
                if (current.get("status") or {}).get("status") != "pending":
                    return True  # another replica set it up meanwhile, or it was stopped
                with fenced(ctx.claims, claim):
                    await self.setup(ctx, current, inventory, claim)
        except FenceLost as exc:
            raise BosUnavailable(f"lost the session's lease: {exc}") from exc
        finally:
            await ctx.claims.release_others(claim)
        return True

    async def setup(self, ctx: PassContext, session: Mapping[str, Any], inventory: HsmInventory,
                    claim: Optional[Claim] = None) -> None:
        ctx.log.info("Setting up session %s (%s, template %s)", describe(session), session.get("operation"),
                     session.get("template_name"))
        try:
            template = await self._template(ctx, session)
            targets = await self.targets(ctx, session, template, inventory)
            ids = await self._write(ctx, session, targets, claim)
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

    async def targets(self, ctx: PassContext, session: Mapping[str, Any], template: Mapping[str, Any],
                      inventory: HsmInventory) -> List[Tuple[str, Target]]:
        """§6.2 step 2 (operators/plan.py, shared with the dry run): each node's target, by ID."""
        ttl = str(ctx.options["component_actual_state_ttl"])
        plan = await plan_session(session, template, inventory, ctx.services.s3, ttl, ctx.log)
        by_node = plan.by_node()
        if not by_node:
            raise SetupError(NO_NODES)
        return sorted(by_node.items())

    async def _write(self, ctx: PassContext, session: Mapping[str, Any], targets: List[Tuple[str, Target]],
                     session_claim: Optional[Claim] = None) -> List[str]:
        """PATCH with skip_bad_ids, one batch's patches built at a time (a patch per node of a
        100,000-node session held at once was most of setup's memory); IDs missing from the
        answer are unknown to BOS."""
        staged = bool(session.get("stage"))
        operation = session.get("operation") or ""
        written: Set[str] = set()

        look = None if staged else self.status  # enabled by the write: looked at at once
        redo = not await self._begin(ctx, session)

        async def write(batch: Sequence[Tuple[str, Target]]) -> None:
            patches = [component_patch(node, session["name"], operation, staged, target) for node, target in batch]
            every = [node for node, _target in batch]
            ids: List[str] = []
            if look is not None:
                look.reserve(every)  # the write's own change event must not wake a look at them
            try:
                ids = await self._write_claimed(ctx, patches, session_claim, session["name"] if redo else None)
            finally:
                if look is not None:
                    look.look_soon(ctx, ids, reserved=every)
            written.update(ids)
        try:  # two batches in flight (framework.in_flight): each is claimed and written on its own
            await in_flight(batches(targets, ctx.batch_size), write)
        except ServiceError as exc:  # e.g. a 400 for an oversize kernel command line
            raise SetupError(f"Unable to update the session's components: {problem_detail(exc)}") from exc
        missing = [node for node, _target in targets if node not in written]
        if missing:
            ctx.log.warning("%d components not found in BOS: %s", len(missing), ",".join(missing[:100]))
        return [node for node, _target in targets if node in written]

    async def _begin(self, ctx: PassContext, session: Mapping[str, Any]) -> bool:
        """Note that this session's components are being written; False if a setup of this very
        session began before (a replica stopped half-way: docs/ha.md §4). The note holds the
        session's start time: a session deleted and created again under the same name is a new
        session, set up in full. Without Redis, always the first."""
        redis = ctx.services.redis
        if redis is None:
            return True
        key = keys.session_setup_begun(session.get("tenant") or None, session["name"])
        began = str((session.get("status") or {}).get("start_time") or "")
        before = await redis.set(key, began, ex=SETUP_BEGUN_SECONDS, get=True)
        return before is None or (before.decode() if isinstance(before, bytes) else before) != began

    async def _write_claimed(self, ctx: PassContext, batch: Sequence[Dict[str, Any]],
                             session_claim: Optional[Claim], redone: Optional[str] = None) -> List[str]:
        """Write under the components' leases (and the session's): never between another
        operator's (or replica's) read and write of these nodes. `redone`: the name of a session whose setup was
        begun before; its components that already carry it were written by that setup and may
        since have been acted on (powered on): they are left as they are, not set up again (a
        second power cycle for one session), and count as written."""
        base = Claim(session_claim.token, others=list(session_claim.others)) if session_claim else None
        try:
            async with claimed(ctx, [p["id"] for p in batch], base):
                done: Set[str] = set()
                if redone is not None:
                    mine = await self._bos(ctx.bos.components_by_ids([p["id"] for p in batch], session=redone))
                    done = {c["id"] for c in mine}
                rest = [p for p in batch if p["id"] not in done]
                written = await self._bos(ctx.bos.patch_components(rest, ctx.batch_size, skip_bad_ids=True)) if rest else []
                return [*done, *written]
        except ComponentsBusy as exc:
            raise BosUnavailable(str(exc)) from exc

    async def _complete(self, ctx: PassContext, session: Mapping[str, Any], error: str) -> None:
        await self._bos(mark_complete(ctx, session, error))

    @staticmethod
    async def _bos(call: Awaitable[T]) -> T:
        """Await a BOS API call; an outage becomes BosUnavailable (the session stays pending)."""
        try:
            return await call
        except ServiceUnavailable as exc:
            raise BosUnavailable(one_line(exc)) from exc
