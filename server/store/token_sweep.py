"""Token-record retention (D4): delete records that are old *and* unreferenced.

Runs hourly in one API process at a time (a Redis lock); the reference scan is
O(components) but off every request path.
"""

from __future__ import annotations

import logging
import time
from typing import Set

from redis.asyncio import Redis

from . import keys
from .codec import loads

LOG = logging.getLogger(__name__)


async def referenced_tokens(redis: Redis, chunk: int = 2000) -> Set[str]:
    found: Set[str] = set()
    lower = b"-"
    while True:
        ids = await redis.zrange(keys.COMPONENT_IDS, lower, b"+", bylex=True, offset=0, num=chunk)
        if not ids:
            return found
        for raw in await redis.mget([keys.component(i.decode()) for i in ids]):
            if raw is None:
                continue
            record = loads(raw)
            for state in ("desired_state", "actual_state"):
                token = (record.get(state) or {}).get("bss_token")
                if token:
                    found.add(token)
        if len(ids) < chunk:
            return found
        lower = b"(" + ids[-1]


async def sweep(redis: Redis, retention_seconds: float) -> int:
    """Delete expired unreferenced token records; returns how many were deleted."""
    cutoff = time.time() - retention_seconds
    old = [t.decode() for t in await redis.zrangebyscore(keys.TOKENS_BY_TIME, "-inf", cutoff)]
    if not old:
        return 0
    referenced = await referenced_tokens(redis)
    doomed = [t for t in old if t not in referenced]
    for start in range(0, len(doomed), 1000):
        part = doomed[start:start + 1000]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(*[keys.token(t) for t in part])
            pipe.zrem(keys.TOKENS_BY_TIME, *part)
            await pipe.execute()
    LOG.info("Token sweep: %d expired, %d still referenced, %d deleted", len(old), len(old) - len(doomed), len(doomed))
    return len(doomed)


async def sweep_if_due(redis: Redis, retention_seconds: float, period: float) -> int:
    """Sweep unless another process swept within `period` seconds."""
    if not await redis.set(keys.TOKEN_SWEEP_LOCK, str(time.time()), nx=True, ex=max(1, int(period))):
        return 0
    return await sweep(redis, retention_seconds)
