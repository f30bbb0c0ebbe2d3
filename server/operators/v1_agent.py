"""v1-agent (v1.md §1, §4): carries out v1 sessions on the v2 engine.

BOA was a second orchestrator; this is not. For each active v1 session the
agent selects each boot set's nodes (§4.1, the v2 selection code), then walks
the session's stages (v1_plan: ordinals honoured) by writing v2 component
patches, exactly as session-setup does for a v2 session. The status, power and
configuration operators then drive those components. The agent only reads
back the components it handed over and still waits for (the in-flight set, so
a pass costs O(nodes in flight), never O(cluster)) and moves each node to its
category (v1_progress). The status tree is therefore a view of the engine's
work, stored as sets so reading it never walks nodes (server/store/v1.py).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from bos_shared.components import empty_boot_artifacts, has_artifacts
from bos_shared.schema_v1 import OPERATION_PHASES

from ..jsonio import dumps
from ..store.v1 import AgentState, V1Store, agent_time, place, release_lock, take_lock
from .framework import Operator, PassContext, claimed, one_line
from .selection import HsmInventory, SetupError, select_nodes
from .target import Target, component_patch, configuration_for, target_for
from .v1_plan import CONFIGURE, SHUTDOWN, Stage, plan
from .v1_progress import Progress, progress

LOCK_SECONDS = 300
MAX_REST = 10.0  # seconds: the longest pause between passes while work is in flight
FAILING_FOR = 600.0  # seconds of uninterrupted failures after which a session is ended (L13)
NOT_IN_BOS = "Node is not a BOS component"
POWERED_OFF = "Node is powered off"
NO_BOOT_RECORD = "The node's booted artifacts are unknown (it has not reported to BOS)"
Record = Dict[str, Any]


def member(boot_set: str, node: str) -> str:
    return f"{boot_set}\x00{node}"


def split(member_: str) -> Tuple[str, str]:
    boot_set, _, node = member_.partition("\x00")
    return boot_set, node


def v1_kernel_parameters(params: str, sid: str) -> str:
    """v1.md §4.3: pieces 1-4 of operators.md §6.6, then `bos_session_id=<id>`; no bos_update_frequency."""
    words = [w for w in params.split() if not w.startswith("bos_update_frequency=")]
    return " ".join(words + [f"bos_session_id={sid}"])


def retry_hint(operation: str, template: str, nodes: Sequence[str]) -> List[str]:
    """The three log lines of v1.md §4.4 (BOA wording)."""
    joined = ",".join(sorted(nodes))
    return [f"These nodes failed to {operation}. {joined}",
            f"You can attempt to {operation} these nodes by issuing the command:",
            f"cray bos v1 session create --template-name {template} --operation {operation} --limit {joined}"]


class V1AgentOperator(Operator):
    name = "v1-agent"
    wake_sessions = frozenset({"v1"})  # a v1 session created or deleted
    wake_on_enabled = True  # the engine moved one of the nodes it drives
    wake_statuses = frozenset({"stable", "failed", "on_hold"})  # ...or let go of it

    def __init__(self) -> None:
        self._last_end = 0.0
        self._last_length = 0.0

    async def run_pass(self, ctx: PassContext) -> Optional[float]:
        redis = ctx.services.redis
        if redis is None:
            return None
        store = V1Store(redis)
        active = await store.active_ids()
        if not active:
            return None
        # Every engine write wakes this operator; with many nodes in flight a pass is long, so
        # rest as long as the last pass took: at most half the time goes into reading progress.
        rest = self._last_length - (time.monotonic() - self._last_end)
        if rest > 0:
            await asyncio.sleep(min(rest, MAX_REST))
        started = time.monotonic()
        try:
            return await self._pass(ctx, store, active)
        finally:
            self._last_end = time.monotonic()
            self._last_length = self._last_end - started

    async def _pass(self, ctx: PassContext, store: V1Store, active: List[str]) -> Optional[float]:
        redis = store.redis
        token = str(uuid.uuid4())
        if not await take_lock(redis, token, LOCK_SECONDS):  # another replica's agent is in a pass
            return ctx.recheck
        busy = False
        try:
            for sid in active:
                agent = SessionAgent(ctx, store, sid)
                try:
                    busy = await agent.step() or busy
                    await agent.state.clear_failure()
                except Exception as exc:  # one session's trouble never stops the others; resumed next pass
                    ctx.log.error("v1 session %s: %s", sid, one_line(exc), exc_info=True)
                    busy = not await agent.give_up_after_failure(one_line(exc)) or busy
                if await store.get_session(sid) is None:  # deleted during the pass: drop what it wrote since
                    await store.delete_session(sid)
        finally:
            await release_lock(redis, token)
        return max(ctx.recheck, ctx.elapsed()) if busy else None


class SessionAgent:
    """One pass over one v1 session: set up, start the due stage, record progress, finish."""

    def __init__(self, ctx: PassContext, store: V1Store, sid: str) -> None:
        self.ctx = ctx
        self.store = store
        self.sid = sid
        self.state = AgentState(store.redis, sid)
        self.record: Record = {}

    @property
    def template(self) -> Record:
        template: Dict[str, Any] = self.record["template"]
        return template

    @property
    def operation(self) -> str:
        return str(self.record["operation"]).lower()

    async def step(self) -> bool:
        """True while the session still has work in flight."""
        record = await self.store.get_session(self.sid)
        if record is None:  # deleted: the delete already stopped its components
            await self.store.deactivate(self.sid)
            return False
        self.record = record
        stages_json, index_text, started = await self.state.get("stages", "stage", "started")
        if stages_json is None:
            stages = await self.setup()
            index_text, started = "0", None
        else:
            stages = [Stage.from_json(s) for s in json.loads(stages_json)]
        index = int(index_text or 0)
        while index < len(stages):
            if started != str(index):
                await self.start_stage(stages[index])
                await self.state.set({"started": str(index)})
                started = str(index)
            if not await self.advance(stages[index]):
                return True
            await self.finish_stage(stages, index)
            index += 1
            await self.state.set({"stage": str(index)})
        await self.finish_session()
        return False

    async def give_up_after_failure(self, error: str) -> bool:
        """L13: an agent failing for FAILING_FOR seconds on end ends the session (stop_time set);
        shorter trouble (an API restart, an HSM blip) is resumed where it stopped. True if it gave up."""
        since = await self.state.failing_since(time.time())
        if time.time() - since < FAILING_FOR or await self.store.get_session(self.sid) is None:
            return False
        self.ctx.log.error("v1 session %s: giving up after %.0f s of failures: %s", self.sid, time.time() - since, error)
        await self.store.set_status_field(self.sid, "error", json.dumps(error), first_wins=False)
        await self.store.set_status_field(self.sid, "stop_time", agent_time())
        await self.store.deactivate(self.sid)
        return True

    # -- setup: selection, boot-set statuses, overlap report --

    async def setup(self) -> List[Stage]:
        boot_sets = self.template["boot_sets"]
        stages = plan(self.operation, boot_sets)
        inventory = HsmInventory(self.ctx.services.hsm, self.ctx.services.tapms)
        selected: Dict[str, List[str]] = {}
        for name, boot_set in boot_sets.items():
            warnings: List[str] = []
            found = await select_nodes(boot_set, {"limit": self.record.get("limit") or ""}, inventory, warnings)
            for warning in warnings:
                self.ctx.log.warning("v1 session %s, boot set %s: %s", self.sid, name, warning)
            selected[name] = sorted(found)
        phases = OPERATION_PHASES[self.operation]
        now = agent_time()
        for name, chosen in selected.items():
            await self.store.create_boot_set(self.sid, name, [
                {"name": p, "categories": {"not_started": chosen}} for p in phases], {"start_time": now})
        await self.report_overlap(sorted({n for nodes in selected.values() for n in nodes}))
        fields = {f"nodes:{n}": dumps(nodes).decode() for n, nodes in selected.items()}
        fields.update({f"config:{n}": "1" if configuration_for(self.template, bs) else ""
                       for n, bs in boot_sets.items()})
        fields.update({"stages": json.dumps([s.to_json() for s in stages]), "stage": "0"})
        await self.state.set(fields)
        self.ctx.log.info("v1 session %s: %s of %d nodes in %d stage(s)", self.sid, self.operation,
                          sum(len(n) for n in selected.values()), len(stages))
        return stages

    async def report_overlap(self, nodes: List[str]) -> None:
        """L1: nodes another session still drives are taken over, and that is said out loud."""
        if not nodes:
            return
        busy = await self.ctx.bos.components_by_ids(nodes, enabled=True)
        by_session: Dict[str, int] = defaultdict(int)
        for comp in busy:
            if comp.get("session") and comp["session"] != self.sid:
                by_session[comp["session"]] += 1
        if not by_session:
            return
        overlaps = [{"session": s, "nodes": n} for s, n in sorted(by_session.items())]
        for item in overlaps:
            self.ctx.log.warning("v1 session %s takes over %d nodes from running session %s", self.sid,
                                 item["nodes"], item["session"])
        await self.store.set_status_field(self.sid, "overlaps", json.dumps(overlaps), first_wins=False)

    # -- stages --

    async def remaining(self, boot_set: str) -> List[str]:
        """Selected nodes that have not failed or been excluded in any phase so far (v1.md §4.3)."""
        (raw,) = await self.state.get(f"nodes:{boot_set}")
        nodes = json.loads(raw or "[]")
        dropped: Set[str] = set()
        for phase in OPERATION_PHASES[self.operation]:
            for category in ("failed", "excluded"):
                dropped.update(await self.store.nodes(self.sid, boot_set, phase, category))
        return [n for n in nodes if n not in dropped]

    async def start_stage(self, stage: Stage) -> None:
        now = agent_time()
        patches: List[Record] = []
        for name in stage.boot_sets:
            nodes = await self.remaining(name)
            await self.store.set_time(self.sid, name, stage.phases[0], "start_time", now, first_wins=True)
            if not nodes:
                continue
            try:
                patches += await self.patches(stage, name, nodes)
            except SetupError as exc:  # the boot set aborts: its nodes fail the stage's first phase
                self.ctx.log.error("v1 session %s, boot set %s aborted: %s", self.sid, name, exc)
                await self.fail(stage, name, nodes, str(exc))
        written = await self.write(patches)
        await self.state.add_in_flight(member(p["__boot_set"], p["id"]) for p in patches if p["id"] in written)
        for name in stage.boot_sets:
            missing = [p["id"] for p in patches if p["__boot_set"] == name and p["id"] not in written]
            await self.fail(stage, name, missing, NOT_IN_BOS)
        self.ctx.log.info("v1 session %s: stage %s of boot sets %s started with %d nodes", self.sid,
                          stage.engine_op, ",".join(stage.boot_sets), len(written))

    async def patches(self, stage: Stage, name: str, nodes: List[str]) -> List[Record]:
        boot_set = self.template["boot_sets"][name]
        if stage.engine_op == CONFIGURE:
            return await self.configure_patches(name, boot_set, nodes)
        if stage.engine_op == SHUTDOWN:
            target = Target(empty_boot_artifacts(), "")
        else:
            ttl = str(self.ctx.options["component_actual_state_ttl"])
            target = await target_for(self.template, name, boot_set, stage.engine_op, self.ctx.services.s3, ttl)
            artifacts = dict(target.boot_artifacts)
            artifacts["kernel_parameters"] = v1_kernel_parameters(artifacts["kernel_parameters"], self.sid)
            target = Target(artifacts, target.configuration)
        return [{**component_patch(n, self.sid, stage.engine_op, False, target), "__boot_set": name} for n in nodes]

    async def configure_patches(self, name: str, boot_set: Mapping[str, Any], nodes: List[str]) -> List[Record]:
        """configure: the node keeps its booted artifacts and gets the configuration; no power action."""
        configuration = configuration_for(self.template, boot_set)
        stage = Stage(CONFIGURE, (CONFIGURE,), (name,))
        if not configuration:  # V9: CFS unused, nothing to do
            await place(self.store, self.sid, name, CONFIGURE, "excluded", nodes)
            return []
        power = await self.ctx.services.pcs.power_status(nodes)
        off = [n for n in nodes if power.get(n) != "on"]
        await self.exclude(stage, name, off, POWERED_OFF)
        records = {c["id"]: c for c in await self.ctx.bos.components_by_ids([n for n in nodes if n not in off])}
        patches, unknown = [], []
        for node in nodes:
            if node in off:
                continue
            actual = ((records.get(node) or {}).get("actual_state") or {}).get("boot_artifacts") or {}
            if not has_artifacts(actual):
                unknown.append(node)
                continue
            artifacts = {k: actual.get(k, "") for k in ("kernel", "kernel_parameters", "initrd")}
            patches.append({"id": node, "error": "", "enabled": True, "session": self.sid, "__boot_set": name,
                            "desired_state": {"boot_artifacts": artifacts, "configuration": configuration},
                            "last_action": {"action": "session_setup", "failed": False}})
        await self.exclude(stage, name, unknown, NO_BOOT_RECORD)
        return patches

    async def write(self, patches: List[Record]) -> Set[str]:
        """PATCH with skip_bad_ids; then, if the session was deleted meanwhile, undo (V4)."""
        if not patches:
            return set()
        clean = [{k: v for k, v in p.items() if k != "__boot_set"} for p in patches]
        async with claimed(self.ctx, [p["id"] for p in clean]):  # component leases (docs/ha.md)
            updated = await self.ctx.bos.patch_components(clean, self.ctx.batch_size, skip_bad_ids=True)
        written = set(updated)
        if await self.store.get_session(self.sid) is None:
            await self.ctx.bos.patch_components([{"id": i, "enabled": False} for i in sorted(written)],
                                                self.ctx.batch_size)
            raise SetupError("the session was deleted while its nodes were handed to the engine")
        return written

    async def fail(self, stage: Stage, name: str, nodes: Sequence[str], error: str) -> None:
        await self._drop(stage, name, nodes, error, "failed")

    async def exclude(self, stage: Stage, name: str, nodes: Sequence[str], error: str) -> None:
        await self._drop(stage, name, nodes, error, "excluded")

    async def _drop(self, stage: Stage, name: str, nodes: Sequence[str], error: str, category: str) -> None:
        """`nodes` end in `category` in the stage's first phase, `excluded` in every later phase (V9)."""
        if not nodes:
            return
        phases = OPERATION_PHASES[self.operation]
        first = stage.phases[0]
        await place(self.store, self.sid, name, first, category, nodes)
        await self.store.add_errors(self.sid, name, first, {error: list(nodes)})
        for phase in phases[phases.index(first) + 1:]:
            await place(self.store, self.sid, name, phase, "excluded", nodes)

    # -- progress --

    async def advance(self, stage: Stage) -> bool:
        """Record where every in-flight node stands; True when none is left in flight."""
        members = await self.state.in_flight()
        if not members:
            return True
        nodes = sorted({split(m)[1] for m in members})
        records = {c["id"]: c for c in await self.ctx.bos.components_by_ids(nodes)}
        configured = dict(zip(stage.boot_sets, await self.state.get(*[f"config:{b}" for b in stage.boot_sets])))
        old = dict(zip(members, await self.state.get(*[f"sig:{m}" for m in members])))
        moves: Dict[Tuple[str, str, str], List[str]] = defaultdict(list)
        errors: Dict[Tuple[str, str], Dict[str, List[str]]] = defaultdict(lambda: defaultdict(list))
        signatures: Dict[str, str] = {}
        landed: List[str] = []
        for item in members:
            name, node = split(item)
            previous = _parse(old.get(item))
            found = progress(stage, records.get(node), self.sid, bool(configured.get(name)), previous)
            if found.final:
                self._later_phases(stage, found)
                landed.append(item)
            if found.signature() != (old.get(item) or ""):
                signatures[f"sig:{item}"] = found.signature()
                for phase, category in found.categories.items():
                    if previous.get(phase) != category:
                        moves[(name, phase, category)].append(node)
                for phase, message in found.errors.items():
                    errors[(name, phase)][message].append(node)
        now = agent_time()
        for (name, phase, category), moved in moves.items():
            await place(self.store, self.sid, name, phase, category, moved)
            if category != "not_started":  # a phase starts when its first node gets there
                await self.store.set_time(self.sid, name, phase, "start_time", now, first_wins=True)
        for (name, phase), by_message in errors.items():
            await self.store.add_errors(self.sid, name, phase, by_message)
        await self.state.set(signatures)
        await self.state.land(landed)
        return len(landed) == len(members)

    def _later_phases(self, stage: Stage, found: Progress) -> None:
        """A node that failed (or was taken over) is excluded from the operation's later phases."""
        if not (found.failed or found.errors):
            return
        phases = OPERATION_PHASES[self.operation]
        for phase in phases[phases.index(stage.phases[-1]) + 1:]:
            found.categories[phase] = "excluded"

    # -- the end --

    async def finish_stage(self, stages: List[Stage], index: int) -> None:
        stage, now = stages[index], agent_time()
        for name in stage.boot_sets:
            for phase in stage.phases:
                await self.store.set_time(self.sid, name, phase, "stop_time", now, first_wins=True)
            if not any(name in later.boot_sets for later in stages[index + 1:]):
                await self.store.set_time(self.sid, name, None, "stop_time", now, first_wins=True)

    async def finish_session(self) -> None:
        hints: List[str] = []
        for name in self.template["boot_sets"]:
            failed: Set[str] = set()
            for phase in OPERATION_PHASES[self.operation]:
                failed.update(await self.store.nodes(self.sid, name, phase, "failed"))
            if failed:
                lines = retry_hint(self.operation, self.record["templateName"], sorted(failed))
                for line in lines:
                    self.ctx.log.warning("v1 session %s, boot set %s: %s", self.sid, name, line)
                hints.append(lines[-1])
        if hints:
            await self.store.set_status_field(self.sid, "retry_hints", json.dumps(hints), first_wins=False)
        await self.store.set_status_field(self.sid, "stop_time", agent_time())
        await self.store.deactivate(self.sid)
        self.ctx.log.info("v1 session %s is complete", self.sid)


def _parse(signature: Optional[str]) -> Dict[str, str]:
    if not signature:
        return {}
    return dict(part.split("=", 1) for part in signature.split(","))
