"""power-off-forceful (operators.md §5.3): Force-Off once `max_power_off_wait_time` has
passed since the last (graceful or forceful) power-off call, and again every period.
"""

from __future__ import annotations

import time
from typing import List, Optional, Sequence

from ..store.component_query import POWER_OFF_CALLED
from .framework import Component, ComponentOperator, Errors, PassContext, chunks
from .power import existing_in_hsm, transition
from .status_rules import seconds_until

CALLED_STATUSES = POWER_OFF_CALLED  # the store's score index is of these (store/component_query.py)
CALLED = ",".join(CALLED_STATUSES)


class PowerOffForcefulOperator(ComponentOperator):
    name = "power-off-forceful"
    action = "powering_off_forcefully"
    retry_field = "power_off_forceful_attempts"
    wake_statuses = frozenset(CALLED_STATUSES)

    filters = {"enabled": True, "status": CALLED}
    acting_fields_only = True  # the re-read under the claim: bos_reads.acting_fields
    # A candidate is due `max_power_off_wait_time` (300 s by default) after its call, so a pass a
    # second after the write that made it one loses nothing (with a wait under 1 s, Force-Off may
    # come that much later than the wait); each of power-off-graceful's action updates during a
    # reboot wakes one (the runner's DEBOUNCE would run a pass per update).
    debounce = 1.0

    def __init__(self) -> None:
        super().__init__()
        self._next_due: Optional[float] = None
        self._looked_wait: Optional[float] = None  # the wait at the last full look
        self._full_look = 0.0  # time.monotonic() of the last full look

    async def select(self, ctx: PassContext) -> List[str]:
        """The due candidates (§2.3) from the score index of enabled components waiting on a
        power-off call, scored by their last action's stamp (store/component_query.POWER_OFF_CALLED):
        a pass reads the due ones and the earliest stamp after them, not every candidate. Listing
        every candidate at every pass made a reboot's cost grow faster than its size: 13 passes over
        up to 100,000 IDs at 100,000 nodes, against 2 over 10,000 (issue 13). A full look (the first
        pass, every `polling_frequency`, a change of the wait) adds candidates the index lacks: records
        written by a version without it, during a rolling update or before it (docs/deploy.md)."""
        self._next_due = None
        wait = self._wait(ctx)
        found = await ctx.bos.power_off_due(ctx.now - wait)
        if found is None:  # no store reads: every candidate is read
            return await super().select(ctx)
        due, after = found
        if after is not None:
            self._wakes_in(after + wait - ctx.now)
        if self._full_look_due(ctx, wait):
            due = sorted(set(due).union(await self._unindexed_due(ctx, wait)))
        selected: List[str] = []
        for page in chunks(due, ctx.batch_size):
            records = await ctx.bos.components_by_ids(page, **self.filters)
            selected.extend(c["id"] for c in await self.narrow(ctx, records))
        return selected

    def _full_look_due(self, ctx: PassContext, wait: float) -> bool:
        period = float(ctx.options.get("polling_frequency") or 0)
        if wait == self._looked_wait and time.monotonic() - self._full_look < period:
            return False
        self._looked_wait, self._full_look = wait, time.monotonic()
        return True

    async def _unindexed_due(self, ctx: PassContext, wait: float) -> List[str]:
        """The due candidates the score index lacks, each one's stamp read alone (not the whole
        record); those not due yet only set when the pass wakes again."""
        ids = await ctx.bos.missing_from_power_off_index()
        if not ids:
            return []
        ctx.log.info("%d power-off candidates are not in the score index (written by an older version)", len(ids))
        stamps = await ctx.bos.action_stamps(ids) or {}
        due: List[str] = []
        for cid, stamp in stamps.items():
            left = seconds_until({"last_action": {"last_updated": stamp}}, wait, ctx.now)
            if left is None:
                due.append(cid)
            else:
                self._wakes_in(left)
        return due

    def _wakes_in(self, left: float) -> None:
        if self._next_due is None or left < self._next_due:
            self._next_due = left

    async def narrow(self, ctx: PassContext, candidates: List[Component]) -> List[Component]:
        due: List[Component] = []
        wait = self._wait(ctx)
        for comp in candidates:
            left = seconds_until(comp, wait, ctx.now)
            if left is None:
                due.append(comp)
                continue
            self._wakes_in(left)  # wake exactly when the next one becomes due
        return await existing_in_hsm(ctx, due)

    def still_due(self, ctx: PassContext, component: Component) -> bool:
        return seconds_until(component, self._wait(ctx), time.time()) is None

    @staticmethod
    def _wait(ctx: PassContext) -> float:
        return float(ctx.options["max_power_off_wait_time"])

    def next_due(self, ctx: PassContext) -> Optional[float]:
        if self._next_due is None:
            return None
        return max(self._next_due - ctx.elapsed(), 0.0) + 1.0  # +1 s: timestamps are whole seconds

    async def act(self, ctx: PassContext, chunk: Sequence[Component]) -> Errors:
        return await transition(ctx, "Force-Off", [c["id"] for c in chunk])
