"""session-cleanup (operators.md §7.4): delete complete sessions older than the TTL."""

from __future__ import annotations

from typing import Optional

from bos_shared.ages import age_is_zero

from .framework import Operator, PassContext


class SessionCleanupOperator(Operator):
    name = "session-cleanup"
    wake_sessions = frozenset({"complete"})

    async def run_pass(self, ctx: PassContext) -> Optional[float]:
        ttl = str(ctx.options["cleanup_completed_session_ttl"])
        if age_is_zero(ttl):
            return None
        await ctx.bos.delete_sessions("complete", ttl)  # all tenants (D10), age from start_time
        return None
