"""The operators' subscription to the store's change events, read off its connection in batches.

Every write of the API publishes one change event (store/events.py), and a boot writes at least
once per node (its report): 100,000 messages at 100,000 nodes. Through redis-py's PubSub each cost
the operators ~30 µs of CPU (`get_message`: a time-out context, its retry wrapper and a message
dict per message, one message per call), about 3 s of a 100,000-node boot (issue 13). Here what
arrived is read at once and parsed by hiredis, several messages per read: ~3 µs each.
"""

from __future__ import annotations

import asyncio
from typing import Any, List

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

READ_BYTES = 1 << 16  # per read of the socket; a longer message is assembled over several reads
MESSAGE = b"message"


class Subscription:
    """One channel on a connection of its own, made by `client` (its URL's address, credentials,
    TLS, database; a Sentinel-managed client asks for the primary): `messages` returns the
    payloads published since the last call, or none once `timeout` has passed."""

    def __init__(self, client: Any) -> None:
        self._connection = client.connection_pool.make_connection()
        self._parser = hiredis.Reader()

    async def subscribe(self, channel: str) -> None:
        """Connect (the client's own set-up: AUTH, SELECT) and subscribe to `channel`; the
        confirmation comes with the first `messages`."""
        await self._connection.connect()
        await self._connection.send_command("SUBSCRIBE", channel)

    async def messages(self, timeout: float) -> List[bytes]:
        """The payloads of every whole message received by now, waiting up to `timeout` for one
        read of the socket; raises redis' ConnectionError when Redis closed the connection."""
        stream = self._connection._reader
        if stream is None:
            raise RedisConnectionError("the change events' connection is closed")
        try:
            async with asyncio.timeout(timeout):
                data = await stream.read(READ_BYTES)
        except TimeoutError:
            return []
        if not data:
            raise RedisConnectionError("Redis closed the change events' connection")
        self._parser.feed(data)
        found: List[bytes] = []
        while (reply := self._parser.gets()) is not False:
            if isinstance(reply, Exception):  # e.g. SUBSCRIBE refused by an ACL
                raise ResponseError(str(reply))
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == MESSAGE:
                found.append(reply[2])
        return found

    async def aclose(self) -> None:
        await self._connection.disconnect()
