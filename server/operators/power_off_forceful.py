"""power-off-forceful (operators.md §5.3): Force-Off once `max_power_off_wait_time` has
passed since the last (graceful or forceful) power-off call, and again every period.
"""

from __future__ import annotations

import time
from typing import List, Optional, Sequence

from .framework import Component, ComponentOperator, Errors, PassContext
from .power import existing_in_hsm, transition
from .status_rules import seconds_until

CALLED = "power_off_gracefully_called,power_off_forcefully_called"


class PowerOffForcefulOperator(ComponentOperator):
    name = "power-off-forceful"
    action = "powering_off_forcefully"
    retry_field = "power_off_forceful_attempts"
    wake_statuses = frozenset({"power_off_gracefully_called", "power_off_forcefully_called"})

    filters = {"enabled": True, "status": CALLED}

    def __init__(self) -> None:
        self._next_due: Optional[float] = None

    async def select(self, ctx: PassContext) -> List[str]:
        self._next_due = None  # the pages' narrowing finds the earliest one not yet due
        return await super().select(ctx)

    async def narrow(self, ctx: PassContext, candidates: List[Component]) -> List[Component]:
        due: List[Component] = []
        for comp in candidates:
            left = seconds_until(comp, self._wait(ctx), ctx.now)
            if left is None:
                due.append(comp)
            elif self._next_due is None or left < self._next_due:
                self._next_due = left  # wake exactly when the next one becomes due
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
