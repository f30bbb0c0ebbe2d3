"""Operator actions in progress, visible to every process (the fence a session stop waits on).

An operator registers an action *before* it re-reads the components it is about
to act on, and removes it when the external calls are done. A stop disables the
session's components first and then waits for the actions registered at that
moment. Either an action was registered before the stop looked (the stop waits
for it), or it re-reads after the disable (and finds nothing enabled to act on):
no PCS, BSS or CFS call for a stopped session's nodes starts after the stop
returns, whatever the number of operator replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any, AsyncIterator, List, Optional

from . import keys

ACTION_TTL = 600.0  # an action of a crashed process stops counting after this long


@contextlib.asynccontextmanager
async def acting(redis: Optional[Any]) -> AsyncIterator[None]:
    """Register an action in progress for the duration of the block (no-op without Redis)."""
    if redis is None:
        yield
        return
    token = uuid.uuid4().hex
    await redis.zadd(keys.ACTING, {token: time.time() + ACTION_TTL})
    try:
        yield
    finally:
        await redis.zrem(keys.ACTING, token)


async def in_progress(redis: Any) -> List[bytes]:
    """Tokens of the actions in progress now (expired ones are dropped on the way)."""
    now = time.time()
    await redis.zremrangebyscore(keys.ACTING, "-inf", f"({now}")
    return list(await redis.zrangebyscore(keys.ACTING, now, "+inf"))


async def wait_for_actions(redis: Any, timeout: float, poll: float = 0.05) -> int:
    """Wait until every action in progress now has ended; returns how many still run at the timeout."""
    pending = await in_progress(redis)
    deadline = time.monotonic() + timeout
    while pending:
        scores = await redis.zmscore(keys.ACTING, pending)
        pending = [token for token, score in zip(pending, scores) if score is not None and score > time.time()]
        if not pending or time.monotonic() >= deadline:
            break
        await asyncio.sleep(poll)  # polling another process's progress, not synchronising a test
    return len(pending)
