"""Marking a session complete (operators.md §7.1), shared by session-setup and session-completion."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from bos_shared.times import now_str

from .framework import PassContext, one_line


async def mark_complete(ctx: PassContext, session: Mapping[str, Any], error: Optional[str] = None) -> None:
    """PATCH status complete (+ error), then POST .../status to save the extended status."""
    name, tenant = session["name"], session.get("tenant") or None
    status: Dict[str, Any] = {"status": "complete", "end_time": now_str()}
    if error is not None:
        status["error"] = one_line(error)
    await ctx.bos.patch_session(name, tenant, {"status": status})
    await ctx.bos.save_session_status(name, tenant)
    if error is None:
        ctx.log.info("Session %s is complete", describe(session))
    else:
        ctx.log.warning("Session %s failed: %s", describe(session), status["error"])


def describe(session: Mapping[str, Any]) -> str:
    tenant = session.get("tenant")
    return f"{session['name']} (tenant {tenant})" if tenant else session["name"]
