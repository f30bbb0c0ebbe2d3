"""Stopping a v1 session's work on the engine (v1.md §2.3 V4, L12).

`DELETE /v1/session/{id}` calls `cancel`: the agent stops driving the session
(it is no longer active), then the session-control stop with cleanup
(server/session_stop.py, shared with `POST /v2/sessions/{name}/stop`) disables
every component still enabled under the session, waits for operator actions
under way, disables again, and clears the CFS desired configuration the session
set on nodes that had not finished configuring.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ...clients.cfs import CfsClient
from ...session_stop import stop_components
from ...store import Store
from ...store.v1 import V1Store


async def cancel(store: Store, cfs: Optional[CfsClient], sid: str) -> Dict[str, Any]:
    """Stop session `sid`; returns the cleanup report (`disabled`, `configuration_cleared`, ...)."""
    await V1Store(store.redis).deactivate(sid)
    return await stop_components(store, cfs, sid)
