"""Change events on Redis pub/sub, so operators wake within a second (operators.md §2.2).

One message per compare-and-set call (a write request; a bulk write over WRITE_CHUNK records, one per chunk,
published by each chunk's script: components.py), never per record; a lost message only delays
work until the next periodic pass, so publishing is best effort.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Collection, Dict, Iterable, List, Optional, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from . import keys
from .codec import dumps
from .component_query import Facets

LOG = logging.getLogger(__name__)


class Events:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, message: Dict[str, Any]) -> None:
        try:
            await self.redis.publish(keys.EVENTS_CHANNEL, dumps(message))
        except RedisError as exc:
            LOG.warning("Could not publish change event %s: %s", message.get("kind"), exc)

    async def components_written(self, facets: Collection[Facets], changes: Sequence[List[Any]] = ()) -> None:
        message = components_message(facets, changes)
        if message is not None:
            await self.publish(message)

    async def sessions_written(self, statuses: Iterable[str]) -> None:
        await self.publish(sessions_message(statuses))

    async def options_written(self) -> None:
        await self.publish({"kind": "options"})


def components_message(facets: Collection[Facets], changes: Sequence[List[Any]] = ()) -> Optional[Dict[str, Any]]:
    """The event of a component write (None when nothing was written).

    `facets`: the index facets (component_query.index_facets) of each record written, computed
    while planning the write: the computed status and the enabled flag of each, without
    computing them again for every record (issue 13).

    `changes`: [id, session, phase, status, has error] of each record whose tracked
    fields changed (store/history.py), so a dashboard follows a boot from the events alone.
    """
    statuses = {f[0] for f in facets}
    if not statuses:
        return None
    message: Dict[str, Any] = {"kind": "components", "statuses": sorted(statuses), "enabled": any(f[1] for f in facets)}
    if changes:
        message["changes"] = list(changes)
        message["t"] = round(time.time() * 1000)  # ms: a dashboard keeps the newest state per node
    return message


def sessions_message(statuses: Iterable[str]) -> Dict[str, Any]:
    return {"kind": "sessions", "statuses": sorted(set(statuses))}


def encoded(message: Optional[Dict[str, Any]]) -> Optional[bytes]:
    """A message as published (and as handed to the compare-and-set script, cas.py)."""
    return dumps(message) if message is not None else None
