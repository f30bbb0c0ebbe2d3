"""power-off-graceful (operators.md §5.2): Soft-Off for components that must power off.

Every chunk component's action update is written before PCS `Soft-Off` (`preset`, deviation), so
the status operator's S3/S6 patch of the components it hands over goes with it (`carries`); a
component PCS then fails gets a second write with its error."""

from __future__ import annotations

from typing import Sequence

from .framework import Component, Errors, PassContext
from .power import StartingOperator, transition


class PowerOffGracefulOperator(StartingOperator):
    name = "power-off-graceful"
    action = "powering_off_gracefully"
    retry_field = "power_off_graceful_attempts"
    wake_statuses = frozenset({"power_off_pending"})
    filters = {"enabled": True, "status": "power_off_pending"}

    async def act(self, ctx: PassContext, chunk: Sequence[Component]) -> Errors:
        """The action update first (deviation, issue 13: with the status operator's S3/S6 patch it
        carries, one bulk write per node less in a reboot's way to `Soft-Off`), then `Soft-Off`: a
        failed write fails the chunk (§2.4) and nothing is powered off."""
        await self.preset(ctx, chunk, {})
        return await transition(ctx, "Soft-Off", [c["id"] for c in chunk])
