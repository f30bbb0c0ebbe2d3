"""Status operator (operators.md §3): observe PCS and CFS, move every enabled component
to its next phase by the decision table in `status_rules`.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence

from .framework import Component, Operator, PassContext, chunks, one_line
from .status_rules import decide, build_patch

# Up to this many enabled components, CFS is asked by ID (<= 200 per GET) instead of
# listing all of CFS (D26): a pass then costs O(work), not O(cluster).
CFS_BY_ID_MAX = 1000


class StatusOperator(Operator):
    name = "status"
    wake_on_enabled = True  # any enabled component written: a session, a report, a hand-off
    wake_statuses = frozenset({"on_hold"})

    async def run_pass(self, ctx: PassContext) -> Optional[float]:
        components = await ctx.bos.list_components(ctx.batch_size, enabled=True)
        if not components:
            return None
        try:
            cfs = await self._cfs_records(ctx, components)
        except Exception as exc:  # §3.1 step 4: no component changes this pass
            ctx.log.error("Unable to read CFS components; no status changes this pass: %s", one_line(exc))
            return self._recheck(ctx)
        remaining = 0
        for chunk in chunks(components, ctx.batch_size):
            try:
                power = await ctx.services.pcs.power_status([c["id"] for c in chunk])
            except Exception as exc:  # §3.1 step 4: chunks already written stay written
                ctx.log.error("Unable to read PCS power status; ending the pass: %s", one_line(exc))
                return self._recheck(ctx)
            remaining += await self._evaluate_chunk(ctx, chunk, power, cfs)
        return self._recheck(ctx) if remaining else None

    @staticmethod
    async def _cfs_records(ctx: PassContext, components: Sequence[Component]) -> Dict[str, Dict[str, Any]]:
        if len(components) <= CFS_BY_ID_MAX:
            return await ctx.services.cfs.components(c["id"] for c in components)
        return await ctx.services.cfs.all_components()

    @staticmethod
    async def _evaluate_chunk(ctx: PassContext, chunk: Sequence[Component], power: Dict[str, str],
                              cfs: Dict[str, Dict[str, Any]]) -> int:
        """Evaluate and write one chunk; returns how many components stay enabled."""
        now = time.time()
        patches: List[dict] = []
        rules: Counter = Counter()
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
        return still_enabled

    @staticmethod
    def _recheck(ctx: PassContext) -> float:
        """Nodes in flight change outside BOS (power, boot, CFS): look again soon, but never
        spend more than half the time polling (the wait is at least the pass duration)."""
        return max(ctx.recheck, ctx.elapsed())
