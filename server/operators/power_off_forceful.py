"""power-off-forceful (operators.md §5.3): Force-Off once `max_power_off_wait_time` has
passed since the last (graceful or forceful) power-off call, and again every period.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence, Tuple

from bos_shared.times import epoch

from .framework import Component, ComponentOperator, Errors, PassContext, chunks
from .power import existing_in_hsm, transition
from .status_rules import seconds_until

CALLED = "power_off_gracefully_called,power_off_forcefully_called"
CALLED_STATUSES = tuple(CALLED.split(","))


class PowerOffForcefulOperator(ComponentOperator):
    name = "power-off-forceful"
    action = "powering_off_forcefully"
    retry_field = "power_off_forceful_attempts"
    wake_statuses = frozenset(CALLED_STATUSES)

    filters = {"enabled": True, "status": CALLED}
    acting_fields_only = True  # the re-read under the claim: bos_reads.acting_fields
    # A candidate is due `max_power_off_wait_time` (300 s by default) after its call, so a pass a
    # second after the write that made it one loses nothing (with a wait under 1 s, Force-Off may
    # come that much later than the wait); but every pass lists every candidate,
    # and at the runner's DEBOUNCE each of power-off-graceful's action updates during a reboot
    # woke one: 45 passes over up to 100,000 candidates each in a 100,000-node reboot, 5.9 s of
    # passes against 0.19 s at 10,000 (issue 13: cost growing faster than linearly).
    debounce = 1.0

    def __init__(self) -> None:
        super().__init__()
        self._next_due: Optional[float] = None
        # Candidates read by an earlier pass and not yet due: ID -> the earliest time (epoch) at
        # which they can be (their last action's stamp + the wait). The server stamps
        # `last_action.last_updated` at every write of it, so a later stamp only moves that time
        # on: until then the candidate is not read again (`_select_remembered`). Process memory;
        # forgotten at each full look (every `polling_frequency`) and when the wait changes.
        self._not_before: Dict[str, float] = {}
        self._remembered_wait: Optional[float] = None
        self._full_look = 0.0

    async def select(self, ctx: PassContext) -> List[str]:
        self._next_due = None  # the pages' narrowing finds the earliest one not yet due
        ids = await self._candidates(ctx)
        if ids is None:  # no store reads: every candidate is read, nothing remembered
            selected = await super().select(ctx)
            self._not_before.clear()
            return selected
        return await self._select_remembered(ctx, ids)

    async def _candidates(self, ctx: PassContext) -> Optional[List[str]]:
        """Every candidate's ID from the store's indexes (None without store reads), and the
        remembered times forgotten at a full look or a change of the wait."""
        ids = await ctx.bos.enabled_ids_in(CALLED_STATUSES)
        if ids is None:
            return None
        period = float(ctx.options.get("polling_frequency") or 0)
        wait = self._wait(ctx)
        if wait != self._remembered_wait or time.monotonic() - self._full_look >= period:
            self._not_before.clear()
            self._remembered_wait = wait
            self._full_look = time.monotonic()
        return ids

    async def _select_remembered(self, ctx: PassContext, ids: List[str]) -> List[str]:
        """The selection over every candidate (§2.3), reading only those not known to be
        waiting: at 100,000 nodes a reboot's Soft-Off chunks each woke a pass that read and
        decoded every candidate again, a sixth of the operators' CPU (issue 13). A candidate
        seen for the first time has its last action's stamp read alone (`_not_yet_due`): only
        those it leaves due are read in full and narrowed."""
        now = ctx.now
        known, to_read = self._split(ids, now)
        self._not_before = known  # candidates that left the statuses are forgotten
        to_read = await self._not_yet_due(ctx, to_read, now)
        selected: List[str] = []
        for page in chunks(to_read, ctx.batch_size):
            records = await ctx.bos.components_by_ids(page, **self.filters)
            selected.extend(c["id"] for c in await self.narrow(ctx, records))
        for not_before in known.values():
            left = not_before - now
            if self._next_due is None or left < self._next_due:
                self._next_due = left
        return selected

    async def _not_yet_due(self, ctx: PassContext, ids: List[str], now: float) -> List[str]:
        """Remember the candidates whose stamp says they are not due yet (as `narrow` would from
        the full record: the same stamp, the same wait); the others (due, no stamp, or a stamp
        this read cannot tell) are returned, to be read in full."""
        stamps = await ctx.bos.action_stamps(ids) if ids else None
        if stamps is None:
            return ids
        wait = self._wait(ctx)
        due: List[str] = []
        for cid in ids:
            if cid not in stamps:
                continue  # deleted since the index was read
            stamp = epoch(stamps[cid])
            if stamp is None or now > stamp + wait:  # seconds_until(...) is None: due
                due.append(cid)
                continue
            self._not_before[cid] = stamp + wait
            left = stamp + wait - now
            if self._next_due is None or left < self._next_due:
                self._next_due = left
        return due

    def _split(self, ids: Sequence[str], now: float) -> Tuple[Dict[str, float], List[str]]:
        known: Dict[str, float] = {}
        to_read: List[str] = []
        for cid in ids:
            not_before = self._not_before.get(cid)
            if not_before is not None and now < not_before:
                known[cid] = not_before
            else:
                to_read.append(cid)
        return known, to_read

    async def narrow(self, ctx: PassContext, candidates: List[Component]) -> List[Component]:
        due: List[Component] = []
        wait = self._wait(ctx)
        for comp in candidates:
            left = seconds_until(comp, wait, ctx.now)
            if left is None:
                due.append(comp)
                continue
            if self._next_due is None or left < self._next_due:
                self._next_due = left  # wake exactly when the next one becomes due
            stamp = epoch((comp.get("last_action") or {}).get("last_updated"))
            if stamp is not None:
                self._not_before[comp["id"]] = stamp + wait
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
