"""session-completion (operators.md §7.2): a running session is complete when none of
its components is enabled and none is staged for it (tenant rules and D25 applied).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from .framework import Component, Operator, PassContext, one_line
from .sessions import describe, mark_complete


class SessionCompletionOperator(Operator):
    name = "session-completion"
    wake_sessions = frozenset({"running"})
    # a component leaving a session: disabled (stable/failed) or taken over (on_hold)
    wake_statuses = frozenset({"stable", "failed", "on_hold"})
    # A pass is a few index look-ups, and the write that disables a session's last nodes usually
    # comes within the runner's DEBOUNCE of the pass woken by the write before it (the status
    # operator looks every 0.1-0.2 s at a session's last nodes): at DEBOUNCE the session was marked
    # complete 0.05-0.15 s after its last node settled (issue 13, realistic latencies). At this,
    # a burst of writes still costs at most ~30 passes a second.
    debounce = 0.03

    async def run_pass(self, ctx: PassContext) -> Optional[float]:
        """Each running session, by tenant and name: nothing else of it is read. From the store's
        status index, that is no record read; its head (`session_heads`) was ~4 ms of operator CPU
        per pass at 100,000 nodes (the record's ~1.5 MB `components` string read and skipped), at
        ~150 passes per session, woken by every write that disables a component (issue 13)."""
        running = await ctx.bos.session_names(status="running")
        if not running:
            return None
        tenants_by_name = self._tenants_by_name(await ctx.bos.session_names())
        for tenant, name in running:
            session = {"name": name, "tenant": tenant}
            try:
                if await self.is_complete(ctx, session, tenants_by_name.get(name, set())):
                    await mark_complete(ctx, session)
            except Exception as exc:  # one session's trouble never blocks the others
                ctx.log.error("Unable to check session %s: %s", describe(session), one_line(exc))
        return None

    @staticmethod
    def _tenants_by_name(names: Sequence[Tuple[Optional[str], str]]) -> Dict[str, Set[str]]:
        """The tenants of the sessions of each name (tenant sessions only), from (tenant, name)."""
        out: Dict[str, Set[str]] = {}
        for tenant, name in names:
            if tenant:
                out.setdefault(name, set()).add(tenant)
        return out

    async def is_complete(self, ctx: PassContext, session: Mapping[str, Any], tenants_sharing_name: Set[str]) -> bool:
        name, tenant = session["name"], session.get("tenant") or None
        if not tenant and not tenants_sharing_name:
            # the common case: one index intersection per filter, whatever the cluster size
            return (not await ctx.bos.any_matches(session=name, enabled=True)
                    and not await ctx.bos.any_matches(staged_session=name))
        members = await self._members(ctx, name)
        if tenant:  # tenant session: complete iff no member is owned by the tenant
            owned = await ctx.services.tapms.tenant_xnames(tenant)
            return not any(c["id"] in owned for c in members)
        foreign: Set[str] = set()  # D25: other tenants' same-named sessions' nodes do not count
        for other in tenants_sharing_name:
            foreign |= await ctx.services.tapms.tenant_xnames(other)
        return all(c["id"] in foreign for c in members)

    @staticmethod
    async def _members(ctx: PassContext, name: str) -> List[Component]:
        """C = enabled components of the session ∪ components staged for it."""
        enabled = await ctx.bos.list_components(ctx.batch_size, session=name, enabled=True)
        staged = await ctx.bos.list_components(ctx.batch_size, staged_session=name)
        by_id = {c["id"]: c for c in enabled}
        by_id.update({c["id"]: c for c in staged})
        return list(by_id.values())
