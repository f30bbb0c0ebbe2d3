"""discovery (operators.md §4.3): create BOS records for HSM nodes BOS does not know.

Create-only (D32): a component created concurrently is never overwritten, and
discovery never deletes anything.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Set

from bos_shared.components import empty_actual_state, empty_desired_state

from .framework import Operator, PassContext, chunks


def new_record(xname: str) -> Dict[str, Any]:
    return {"id": xname, "actual_state": empty_actual_state(), "desired_state": empty_desired_state(),
            "staged_state": {}, "last_action": {"action": "newly_discovered", "failed": False},
            "enabled": False, "error": "", "session": ""}


class DiscoveryOperator(Operator):
    name = "discovery"
    frequency_option = "discovery_frequency"

    async def run_pass(self, ctx: PassContext) -> Optional[float]:
        hsm_nodes = {c["ID"] for c in await ctx.services.hsm.all_components() if c.get("Type") == "Node"}
        known: Set[str] = set(await ctx.bos.component_ids(ctx.batch_size))
        missing = sorted(hsm_nodes - known)
        if not missing:
            return None
        ctx.log.info("Discovered %d nodes unknown to BOS", len(missing))
        size = ctx.batch_size if ctx.batch_size > 0 else 5000
        for chunk in chunks(missing, size):
            created = await ctx.bos.create_components([new_record(x) for x in chunk])
            ctx.log.info("Created %d components", len(created))
        return None
