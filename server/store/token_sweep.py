"""Token-record retention (D4): delete records that are old *and* unreferenced.

Runs hourly in one API process at a time (a Redis lock); the reference scan is
O(components) but off every request path.
"""

from __future__ import annotations

import logging
import time
from typing import Set, Tuple

from redis.asyncio import Redis

from . import keys
from .blobs import referenced_digests
from .record_form import unpack
from .codec import loads
from .tokens import forget

LOG = logging.getLogger(__name__)


BLOB_GRACE_SECONDS = 3600
# Delete a blob only if no write has referenced it since the cutoff (atomic with the CAS script).
_DELETE_IF_IDLE = """
local deleted = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) < tonumber(ARGV[1]) then
    redis.call('DEL', ARGV[i])
    redis.call('ZREM', KEYS[1], ARGV[i])
    deleted = deleted + 1
  end
end
return deleted
"""


async def referenced(redis: Redis, chunk: int = 2000) -> Tuple[Set[str], Set[str]]:
    """(BSS tokens, artifact blob keys) that some component references."""
    tokens: Set[str] = set()
    blobs: Set[str] = set()
    lower = b"-"
    while True:
        ids = await redis.zrange(keys.COMPONENT_IDS, lower, b"+", bylex=True, offset=0, num=chunk)
        if not ids:
            return tokens, blobs
        for raw in await redis.mget([keys.component(i.decode()) for i in ids]):
            if raw is None:
                continue
            record = unpack(loads(raw))
            blobs.update(keys.artifacts_blob(d) for d in referenced_digests(record))
            for state in ("desired_state", "actual_state"):
                token = (record.get(state) or {}).get("bss_token")
                if token:
                    tokens.add(token)
        if len(ids) < chunk:
            return tokens, blobs
        lower = b"(" + ids[-1]


async def sweep(redis: Redis, retention_seconds: float) -> int:
    """Delete expired unreferenced token records and idle unreferenced blobs; returns tokens deleted."""
    now = time.time()
    old = [t.decode() for t in await redis.zrangebyscore(keys.TOKENS_BY_TIME, "-inf", now - retention_seconds)]
    idle_blobs = [b.decode() for b in await redis.zrangebyscore(keys.ARTIFACT_BLOBS, "-inf", now - BLOB_GRACE_SECONDS)]
    if not old and not idle_blobs:
        return 0
    used_tokens, used_blobs = await referenced(redis)
    unused_blobs = [b for b in idle_blobs if b not in used_blobs]
    if unused_blobs:
        script = redis.register_script(_DELETE_IF_IDLE)
        for start in range(0, len(unused_blobs), 1000):
            await script(keys=[keys.ARTIFACT_BLOBS], args=[now - BLOB_GRACE_SECONDS, *unused_blobs[start:start + 1000]])
    doomed = [t for t in old if t not in used_tokens]
    for start in range(0, len(doomed), 1000):
        part = doomed[start:start + 1000]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(*[keys.token(t) for t in part])
            pipe.zrem(keys.TOKENS_BY_TIME, *part)
            await pipe.execute()
        forget(part)
    LOG.info("Token sweep: %d expired, %d still referenced, %d deleted", len(old), len(old) - len(doomed), len(doomed))
    return len(doomed)


async def sweep_if_due(redis: Redis, retention_seconds: float, period: float) -> int:
    """Sweep unless another process swept within `period` seconds."""
    if not await redis.set(keys.TOKEN_SWEEP_LOCK, str(time.time()), nx=True, ex=max(1, int(period))):
        return 0
    return await sweep(redis, retention_seconds)
