"""The Redis store: components, sessions, templates, saved statuses, options and tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from redis.asyncio import Redis

from . import keys
from .codec import dumps, loads
from .connection import RetryingRedis
from .packing import connection_class
from .components import ComponentQuery, ComponentStore, TooMuchContention
from .events import Events
from .history import HistorySettings
from .options import OptionsStore
from .redis_url import redis_from_url
from .scoped import ScopedStore, session_store, template_store
from .session_create import SessionCreator

__all__ = ["ComponentQuery", "Store", "TooMuchContention", "keys"]


@dataclass
class Store:
    redis: Redis
    components: ComponentStore
    sessions: ScopedStore
    templates: ScopedStore
    options: OptionsStore
    events: Events
    session_creator: SessionCreator

    @classmethod
    def connect(cls, url: str, history: Optional[HistorySettings] = None) -> "Store":
        """Connect lazily: nothing touches Redis until the first command (D6)."""
        redis = redis_from_url(url, RetryingRedis, socket_connect_timeout=1.0, socket_timeout=30.0,
                               health_check_interval=30, retry_on_timeout=False, **connection_class(url))
        events = Events(redis)
        return cls(redis, ComponentStore(redis, events, history), session_store(redis), template_store(redis),
                   OptionsStore(redis, events), events, SessionCreator(redis))

    async def ping(self, timeout: float = 1.0) -> bool:
        import asyncio
        from redis.exceptions import RedisError
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), timeout))
        except (RedisError, OSError, asyncio.TimeoutError):
            return False

    async def get_saved_status(self, tenant: Optional[str], name: str) -> Optional[Dict[str, Any]]:
        raw = await self.redis.get(keys.session_status(tenant, name))
        return loads(raw) if raw else None

    async def save_status(self, tenant: Optional[str], name: str, status: Dict[str, Any]) -> None:
        await self.redis.set(keys.session_status(tenant, name), dumps(status))

    async def close(self) -> None:
        await self.redis.aclose()
