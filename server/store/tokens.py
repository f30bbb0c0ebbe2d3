"""BSS referral token records (api.md §6.1, operators.md §5.6) and their retention (D4).

Power-on writes a record per BSS write; the API resolves reported tokens with
it. Records are swept when old *and* no component references them.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterable, Mapping, Optional

from redis.asyncio import Redis

from bos_shared.times import now_str

from . import keys


async def put_token(redis: Redis, token: str, artifacts: Mapping[str, Any]) -> None:
    """Durably record `token -> {kernel, kernel_parameters, initrd, timestamp}`."""
    record = {"kernel": artifacts.get("kernel", ""),
              "kernel_parameters": artifacts.get("kernel_parameters", ""),
              "initrd": artifacts.get("initrd", ""),
              "timestamp": now_str()}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.token(token), json.dumps(record, separators=(",", ":")))
        pipe.zadd(keys.TOKENS_BY_TIME, {token: time.time()})
        await pipe.execute()


async def get_tokens(redis: Redis, tokens: Iterable[str]) -> Dict[str, Dict[str, Any]]:
    """Token records by token, for the tokens that exist."""
    wanted = sorted(set(t for t in tokens if t))
    if not wanted:
        return {}
    raws = await redis.mget([keys.token(t) for t in wanted])
    return {t: json.loads(raw) for t, raw in zip(wanted, raws) if raw}


async def get_token(redis: Redis, token: str) -> Optional[Dict[str, Any]]:
    return (await get_tokens(redis, [token])).get(token)
