"""What the three power operators share (operators.md §5.1): HSM existence as a
selection step and fire-and-forget PCS transitions with per-request error attribution;
and what the two that start a node's power cycle (power-off-graceful, power-on) share:
their selection from the indexes, the wave gate, the status operator's carried patches.
"""

from __future__ import annotations

from typing import AbstractSet, List, Optional, Sequence, Set

from .framework import Component, ComponentOperator, Errors, PassContext, chunks, concurrently, one_line
from .waves import any_capped, gate


async def known_to_hsm(ctx: PassContext, ids: Sequence[str]) -> Set[str]:
    """The IDs HSM knows, the others logged as skipped (no call when there are none)."""
    if not ids:
        return set()
    known = await ctx.services.hsm.existing(ids)
    missing = [i for i in ids if i not in known]
    if missing:
        ctx.log.warning("%d components are not in HSM and are skipped: %s", len(missing), ",".join(missing[:20]))
    return known


async def existing_in_hsm(ctx: PassContext, components: Sequence[Component]) -> List[Component]:
    """Drop candidates HSM does not know."""
    known = await known_to_hsm(ctx, [c["id"] for c in components])
    return [c for c in components if c["id"] in known]


async def taken_in_hsm(operator: ComponentOperator, ctx: PassContext, ids: Sequence[str]) -> List[Component]:
    """`ComponentOperator.taken` with HSM existence asked about the handed-over IDs while their
    records are re-read, not after: HSM reads only the IDs, and the two requests one after the other
    were two round trips in every batch's way from its status write to `On` or `Soft-Off`."""
    fresh, known = await concurrently(operator.refresh(ctx, ids), known_to_hsm(ctx, ids))
    return [c for c in fresh if c["id"] in known]


async def selected_ids(ctx: PassContext, status: str, taking: AbstractSet[str] = frozenset()) -> Optional[List[str]]:
    """The selection of power-on or power-off-graceful (enabled, in `status`, known to HSM) from the
    store's indexes, without reading a record, when that is the whole selection: with store reads
    and no pending or running session capped by the wave gate (which reads each candidate's session, §5.7).
    None otherwise (the caller selects from the records). Every chunk's records are read under its
    claim anyway (§2.3); a reboot of 100,000 nodes decoded each one twice per power action.

    `taking`: the IDs the status operator of this process is handing to the caller right now
    (`ComponentOperator.taking`), left out before HSM is asked: the pass drops them anyway, and
    the passes their hand-over's write woke asked HSM about each of them, twice per node in a
    reboot (issue 13)."""
    ids = await ctx.bos.enabled_ids_in([status])
    if ids is None or not ids:
        return ids  # no store reads (None), or nothing to select
    if taking:
        ids = [i for i in ids if i not in taking]
        if not ids:
            return ids  # all handed over: nor is the wave gate's session listing read
    if await any_capped(ctx):
        return None
    selected: List[str] = []
    for page in chunks(ids, ctx.batch_size):  # one HSM query per page, as over pages of records
        known = await known_to_hsm(ctx, page)
        selected.extend(i for i in page if i in known)
    return selected


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


class StartingOperator(ComponentOperator):
    """power-off-graceful or power-on: selects the enabled components in its status (`filters`),
    known to HSM and admitted by the wave gate (§5.7); writes its action update before its PCS call
    (`ComponentOperator.preset`), so it carries the status operator's patch of what it is handed."""

    acting_fields_only = True  # the re-read under the claim: bos_reads.acting_fields
    carries = True  # the status operator's S2b / S3 / S6 write goes with the action update, before the call

    async def select(self, ctx: PassContext) -> List[str]:
        ids = await selected_ids(ctx, self.filters["status"], self.taking)  # from the indexes when no session is capped
        return ids if ids is not None else await super().select(ctx)

    async def narrow(self, ctx: PassContext, candidates: List[Component]) -> List[Component]:
        return await gate(ctx, await existing_in_hsm(ctx, candidates))  # max_in_flight (operators/waves.py)

    async def taken(self, ctx: PassContext, ids: Sequence[str]) -> List[Component]:
        """HSM asked with the re-read; a capped session's nodes have their carried patch written
        before the wave gate counts slots by power phase (waves.gate)."""
        return await gate(ctx, await taken_in_hsm(self, ctx, ids), lambda capped: self._write_carried(ctx, capped))
