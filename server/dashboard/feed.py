"""The dashboard's live feed: one subscription to the store's change events per process,
fanned out to every open event stream of that process.

The events are those the operators wake on (store/events.py); component events
carry the changes of the write that published them, so a viewer's update costs
the server the changes since the last one, never a read of the session's
members. A subscriber that cannot keep up, or a lost subscription, ends the
affected streams: the browser reconnects and starts again from a fresh snapshot,
so nothing is silently missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Dict, Optional, Set

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .. import metrics
from ..store import keys

LOG = logging.getLogger("bos_server.dashboard")
QUEUE_LIMIT = 2000  # events buffered per viewer before it is made to reconnect
Event = Optional[Dict[str, Any]]  # None: the stream must end (resubscribe from a snapshot)


class Feed:
    def __init__(self) -> None:
        self.redis: Optional[Redis] = None
        self.queues: Set[asyncio.Queue] = set()
        self.task: Optional[asyncio.Task] = None
        self.ready = asyncio.Event()

    async def subscribe(self, redis: Redis) -> "asyncio.Queue[Event]":
        """A queue of events from now on (returns once the subscription is live)."""
        self.redis = redis
        queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
        self.queues.add(queue)
        if self.task is None or self.task.done():
            self.ready.clear()
            self.task = asyncio.create_task(self._listen(), name="dashboard-feed")
        await asyncio.wait_for(self.ready.wait(), timeout=10)
        return queue

    def unsubscribe(self, queue: "asyncio.Queue[Event]") -> None:
        self.queues.discard(queue)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _listen(self) -> None:
        assert self.redis is not None
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(keys.EVENTS_CHANNEL)
            self.ready.set()
            while self.queues:
                message = await pubsub.get_message(timeout=5.0)
                if message is not None:
                    self._fan_out(message.get("data"))
        except (RedisError, OSError) as exc:
            metrics.redis_error("api")
            LOG.warning("Dashboard change feed lost: %s", exc)
        finally:
            self._end_all()
            try:
                await pubsub.aclose()
            except Exception as exc:  # closing a broken connection may fail; nothing else to do
                LOG.debug("Closing the dashboard feed: %s", exc)

    def _fan_out(self, data: Any) -> None:
        try:
            event = json.loads(data or b"{}")
        except (TypeError, ValueError):
            return
        if not isinstance(event, dict):
            return
        for queue in list(self.queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a slow viewer: end its stream, it resyncs on reconnect
                self.queues.discard(queue)
                _force(queue, None)

    def end_streams(self) -> None:
        """End every open stream now (the server is stopping; browsers reconnect elsewhere)."""
        self._end_all()

    def _end_all(self) -> None:
        for queue in list(self.queues):
            _force(queue, None)
        self.queues.clear()


def _force(queue: asyncio.Queue, item: Event) -> None:
    """Put `item` even into a full queue (dropping the oldest entry)."""
    while True:
        try:
            queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            queue.get_nowait()
