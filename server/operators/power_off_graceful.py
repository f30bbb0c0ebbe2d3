"""power-off-graceful (operators.md §5.2): Soft-Off for components that must power off.

Every chunk component's action update is written before PCS `Soft-Off` (`preset`, deviation), so
the status operator's S3/S6 patch of the components it hands over goes with it (`carries`); a
component PCS then fails gets a second write with its error."""

from __future__ import annotations

from typing import List, Sequence

from .framework import Component, ComponentOperator, Errors, PassContext
from .power import existing_in_hsm, selected_ids, taken_in_hsm, transition
from .waves import gate


class PowerOffGracefulOperator(ComponentOperator):
    name = "power-off-graceful"
    action = "powering_off_gracefully"
    retry_field = "power_off_graceful_attempts"
    wake_statuses = frozenset({"power_off_pending"})
    filters = {"enabled": True, "status": "power_off_pending"}
    acting_fields_only = True  # the re-read under the claim: bos_reads.acting_fields
    carries = True  # the status operator's S3/S6 write is carried by the action update (before `Soft-Off`)

    async def select(self, ctx: PassContext) -> List[str]:
        ids = await selected_ids(ctx, "power_off_pending", self.taking)  # from the indexes when no session is capped
        return ids if ids is not None else await super().select(ctx)

    async def narrow(self, ctx: PassContext, candidates: List[Component]) -> List[Component]:
        return await gate(ctx, await existing_in_hsm(ctx, candidates))  # max_in_flight (operators/waves.py)

    async def taken(self, ctx: PassContext, ids: Sequence[str]) -> List[Component]:
        """HSM asked with the re-read; a capped session's nodes have their carried S3/S6 patch written
        before the wave gate counts slots by power phase (waves.gate)."""
        return await gate(ctx, await taken_in_hsm(self, ctx, ids), lambda capped: self._write_carried(ctx, capped))

    async def act(self, ctx: PassContext, chunk: Sequence[Component]) -> Errors:
        """The action update first (deviation, issue 13: with the status operator's S3/S6 patch it
        carries, one bulk write per node less in a reboot's way to `Soft-Off`), then `Soft-Off`: a
        failed write fails the chunk (§2.4) and nothing is powered off."""
        await self.preset(ctx, chunk, {})
        return await transition(ctx, "Soft-Off", [c["id"] for c in chunk])
