"""BSS referral token records (api.md §6.1, operators.md §5.6) and their retention (D4).

Power-on writes a record per BSS write; the API resolves reported tokens with
it. Records are swept when old *and* no component references them.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from redis.asyncio import Redis

from bos_shared.times import now_str

from . import keys
from .connection import read_kept


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


def cached_tokens(tokens: Iterable[str]) -> Optional[Dict[str, Dict[str, Any]]]:
    """get_tokens() when this process has every one of `tokens` cached, else None (then get_tokens
    looks them up): a node's report resolves its token without a coroutine, set differences and a
    sort (issue 13: the post-boot report, a tenth of the single PATCH handler's CPU)."""
    found: Dict[str, Dict[str, Any]] = {}
    for token in tokens:
        if token:
            record = _CACHE.get(token)
            if record is None:
                return None
            found[token] = record
    return found


async def get_tokens(redis: Redis, tokens: Iterable[str]) -> Dict[str, Dict[str, Any]]:
    """Token records by token, for the tokens that exist."""
    wanted = set(t for t in tokens if t)
    found = {t: _CACHE[t] for t in wanted if t in _CACHE}
    missing = sorted(wanted - set(found))
    if missing:
        for token, raw in (await _lookups(redis).read(missing)).items():
            if raw:
                found[token] = json.loads(raw)
                _remember(token, found[token])
    return found


class _Lookups:
    """Concurrent look-ups of uncached tokens share one MGET.

    After a boot every node reports a token this process has not seen yet (and a
    misconfigured node one nobody knows): in a wave of reports each request
    would otherwise make its own round trip to Redis, which costs more CPU
    than the rest of its token handling. Each caller gets its own future, so a
    cancelled request never cancels another's look-up.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.waiting: List[Tuple[List[str], "asyncio.Future[Dict[str, Optional[bytes]]]"]] = []
        self._flusher: Optional["asyncio.Future[None]"] = None

    async def read(self, tokens: List[str]) -> Dict[str, Optional[bytes]]:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((tokens, future))
        if len(self.waiting) == 1:  # the first caller of this loop iteration schedules the read
            self._flusher = asyncio.ensure_future(self._flush())  # kept: an unreferenced task may vanish
        found: Dict[str, Optional[bytes]] = await future
        return found

    async def _flush(self) -> None:
        batch, self.waiting = self.waiting, []
        wanted = sorted({t for tokens, _f in batch for t in tokens})
        try:
            raws = dict(zip(wanted, await read_kept(self.redis, "MGET", *[keys.token(t) for t in wanted])))
        except Exception as exc:  # every caller of the batch sees the failure
            for _tokens, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (shutdown): so are the callers
            for _tokens, future in batch:
                future.cancel()
            raise
        for tokens, future in batch:
            if not future.done():
                future.set_result({t: raws.get(t) for t in tokens})


_LOOKUPS: "weakref.WeakKeyDictionary[Redis, _Lookups]" = weakref.WeakKeyDictionary()


def _lookups(redis: Redis) -> _Lookups:
    found = _LOOKUPS.get(redis)
    if found is None:
        found = _LOOKUPS[redis] = _Lookups(redis)
    return found


def _remember(token: str, record: Dict[str, Any]) -> None:
    _CACHE[token] = record
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)


def forget(tokens: Iterable[str]) -> None:
    """Drop swept tokens from this process's cache."""
    for token in tokens:
        _CACHE.pop(token, None)

