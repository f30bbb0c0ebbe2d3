"""Status operator (operators.md §3): observe PCS and CFS, move every enabled component
to its next phase by the decision table in `status_rules`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..store.acting import acting
from ..store.component_query import enabled_page
from .claims import FenceLost, fenced
from .framework import Component, Operator, PassContext, one_line
from .status_rules import decide, build_patch

# Up to this many enabled components, CFS is asked by ID (<= 200 per GET) instead of
# listing all of CFS (D26): a pass then costs O(work), not O(cluster).
CFS_BY_ID_MAX = 1000
CFS_FIELDS = ("desired_config", "configuration_status")  # what the decision table reads (status_rules)
# After a pass that moved components on, the next look comes this soon (bounded by the re-check
# interval); each pass that moves nothing doubles the wait up to the re-check interval.
RECHECK_AFTER_PROGRESS = 0.2
PAGES_IN_FLIGHT = 2


@dataclass
class _Pass:
    """What the pages of one pass share."""

    gate: asyncio.Semaphore
    cfs: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    remaining: int = 0  # components that stay enabled after their page's decisions
    moved: int = 0  # components written (moved on) by this pass
    failed: bool = False  # a page could not read or write: no further page starts
    tasks: List["asyncio.Future[None]"] = field(default_factory=list)


class StatusOperator(Operator):
    name = "status"
    wake_on_enabled = True  # any enabled component written: a session, a report, a hand-off
    wake_statuses = frozenset({"on_hold"})
    # A write leaving components only in these statuses hands them to a power operator (usually the
    # status operator's own write): nothing for a status pass until the hardware moves, which no
    # event reports. Waking for it made each hand-off a pass that held the components' leases while
    # the power operator waited for them (issue 13, realistic latencies).
    handed_off = frozenset({"power_on_pending", "power_off_pending"})
    # A pass reads every enabled component with its PCS and CFS state; during a large boot every
    # node's report wakes it. Passes woken by events are spaced by the last pass's duration (at most
    # half the time in passes, as `_recheck`): back to back they took the CPU the reports and the
    # power operators needed (issue 13, realistic latencies at 10,000 nodes).
    event_spacing = 1.0

    def __init__(self) -> None:
        self._interval: Optional[float] = None  # the current re-check interval (see _recheck)

    def wants(self, event: Mapping[str, Any]) -> bool:
        if event.get("kind") == "components" and set(event.get("statuses") or ()) <= self.handed_off:
            return False
        return super().wants(event)

    async def run_pass(self, ctx: PassContext) -> Optional[float]:
        """Page through the enabled components; each page is claimed (component leases, so no
        other operator or replica acts on it in between), re-read, evaluated and written.

        Two pages are in flight at once (as the generic flow's chunks, framework.in_flight): a
        page waits on the API, PCS and its write most of its time (issue 13)."""
        first = await self._page_ids(ctx, None)
        if not first:
            return None
        pass_ = _Pass(gate=asyncio.Semaphore(PAGES_IN_FLIGHT))
        try:
            pass_.cfs = await self._cfs_records(ctx, first, last_page=self._last(ctx, first))
        except Exception as exc:  # §3.1 step 4
            ctx.log.error("Unable to read or write (BOS, CFS or PCS); ending the status pass: %s", one_line(exc))
            return self._recheck(ctx, moved=False)
        page: List[str] = first
        try:
            while True:
                await pass_.gate.acquire()
                if pass_.failed:
                    pass_.gate.release()
                    break
                pass_.tasks.append(asyncio.ensure_future(self._page(ctx, page, pass_)))
                if self._last(ctx, page):
                    break
                page = await self._page_ids(ctx, page[-1])
                if not page:
                    break
            await asyncio.gather(*pass_.tasks)
        finally:  # an error or a cancellation of the pass: no page goes on without it
            for task in pass_.tasks:
                task.cancel()
            await asyncio.gather(*pass_.tasks, return_exceptions=True)
        if pass_.failed:
            return self._recheck(ctx, moved=False)
        # components held by another operator (session setup writing them, a power operator acting)
        # are released within moments: look again as soon as after progress, without backing off
        moved = pass_.moved > 0 or ctx.contended > 0
        return self._recheck(ctx, moved=moved) if pass_.remaining or ctx.contended else None

    async def _page(self, ctx: PassContext, page: List[str], pass_: "_Pass") -> None:
        """One page: claim, re-read, decide, write; always releases its claim and its slot."""
        try:
            if pass_.failed:
                return
            claim = await ctx.claims.claim(page)
            ctx.busy(len(page), claim)
            try:
                async with acting(ctx.services.redis):  # before the re-read (store/acting.py: session stop)
                    with fenced(ctx.claims, claim):
                        still, written = await self._claimed_page(ctx, claim.ids, pass_.cfs)
                        pass_.remaining += still
                        pass_.moved += written
            except FenceLost as exc:
                ctx.log.warning("Stopped evaluating %d components: %s", len(claim.ids), exc)
            except Exception as exc:  # §3.1 step 4: pages already written stay written
                if not pass_.failed:
                    ctx.log.error("Unable to read or write (BOS, CFS or PCS); ending the status pass: %s",
                                  one_line(exc))
                pass_.failed = True
            finally:
                await ctx.claims.release(claim)
        finally:
            pass_.gate.release()

    @staticmethod
    async def _page_ids(ctx: PassContext, start_after: Optional[str]) -> List[str]:
        """The next page of enabled component IDs. From the store's enabled index when the
        operators share the API's Redis: the records are then read once per pass, after the
        claim, instead of also before it (at 100,000 nodes that read was a third of a pass)."""
        if ctx.services.redis is not None:
            return await enabled_page(ctx.services.redis, start_after, ctx.batch_size)
        return [c["id"] for c in await ctx.bos.component_page(ctx.batch_size, start_after, enabled=True)]

    async def _claimed_page(self, ctx: PassContext, ids: List[str],
                            cfs: Dict[str, Dict[str, Any]]) -> Tuple[int, int]:
        """Re-read the claimed components (the page was read before the claim), then decide."""
        if not ids:
            return 0, 0
        fresh = await ctx.bos.components_by_ids(ids, enabled=True)
        if not fresh:
            return 0, 0
        power = await ctx.services.pcs.power_status([c["id"] for c in fresh])
        return await self._evaluate_chunk(ctx, fresh, power, cfs)

    @staticmethod
    def _last(ctx: PassContext, page: Sequence[str]) -> bool:
        return ctx.batch_size <= 0 or len(page) < ctx.batch_size

    @staticmethod
    async def _cfs_records(ctx: PassContext, first_page: Sequence[str],
                           last_page: bool) -> Dict[str, Dict[str, Any]]:
        """CFS once per pass (D26): by ID when the whole pass is one small page, else everything."""
        if last_page and len(first_page) <= CFS_BY_ID_MAX:
            return await ctx.services.cfs.components(first_page)
        return await ctx.services.cfs.all_components(CFS_FIELDS)

    @staticmethod
    async def _evaluate_chunk(ctx: PassContext, chunk: Sequence[Component], power: Dict[str, str],
                              cfs: Dict[str, Dict[str, Any]]) -> Tuple[int, int]:
        """Evaluate and write one chunk; returns how many components stay enabled, and how many
        were written (moved on)."""
        now = time.time()
        patches: List[Dict[str, Any]] = []
        rules: Counter[str] = Counter()
        still_enabled = 0
        for comp in chunk:
            decision = decide(comp, power.get(comp["id"]), cfs.get(comp["id"]), now, ctx.options)
            still_enabled += not decision.disable
            patch = build_patch(comp, decision)
            if patch is not None:
                patches.append(patch)
                rules[decision.rule] += 1
        if patches:
            ctx.log.info("Updating %d components (%s)", len(patches),
                         ", ".join(f"{rule}: {n}" for rule, n in sorted(rules.items())))
            await ctx.bos.patch_components(patches, ctx.batch_size)
        return still_enabled, len(patches)

    def _recheck(self, ctx: PassContext, moved: bool) -> float:
        """Nodes in flight change outside BOS (power off, CFS configured: nothing tells BOS), so
        the status operator looks again. A session's nodes move together, spread over the
        hardware's jitter: once a look finds some moved, the others follow within moments, so
        the next look comes after RECHECK_AFTER_PROGRESS; looks that find nothing back off,
        doubling up to the re-check interval. Never more than half the time polling (the wait is
        at least the pass duration). At a fixed one-second re-check, the last node of a session
        waited up to a second more to be noticed (issue 13, realistic latencies)."""
        fastest = min(RECHECK_AFTER_PROGRESS, ctx.recheck)
        if moved or self._interval is None:
            self._interval = fastest
        else:
            self._interval = min(ctx.recheck, self._interval * 2)
        return max(self._interval, ctx.elapsed())
