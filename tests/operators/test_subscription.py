"""The operators' change-event subscription (operators/subscription.py): every message, whole and
in order, several per read of the socket; a closed connection is an error the runner retries."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bos_server.operators.subscription import READ_BYTES, Subscription

CHANNEL = "bos:test-subscription"


async def _collect(subscription: Subscription, count: int) -> list:
    """Reads until `count` payloads arrived (a read may end inside a message: nothing whole yet):
    one list per read that returned any."""
    reads = []
    deadline = asyncio.get_running_loop().time() + 10
    while sum(map(len, reads)) < count:
        assert asyncio.get_running_loop().time() < deadline, "the messages did not arrive within 10 s"
        found = await subscription.messages(timeout=1.0)
        if found:
            reads.append(found)
    return reads


def test_messages_arrive_whole_in_order_and_several_per_read(redis_server):
    """A burst of events (a boot's reports) is read in a few socket reads, not one call per message
    (redis-py's PubSub: ~30 µs of CPU each, issue 13); a message longer than one read (a bulk
    write's event names each record written) is assembled whole."""
    async def main() -> None:
        client = Redis.from_url(redis_server.url)
        subscription = Subscription(client)
        try:
            await subscription.subscribe(CHANNEL)
            assert await subscription.messages(timeout=5.0) == []  # the confirmation: no payload
            small = [b'{"kind":"components","n":%d}' % n for n in range(200)]
            large = b"[" + b"1," * READ_BYTES + b"1]"
            async with client.pipeline(transaction=False) as pipe:
                for payload in (*small, large, b"last"):
                    pipe.publish(CHANNEL, payload)
                assert all(n == 1 for n in await pipe.execute())  # each received by the subscription
            reads = await _collect(subscription, len(small) + 2)
            assert [m for found in reads for m in found] == [*small, large, b"last"]
            assert len(reads[0]) > 1 and len(reads) < len(small)
            assert await subscription.messages(timeout=0.05) == []  # nothing more: the time-out
        finally:
            await subscription.aclose()
            await client.aclose()
    asyncio.run(main())


def test_a_closed_connection_raises(redis_server):
    """Redis dropping the subscriber (a restart, a failover) ends `messages` with redis' own
    ConnectionError, which the runner logs before subscribing again (polling meanwhile)."""
    async def main() -> None:
        client = Redis.from_url(redis_server.url)
        subscription = Subscription(client)
        try:
            await subscription.subscribe(CHANNEL)
            await subscription.messages(timeout=5.0)
            host, port = subscription._connection._writer.get_extra_info("sockname")[:2]
            assert await client.client_kill_filter(addr=f"{host}:{port}") == 1
            with pytest.raises(RedisConnectionError):
                for _ in range(50):
                    await subscription.messages(timeout=0.1)
        finally:
            await subscription.aclose()
            await client.aclose()
    asyncio.run(main())
