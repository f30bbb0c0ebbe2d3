"""Change events on Redis pub/sub, so operators wake within a second (operators.md §2.2).

One message per write request (per 1,000-record slice of a bulk write over 3,000), never per record; a lost message only delays
work until the next periodic pass, so publishing is best effort.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bos_shared.status import component_status

from . import keys
from .codec import dumps

LOG = logging.getLogger(__name__)


class Events:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, message: Dict[str, Any]) -> None:
        try:
            await self.redis.publish(keys.EVENTS_CHANNEL, dumps(message))
        except RedisError as exc:
            LOG.warning("Could not publish change event %s: %s", message.get("kind"), exc)

    async def components_written(self, records: Iterable[Dict[str, Any]],
                                 changes: Sequence[List[Any]] = ()) -> None:
        message = components_message(records, changes)
        if message is not None:
            await self.publish(message)

    async def sessions_written(self, statuses: Iterable[str]) -> None:
        await self.publish(sessions_message(statuses))

    async def options_written(self) -> None:
        await self.publish({"kind": "options"})


def components_message(records: Iterable[Dict[str, Any]], changes: Sequence[List[Any]] = ()) -> Optional[Dict[str, Any]]:
    """The event of a component write (None when nothing was written).

    `changes`: [id, session, phase, status, has error] of each record whose tracked
    fields changed (store/history.py), so a dashboard follows a boot from the events alone.
    """
    statuses = set()
    enabled = False
    for record in records:
        statuses.add(component_status(record))
        enabled = enabled or record.get("enabled") is True
    if not statuses:
        return None
    message: Dict[str, Any] = {"kind": "components", "statuses": sorted(statuses), "enabled": enabled}
    if changes:
        message["changes"] = list(changes)
        message["t"] = round(time.time() * 1000)  # ms: a dashboard keeps the newest state per node
    return message


def sessions_message(statuses: Iterable[str]) -> Dict[str, Any]:
    return {"kind": "sessions", "statuses": sorted(set(statuses))}


def encoded(message: Optional[Dict[str, Any]]) -> Optional[bytes]:
    """A message as published (and as handed to the compare-and-set script, cas.py)."""
    return dumps(message) if message is not None else None
