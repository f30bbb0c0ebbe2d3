"""What every operator shares: the pass context, the generic selection/chunk flow
(operators.md §2.3), action updates (§2.4) and the retry gate (§2.5).

Operator modules subclass `Operator` (own pass) or `ComponentOperator` (generic
flow) and only say which components are their work and what to do with a chunk.
Waking, option refresh, logging level and liveness live in `runner.py`; the
coordination of replicas (component leases, decision records) in `claims.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, TypeVar, cast

from bos_shared.records import Component  # the typed record (api.md §2.1)
from bos_shared.status import component_status

from .. import metrics
from ..clients.bos import BosClient
from ..clients.rest import ServiceError
from ..store.acting import acting
from .claims import Claim, FenceLost, LocalClaims, fenced
from .services import Services

Errors = Dict[str, str]
T = TypeVar("T")

CLAIM_RETRY = 0.2  # seconds between attempts to claim components another holder has
# The generic flow waits this long, in short jittered steps, for chunk components another
# operator holds (typically the status operator evaluating the same page) before leaving them to
# a later pass: their holder releases them within a moment, and a pass skipped for them cost a
# whole re-check interval at each hand-over between operators (issue 13, realistic latencies).
CHUNK_CLAIM_WAIT = 1.0
CHUNK_CLAIM_STEP = (0.05, 0.15)
# Chunks of one pass worked on at once (operators.md §2.3, extension): each has its own claim.
CHUNKS_IN_FLIGHT = 2

RETRY_LIMIT_ERROR = ("The retry limit has been hit for this component, but no services have "
                     "reported specific errors")
MAX_ERROR_CHARS = 4096


def one_line(error: Any) -> str:
    """A human-readable single-line error text (D15), bounded in size."""
    text = str(error) if not isinstance(error, BaseException) or str(error) else type(error).__name__
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 3] + "..."


def chunks(items: Sequence[Any], size: int) -> List[Sequence[Any]]:
    """Split into chunks of `max_component_batch_size` (0 = one chunk)."""
    if not items:
        return []
    if size <= 0:
        return [items]
    return [items[i:i + size] for i in range(0, len(items), size)]


@dataclass
class PassContext:
    """Everything one pass needs: clients, the options of this pass, the clock."""

    services: Services
    options: Mapping[str, Any]
    log: logging.Logger
    now: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)
    recheck: float = 1.0
    # Component leases, held from reading components to writing the decision about them by
    # every operator that decides on component state, in every replica (docs/ha.md).
    claims: LocalClaims = field(default_factory=LocalClaims)
    contended: int = 0  # components skipped this pass because another holder had them

    def as_operator(self, name: str) -> "PassContext":
        """This pass's context with the log of operator `name` (a sibling of this log): for work one
        operator does for another of its process (the in-process hand-overs, operators.md §3)."""
        parent = self.log.name.rpartition(".")[0] or self.log.name
        return replace(self, log=logging.getLogger(f"{parent}.{name}"))

    def busy(self, wanted: int, claim: Claim) -> None:
        """Count (and say) the components another holder has: they get another look soon."""
        skipped = wanted - len(claim.ids)
        if skipped:
            self.contended += skipped
            self.log.info("%d of %d components are held by another operator or replica; looking again soon",
                          skipped, wanted)

    @property
    def batch_size(self) -> int:
        return int(self.options.get("max_component_batch_size") or 0)

    @property
    def bos(self) -> BosClient:
        return self.services.bos

    def elapsed(self) -> float:
        return time.monotonic() - self.started


async def in_flight(items: Sequence[T], work: Callable[[T], Awaitable[Any]], limit: int = CHUNKS_IN_FLIGHT) -> None:
    """`work` on every item, at most `limit` at once, started in order; the first error cancels
    the rest and propagates (as a plain loop over the items would stop there)."""
    if len(items) <= 1 or limit <= 1:
        for item in items:
            await work(item)
        return
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> None:
        async with gate:
            await work(item)
    tasks = [asyncio.ensure_future(one(item)) for item in items]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def concurrently(*calls: Awaitable[Any]) -> List[Any]:
    """The results of independent requests sent at once, in order; the first error cancels the
    others and propagates (as awaiting them one after the other would stop there)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class ComponentsBusy(Exception):
    """Components stayed held by another operator or replica, or their leases were lost
    before the write: nothing was written; try again later."""


@contextlib.asynccontextmanager
async def claimed(ctx: PassContext, ids: Sequence[str], base: Optional[Claim] = None) -> AsyncIterator[Claim]:
    """Hold every one of `ids` (waiting up to twice the lease period for busy ones), with every
    write request inside fenced by the claim; always released. For writers that must write all
    of their components (session setup, the v1 engine), where the pass flow skips busy ones."""
    claim = await ctx.claims.claim(ids, into=base)
    deadline = time.monotonic() + 2 * ctx.claims.lease
    try:
        while len(claim.ids) < len(set(ids)):
            if time.monotonic() > deadline:
                raise ComponentsBusy(f"{len(set(ids)) - len(claim.ids)} of {len(set(ids))} components stayed busy")
            await asyncio.sleep(CLAIM_RETRY)
            claim = await ctx.claims.claim(ids, into=claim)
        with fenced(ctx.claims, claim):
            yield claim
    except FenceLost as exc:
        raise ComponentsBusy(f"lost the components' leases before writing: {exc}") from exc
    finally:
        await ctx.claims.release(claim)


# Passes that follow one another closely (events arrived during a pass) start at least this long
# after the previous pass ended, coalescing a burst of change events into one pass. An operator that
# has been waiting longer starts at once: delaying the first reaction to a new session or hand-off
# added this much to every step of a boot (issue 13, realistic latencies).
DEBOUNCE = 0.15

class Operator:
    """One operator: a pass plus the change events that may give it work.

    `run_pass` returns None, or the number of seconds after which it wants
    another pass even if nothing is published (a deadline it knows about); the
    runner never waits longer than the operator's frequency option.
    """

    name: str = ""
    frequency_option: str = "polling_frequency"
    wake_statuses: FrozenSet[str] = frozenset()  # component statuses that may create work
    wake_on_enabled: bool = False  # any write of an enabled component
    wake_sessions: FrozenSet[str] = frozenset()  # session statuses that may create work
    debounce: float = DEBOUNCE  # events during a pass start the next one this long after it ended

    def wants(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("kind")
        if kind == "options":
            return True
        statuses = set(event.get("statuses") or [])
        if kind == "components":
            return bool(statuses & self.wake_statuses) or (self.wake_on_enabled and bool(event.get("enabled")))
        if kind == "sessions":
            return bool(statuses & self.wake_sessions)
        return False

    async def run_pass(self, ctx: PassContext) -> Optional[float]:
        raise NotImplementedError


# -- §2.4 action updates and §2.5 retry gate (pure parts) --

def retry_limit(component: Mapping[str, Any], options: Mapping[str, Any]) -> int:
    policy = component.get("retry_policy")
    return int(policy) if policy is not None else int(options.get("default_retry_policy", 3))


def attempts(component: Mapping[str, Any], retry_field: str) -> int:
    return int((component.get("event_stats") or {}).get(retry_field) or 0)


def over_limit(component: Mapping[str, Any], retry_field: str, options: Mapping[str, Any]) -> bool:
    """§2.5: limit -1 is unlimited; otherwise attempts >= limit stops the action."""
    limit = retry_limit(component, options)
    return limit != -1 and attempts(component, retry_field) >= limit


def retry_limit_patch(component: Mapping[str, Any]) -> Dict[str, Any]:
    """Override `failed`; the default error only when no error is recorded (D28)."""
    patch: Dict[str, Any] = {"id": component["id"], "status": {"status_override": "failed"}}
    if not component.get("error"):
        patch["error"] = RETRY_LIMIT_ERROR
    return patch


def carried_under(carried: Mapping[str, Any], patch: Mapping[str, Any]) -> Dict[str, Any]:
    """`patch` with the fields of `carried` (an earlier patch of the same component) it does not
    set: one write with the outcome of the two written one after the other (api.md §2.5, the
    nested objects a patch sets merged one level deep, as the operators' patches are)."""
    merged: Dict[str, Any] = {**carried, **patch}
    for name, value in carried.items():
        if isinstance(value, dict) and isinstance(patch.get(name), dict):
            merged[name] = {**value, **patch[name]}
    return merged


def action_update(components: Sequence[Mapping[str, Any]], errors: Mapping[str, str],
                  action: Optional[str], retry_field: Optional[str]) -> List[Dict[str, Any]]:
    """One patch per component after acting: error, last action, attempts + 1 (§2.4)."""
    patches = []
    for comp in components:
        patch: Dict[str, Any] = {"id": comp["id"], "error": errors.get(comp["id"], "")}
        if action:
            patch["last_action"] = {"action": action, "failed": False}
        if retry_field:
            patch["event_stats"] = {retry_field: attempts(comp, retry_field) + 1}
        patches.append(patch)
    return patches


# Called once a chunk's action is made (its external call returned or failed), before its outcome is
# written: the status operator's hand-over frees its slot then (status.py `_hand_over`), so the next
# page's hand-over does not wait for this one's action update and lease release (issue 13).
ACTED: ContextVar[Optional[Callable[[], None]]] = ContextVar("bos_acted", default=None)


class ComponentOperator(Operator):
    """The generic flow (§2.3): select all → chunk → claim → re-read → retry gate → record the
    decision → act → action update → release.

    `filters` is the BOS query of the operator's work; `narrow` adds the further selection
    steps (HSM existence, time, CFS). Each chunk's components are claimed first (component
    leases, docs/ha.md), then re-read, and only those still matching `filters` and
    `still_due` are acted on: a component another operator or replica moved on since the
    selection is left alone, and one it holds right now is skipped and looked at again soon.
    Operators with a retry counter record each decision with the component's state version
    before acting; a decision a stopped replica had already recorded is adopted as issued,
    never issued twice.
    """

    action: Optional[str] = None
    retry_field: Optional[str] = None
    filters: Mapping[str, Any] = {}
    # Whether the re-read under the claim (`refresh`) needs only the fields the power operators
    # read (bos_reads.acting_fields: no actual or staged state), not the listing's whole record.
    acting_fields_only = False
    # Whether the status operator of this process may leave its write of what it hands over to this
    # operator to this operator's first write of each component (`carry`): only for an operator whose
    # every path writes before it acts (power-on: the action update precedes PCS `On`).
    carries = False

    def __init__(self) -> None:
        # Components the status operator of this process is handing to this operator now
        # (`take_over`; from before its write to its release): a pass of this operator woken by
        # that write leaves them out of its selection, instead of waiting for their leases and
        # re-reading them only to find them acted on.
        self.taking: Set[str] = set()
        # ID -> the status operator's patch for a component it hands over (`carry`), not written
        # yet: this operator's first write of the component carries it (`write`); what no write
        # carried is written when the hand-over ends (`take_over`).
        self._carried: Dict[str, Dict[str, Any]] = {}
        # ID -> the error its action update recorded before the act (`preset`), until the chunk's
        # update after the act (`action_updates`) takes it.
        self._recorded: Dict[str, str] = {}

    def carry(self, patches: Sequence[Dict[str, Any]]) -> None:
        """Take the status operator's patches of components it is about to hand over (operators.md
        §3, extension "handed over at once", deviation): they are written with this operator's first
        write of each component, not in a write of their own (issue 13: the status write of a
        session's batch before power-on's action update was a bulk write per node and a round trip
        in each batch's way to `On`)."""
        self._carried.update((p["id"], p) for p in patches)

    def drop_carried(self, ids: Sequence[str]) -> None:
        """Forget the carried patches of `ids` unwritten (their hand-over never began): nothing was
        written or done for them, so the status operator's next look decides them again."""
        for cid in ids:
            self._carried.pop(cid, None)

    async def write(self, ctx: PassContext, patches: List[Dict[str, Any]]) -> None:
        """Bulk PATCH `patches`, each under the carried patch of its component, if any (`carry`).
        A carried patch is done with once this write succeeds: a write that fails or is cancelled
        (power-on's update, when CFS fails the chunk) leaves it to the next write."""
        carried = self._carried
        with_carried = [p["id"] for p in patches if p["id"] in carried] if carried else []
        if with_carried:
            patches = [carried_under(carried[p["id"]], p) if p["id"] in carried else p for p in patches]
        await ctx.bos.patch_components(patches, ctx.batch_size)
        for cid in with_carried:
            carried.pop(cid, None)

    async def take_over(self, ctx: PassContext, ids: Sequence[str], claim: Claim) -> None:
        """Act, under the status operator's claim, on the components its write just made this
        operator's work (operators.md §3, extension "handed over at once"): the flow of a claimed
        chunk from the re-read on, this operator's selection steps (`narrow`: HSM existence, the
        wave gate §5.7) applied to the re-read records, in the status operator's pass. Through the
        store, the hand-over took a change event, a pass of this operator that began only after
        its previous one, its selection and a wait for the status operator's leases: up to a pass
        per status page between the decision and the action (issue 13, realistic latencies).
        Returns once the outcome is recorded (the claim's decision records may go with its leases).
        The carried patches (`carry`) of components this operator then did not write (no longer its
        work, not in HSM, waiting for a wave slot, another's decision) are written at the end, as
        the status operator would have written them, and so, if it can be, after an error (HSM
        unreachable: left to this operator's next pass, as before). A hand-over cancelled or whose
        leases were lost leaves them unwritten: nothing was done, the status operator decides again."""
        own = ctx.as_operator(self.name)
        try:
            fresh = await self.taken(own, ids)
            if fresh:
                await self.process_chunk(own, fresh, claim)
            await self._write_carried(ctx, ids)
        except Exception as exc:
            if not isinstance(exc, FenceLost):
                with contextlib.suppress(Exception):
                    await self._write_carried(ctx, ids)
            raise
        finally:
            self.drop_carried(ids)

    async def _write_carried(self, ctx: PassContext, ids: Sequence[str]) -> None:
        """Write the carried patches of `ids` that no write of this operator carried (`take_over`)."""
        left = [self._carried[i] for i in ids if i in self._carried]
        if left:
            await ctx.bos.patch_components(left, ctx.batch_size)
            self.drop_carried(ids)

    async def taken(self, ctx: PassContext, ids: Sequence[str]) -> List[Component]:
        """The components handed over (`take_over`) that are still this operator's work: re-read
        (`refresh`), then narrowed by its selection steps (`narrow`)."""
        fresh = await self.refresh(ctx, ids)
        return await self.narrow(ctx, fresh) if fresh else fresh

    async def select(self, ctx: PassContext) -> List[str]:
        """IDs of the whole selection; any failure means nothing is selected this pass.

        Every selection step runs over every candidate before any chunk is acted on (§2.3), but
        page by page, keeping only the IDs: a chunk's records are re-read under its claim anyway
        (`refresh`), so a pass at 100,000 nodes never holds every candidate's record at once."""
        selected: List[str] = []
        async for page in ctx.bos.iter_component_pages(ctx.batch_size, **self.filters):
            if self.taking:  # handed over to this operator now: `run_pass` drops them (narrow would ask HSM)
                page = [c for c in page if c["id"] not in self.taking]
            selected.extend(c["id"] for c in await self.narrow(ctx, page))
        return selected

    async def narrow(self, ctx: PassContext, candidates: List[Component]) -> List[Component]:
        """Further selection steps over one page of the BOS query's candidates."""
        return candidates

    def still_due(self, ctx: PassContext, component: Component) -> bool:
        return True

    async def recheck_due(self, ctx: PassContext, components: List[Component]) -> List[Component]:
        """Re-check, after the claim, selection steps that read other services (default: none)."""
        return components

    def version(self, component: Component) -> str:
        """The component's state version for this operator's decision: it changes exactly when
        the decision's outcome is recorded (the retry counter), or a new session takes over."""
        return f"{component.get('session') or ''}\x1f{attempts(component, self.retry_field or '')}"

    async def act(self, ctx: PassContext, chunk: Sequence[Component]) -> Errors:
        """Do the work for a chunk; return per-component errors (absent or "" = success)."""
        raise NotImplementedError

    def next_due(self, ctx: PassContext) -> Optional[float]:
        return None

    async def run_pass(self, ctx: PassContext) -> Optional[float]:
        try:
            selected = await self.select(ctx)
        except Exception as exc:  # §2.3: a failed selection step selects nothing this pass
            ctx.log.error("Selection failed; nothing selected this pass: %s", one_line(exc))
            return self.next_due(ctx)
        if self.taking:  # the status operator of this process acts on them now (take_over)
            selected = [i for i in selected if i not in self.taking]
        if selected:
            ctx.log.info("Found %d components that require action", len(selected))
        await self.claimed_chunks(ctx, chunks(selected, ctx.batch_size))
        due = self.next_due(ctx)
        if ctx.contended:
            due = ctx.recheck if due is None else min(due, ctx.recheck)
        return due

    async def claimed_chunks(self, ctx: PassContext, parts: Sequence[Sequence[str]]) -> None:
        """Work on the chunks, CHUNKS_IN_FLIGHT at a time, in order of their start.

        Each chunk is claimed, decided and written on its own (its own leases and fence), so two
        chunks in flight never touch the same component; overlapping them keeps both API workers
        busy while one chunk waits on a write or an external call (issue 13: a 100,000-node boot
        was 36 power-on chunks of ~3 s one after the other, mostly waiting)."""
        await in_flight(parts, lambda part: self.claimed_chunk(ctx, part))

    async def claimed_chunk(self, ctx: PassContext, chunk: Sequence[str]) -> None:
        """Claim the chunk's components, then work on what was claimed; always release."""
        claim = await self._claim_chunk(ctx, chunk)
        ctx.busy(len(chunk), claim)
        if not claim.ids:
            return
        outcome_recorded = False  # until then, decision records stay for whoever holds these next
        try:
            async with acting(ctx.services.redis):  # before the re-read (store/acting.py: session stop)
                with fenced(ctx.claims, claim):
                    fresh = await self.recheck_due(ctx, await self.refresh(ctx, claim.ids))
                    await self.process_chunk(ctx, fresh, claim)
            outcome_recorded = True
        except FenceLost as exc:
            ctx.log.warning("Stopped acting on %d components: %s (another replica takes them over)",
                            len(claim.ids), exc)
        finally:
            await ctx.claims.release(claim, self.name if self.retry_field and outcome_recorded else None)

    @staticmethod
    async def _claim_chunk(ctx: PassContext, chunk: Sequence[str]) -> Claim:
        """Claim what is free, then wait up to CHUNK_CLAIM_WAIT for the rest (bounded: two
        claimants waiting for each other's part both go on with what they hold)."""
        claim = await ctx.claims.claim(chunk)
        deadline = time.monotonic() + CHUNK_CLAIM_WAIT
        while len(claim.ids) < len(chunk) and time.monotonic() < deadline:
            await asyncio.sleep(random.uniform(*CHUNK_CLAIM_STEP))
            claim = await ctx.claims.claim(chunk, into=claim)
        return claim

    async def refresh(self, ctx: PassContext, ids: Sequence[str]) -> List[Component]:
        """The current records of `ids` (read under their leases) that are still this operator's work."""
        read = ctx.bos.acting_records if self.acting_fields_only else ctx.bos.components_by_ids
        if any(i in self._carried for i in ids):
            fresh = self._as_carried(await read(list(ids), **{k: v for k, v in self.filters.items() if k != "status"}))
        else:
            fresh = await read(list(ids), **self.filters)
        metrics.operator_read(self.name, len(fresh))
        kept = [c for c in fresh if self.still_due(ctx, c)]
        if len(kept) < len(ids):
            ctx.log.info("%d of %d components changed since selection and are left alone",
                         len(ids) - len(kept), len(ids))
        return kept

    def _as_carried(self, records: List[Component]) -> List[Component]:
        """The records read without the status filter, each as its carried patch (`carry`) makes
        it, that are in the status of this operator's work (`filters`): what a re-read after the
        status operator's write would have found."""
        carried, wanted = self._carried, self.filters.get("status")
        records = [cast(Component, carried_under(c, carried[c["id"]])) if c["id"] in carried else c for c in records]
        return records if wanted is None else [c for c in records if component_status(c) == wanted]

    async def process_chunk(self, ctx: PassContext, chunk: Sequence[Component],
                            claim: Optional[Claim] = None) -> None:
        chunk = await self.retry_gate(ctx, chunk)
        if chunk and claim is not None:
            chunk = await self.record_decisions(ctx, chunk, claim)
        if not chunk:
            return
        errors: Errors = {comp["id"]: "" for comp in chunk}
        try:
            errors.update(await self.act(ctx, chunk))
        except Exception as exc:  # §2.4: the whole chunk gets the error text
            text = one_line(exc)
            ctx.log.error("Action failed for %d components: %s", len(chunk), text,
                          exc_info=not isinstance(exc, ServiceError))
            errors = {comp["id"]: text for comp in chunk}
        acted = ACTED.get()
        if acted is not None:
            acted()
        failed = sum(1 for e in errors.values() if e)
        metrics.operator_acted(self.name, len(chunk), failed)
        if failed:
            ctx.log.warning("%d of %d components recorded an error", failed, len(chunk))
        patches = self.action_updates(chunk, errors)
        if patches:
            await self.write(ctx, patches)

    def action_updates(self, chunk: Sequence[Component], errors: Errors) -> List[Dict[str, Any]]:
        """The chunk's action update after acting (§2.4), with each component's further fields.
        Components whose update was written before the act (`preset`) get only an error the act
        added since (usually nothing); the others (none preset, or the chunk failed before that
        write) the whole action update."""
        recorded = {c["id"]: self._recorded.pop(c["id"]) for c in chunk if c["id"] in self._recorded}
        patches = self._updates([c for c in chunk if c["id"] not in recorded], errors)
        patches += [{"id": cid, "error": errors[cid]} for cid, written in recorded.items()
                    if errors.get(cid, "") != written]
        return patches

    def _updates(self, chunk: Sequence[Component], errors: Errors) -> List[Dict[str, Any]]:
        """The whole action update of `chunk` (§2.4), with each component's further fields."""
        patches = action_update(chunk, errors, self.action, self.retry_field)
        for comp, patch in zip(chunk, patches):
            patch.update(self.update_fields(comp, patch["error"]))
        return patches

    async def preset(self, ctx: PassContext, chunk: Sequence[Component], errors: Errors) -> None:
        """Write the chunk's action update (§2.4: last action, attempts + 1, each error so far) before
        the act's external call, with the status operator's patches it carries (`carry`): the
        operators whose every path so writes before it acts carry them (power-on before PCS `On`,
        §5.5; power-off-graceful before `Soft-Off`, §5.2). A failed write fails the chunk before the
        call; after it only errors the call adds are written (`action_updates`)."""
        for comp in chunk:  # nothing left over from a chunk whose update was never sent (lost fence)
            self._recorded.pop(comp["id"], None)
        patches = self._updates(chunk, errors)
        await self.write(ctx, patches)
        self._recorded.update((p["id"], p["error"]) for p in patches)

    def update_fields(self, component: Component, error: str) -> Dict[str, Any]:
        """Further fields of a component's action update (default none; power-on: the BSS token)."""
        return {}

    async def record_decisions(self, ctx: PassContext, chunk: Sequence[Component],
                               claim: Claim) -> List[Component]:
        """Record each decision (fenced) before acting; adopt those a stopped holder had issued.

        Returns the components to act on. An adopted decision gets its action update as if
        this replica had issued it (no external call): at most once per decision.
        """
        if not self.retry_field:
            return list(chunk)
        marked, adopted = await ctx.claims.mark(claim, self.name, {c["id"]: self.version(c) for c in chunk})
        if adopted:
            taken = set(adopted)
            ctx.log.warning("%d components: %s was already issued by a replica that stopped; recorded, "
                            "not repeated: %s", len(adopted), self.action, ",".join(adopted[:20]))
            await self.write(ctx, action_update([c for c in chunk if c["id"] in taken], {}, self.action,
                                                self.retry_field))
        keep = set(marked)
        return [c for c in chunk if c["id"] in keep]

    async def retry_gate(self, ctx: PassContext, chunk: Sequence[Component]) -> List[Component]:
        """§2.5: components at their retry limit get override `failed` instead of an action."""
        if not self.retry_field:
            return list(chunk)
        blocked = [c for c in chunk if over_limit(c, self.retry_field, ctx.options)]
        if blocked:
            ctx.log.warning("%d components hit their retry limit for %s: %s", len(blocked), self.name,
                            ",".join(c["id"] for c in blocked[:20]))
            await self.write(ctx, [retry_limit_patch(c) for c in blocked])
        blocked_ids = {c["id"] for c in blocked}
        return [c for c in chunk if c["id"] not in blocked_ids]
