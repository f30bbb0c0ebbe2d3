"""Stopping a v1 session's work on the engine (v1.md §2.3 V4, L12).

The one function `cancel` is what `DELETE /v1/session/{id}` calls: the agent
stops driving the session (it is no longer active) and every component the
engine still drives for it is disabled, so no operator acts on those nodes
again. Kept in its own module so the v2 session-control stop can replace the
body without touching the handlers.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ...store import Store, keys
from ...store.v1 import V1Store

Record = Dict[str, Any]


async def cancel(store: Store, sid: str) -> int:
    """Disable the still-enabled components of session `sid`; returns how many were stopped."""
    await V1Store(store.redis).deactivate(sid)
    ids = await store.components.ids_in(keys.by_session(sid))
    stopped = 0

    def compute(_cid: str, old: Optional[Record]) -> Optional[Record]:
        if old is None or old.get("session") != sid or old.get("enabled") is not True:
            return None
        return {**old, "enabled": False}

    for start in range(0, len(ids), 1000):
        stopped += len(await store.components.update(ids[start:start + 1000], compute))
    return stopped
