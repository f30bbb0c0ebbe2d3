"""Counting a session's components in Redis from the indexes (the extended status, api.md §2.9)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List

from . import keys

if TYPE_CHECKING:
    from .components import ComponentStore

PHASE_NAMES = ("powering_on", "powering_off", "configuring")


async def session_counts(store: "ComponentStore", session: str) -> Dict[str, Any]:
    """`member_counts` of a session's members, counted in Redis from the indexes.

    O(members) inside Redis and no record decoding except for members with an
    error, so a 100,000-node session's extended status stays cheap.
    """
    members = keys.by_session(session)
    enabled = [members, keys.COMPONENT_ENABLED]
    on_hold = keys.by_status("on_hold")
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.zcard(members)
        pipe.zintercard(2, [members, keys.by_status("stable")])
        pipe.zintercard(2, [members, keys.by_status("failed")])
        for phase in PHASE_NAMES:
            pipe.zintercard(3, enabled + [keys.by_phase(phase)])
            pipe.zintercard(4, enabled + [keys.by_phase(phase), on_hold])
        pipe.zinter([members, keys.COMPONENT_ERRORED])
        results = await pipe.execute()
    total, stable, failed = results[:3]
    phase_counts = results[3:3 + 2 * len(PHASE_NAMES)]
    phases = {p: phase_counts[2 * n] - phase_counts[2 * n + 1] for n, p in enumerate(PHASE_NAMES)}
    errored = [m.decode() for m in results[-1]]
    errors: Dict[str, List[str]] = {}
    for record in (await store.get_many(errored)).values():
        if record.get("error") and record.get("session") == session:
            errors.setdefault(record["error"], []).append(record["id"])
    return {"members": total, "successful": stable, "failed": failed, "phases": phases, "errors": errors}
