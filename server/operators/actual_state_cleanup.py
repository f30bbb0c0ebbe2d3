"""actual-state-cleanup (operators.md §4.2): forget actual state older than
`component_actual_state_ttl`, so a node that stopped reporting is not trusted.
"""

from __future__ import annotations

import time
from typing import List, Optional, Sequence

from bos_shared.ages import parse_duration
from bos_shared.components import empty_actual_state, has_artifacts
from bos_shared.times import epoch

from .framework import Component, ComponentOperator, Errors, PassContext


def expired(component: Component, ttl: int, now: float) -> bool:
    """Non-empty actual boot artifacts whose `last_updated` is absent or older than `ttl`."""
    actual = component.get("actual_state") or {}
    if not has_artifacts(actual.get("boot_artifacts")):
        return False
    stamp = epoch(actual.get("last_updated"))
    return stamp is None or now - stamp > ttl


class ActualStateCleanupOperator(ComponentOperator):
    name = "actual-state-cleanup"
    action = "actual_state_cleanup"

    async def select(self, ctx: PassContext) -> List[str]:
        """IDs of the components (enabled or not) whose actual state is older than the TTL."""
        ttl = self._ttl(ctx)
        if ttl is None:
            ctx.log.error("Unusable component_actual_state_ttl %r", ctx.options["component_actual_state_ttl"])
            return []
        selected: List[str] = []
        # Our API answers this from an index; a server that ignores the parameter returns every
        # component, and the expiry check below still selects exactly the right ones.
        stale = ctx.options["component_actual_state_ttl"]
        async for page in ctx.bos.iter_component_pages(ctx.batch_size, actual_state_older_than=stale):
            selected.extend(c["id"] for c in page if expired(c, ttl, ctx.now))
        return selected

    def still_due(self, ctx: PassContext, component: Component) -> bool:
        ttl = self._ttl(ctx)
        return ttl is not None and expired(component, ttl, time.time())  # not reported in between

    @staticmethod
    def _ttl(ctx: PassContext) -> Optional[int]:
        return parse_duration(ctx.options["component_actual_state_ttl"])

    async def act(self, ctx: PassContext, chunk: Sequence[Component]) -> Errors:
        await ctx.bos.patch_components([{"id": c["id"], "actual_state": empty_actual_state()} for c in chunk],
                                       ctx.batch_size)
        ctx.log.info("Cleared the stale actual state of %d components", len(chunk))
        return {}
