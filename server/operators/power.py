"""What the three power operators share (operators.md §5.1): HSM existence as a
selection step and fire-and-forget PCS transitions with per-request error attribution.
"""

from __future__ import annotations

from typing import List, Sequence

from .framework import Component, Errors, PassContext, one_line


async def existing_in_hsm(ctx: PassContext, components: Sequence[Component]) -> List[Component]:
    """Drop candidates HSM does not know (no call when there are none)."""
    if not components:
        return []
    known = await ctx.services.hsm.existing(c["id"] for c in components)
    missing = [c["id"] for c in components if c["id"] not in known]
    if missing:
        ctx.log.warning("%d components are not in HSM and are skipped: %s", len(missing), ",".join(missing[:20]))
    return [c for c in components if c["id"] in known]


async def transition(ctx: PassContext, operation: str, ids: Sequence[str], prefix: str = "") -> Errors:
    """One PCS transition request per request-sized batch; a failed request's IDs get its error."""
    errors: Errors = {}
    pcs = ctx.services.pcs
    for batch in pcs.batches(list(ids)):
        try:
            await pcs.transition(operation, batch)
        except Exception as exc:  # recorded on each component of the failed request
            text = one_line(f"{prefix}{exc}")
            ctx.log.error("PCS %s failed for %d components: %s", operation, len(batch), text)
            errors.update({xname: text for xname in batch})
    if ids:
        ctx.log.info("PCS %s requested for %d components", operation, len(ids) - len(errors))
    return errors
