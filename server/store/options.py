"""The options record (api.md §2.11), cached per process (D3)."""

from __future__ import annotations

import time
from typing import Any, Dict, Mapping, Optional

from redis.asyncio import Redis

from bos_shared.options import effective

from . import keys
from .cas import CasWriter, Write, digest
from .codec import dumps, loads
from .components import MAX_ROUNDS, TooMuchContention
from .events import Events

CACHE_SECONDS = 1.0


class OptionsStore:
    def __init__(self, redis: Redis, events: Events) -> None:
        self.redis = redis
        self.events = events
        self.cas = CasWriter(redis)
        self._cached: Optional[Dict[str, Any]] = None
        self._cached_at = 0.0

    async def get(self) -> Dict[str, Any]:
        """All 20 options; at most CACHE_SECONDS stale (D3)."""
        if self._cached is not None and time.monotonic() - self._cached_at < CACHE_SECONDS:
            return dict(self._cached)
        raw = await self.redis.get(keys.OPTIONS)
        self._remember(effective(loads(raw)) if raw else effective({}))
        return dict(self._cached or {})

    async def patch(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        """Merge validated known options into the stored record atomically (D2, D11)."""
        for _ in range(MAX_ROUNDS):
            raw = await self.redis.get(keys.OPTIONS)
            stored = loads(raw) if raw else {}
            merged = {**stored, **values}
            write = Write(keys.OPTIONS, "options", digest(raw), dumps(merged))
            if not await self.cas.apply([write]):
                result = effective(merged)
                self._remember(result)
                await self.events.options_written()
                return dict(result)
        raise TooMuchContention("the options kept changing during the update")

    def _remember(self, values: Dict[str, Any]) -> None:
        self._cached = values
        self._cached_at = time.monotonic()
