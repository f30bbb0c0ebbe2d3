"""BSS referral token records (api.md §6.1, operators.md §5.6) and their retention (D4).

Power-on writes a record per BSS write; the API resolves reported tokens with
it. Records are swept when old *and* no component references them.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any, Dict, Iterable, Mapping

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


# Token records never change once written, so found ones are cached per process.
_CACHE: "OrderedDict[str, Dict[str, Any]]" = OrderedDict()
CACHE_SIZE = 4096


async def get_tokens(redis: Redis, tokens: Iterable[str]) -> Dict[str, Dict[str, Any]]:
    """Token records by token, for the tokens that exist."""
    wanted = set(t for t in tokens if t)
    found = {t: _CACHE[t] for t in wanted if t in _CACHE}
    missing = sorted(wanted - set(found))
    if missing:
        raws = await redis.mget([keys.token(t) for t in missing])
        for token, raw in zip(missing, raws):
            if raw:
                found[token] = json.loads(raw)
                _remember(token, found[token])
    return found


def _remember(token: str, record: Dict[str, Any]) -> None:
    _CACHE[token] = record
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)


def forget(tokens: Iterable[str]) -> None:
    """Drop swept tokens from this process's cache."""
    for token in tokens:
        _CACHE.pop(token, None)

