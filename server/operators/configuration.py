"""configuration (operators.md §4.1): push the desired configuration to CFS for
components whose CFS `desired_config` differs. Records only errors.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

from .framework import Component, ComponentOperator, Errors, PassContext, one_line


def desired_configuration(component: Component) -> str:
    return (component.get("desired_state") or {}).get("configuration") or ""


class ConfigurationOperator(ComponentOperator):
    name = "configuration"
    wake_statuses = frozenset({"configuring"})
    filters = {"enabled": True, "status": "configuring"}

    async def narrow(self, ctx: PassContext, candidates: List[Component]) -> List[Component]:
        return await self.differing(ctx, candidates)

    async def recheck_due(self, ctx: PassContext, components: List[Component]) -> List[Component]:
        """CFS again, under the leases: a push another replica made since selection is not repeated."""
        return await self.differing(ctx, components)

    @staticmethod
    async def differing(ctx: PassContext, candidates: List[Component]) -> List[Component]:
        """Components whose CFS `desired_config` differs from BOS's (D27: no CFS record = skipped)."""
        if not candidates:
            return []
        records = await ctx.services.cfs.components(c["id"] for c in candidates)
        missing = [c["id"] for c in candidates if c["id"] not in records]
        if missing:  # D27: skipped, not blocking the others (status parks them, S0)
            ctx.log.warning("%d components have no CFS record and are skipped: %s", len(missing),
                            ",".join(missing[:20]))
        return [c for c in candidates if c["id"] in records
                and desired_configuration(c) != (records[c["id"]].get("desired_config") or "")]

    async def act(self, ctx: PassContext, chunk: Sequence[Component]) -> Errors:
        errors: Errors = {}
        groups: Dict[Tuple[str, str], List[str]] = defaultdict(list)
        for comp in chunk:
            groups[(desired_configuration(comp), comp.get("session") or "")].append(comp["id"])
        cfs = ctx.services.cfs
        for (configuration, session), ids in groups.items():
            patch = {"enabled": True, "desired_config": configuration, "tags": {"bos_session": session}}
            for batch in cfs.patch_batches(ids):
                try:
                    await cfs.patch_batch(batch, patch)
                except Exception as exc:  # only this request's components get the error
                    text = one_line(exc)
                    ctx.log.error("CFS update failed for %d components: %s", len(batch), text)
                    errors.update({i: text for i in batch})
        return errors
