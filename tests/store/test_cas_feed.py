"""The component write feed (store/cas.py): the compare-and-set script lists the member of every
write it applied in a stream, atomically with the writes, so a reader (the status operator) can
read what was written since its last look instead of every record."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator, List

import orjson
import pytest
import redis as redis_lib

from bos_server.store import Store, keys
from bos_server.store.cas import MISSING, CasWriter, Write, _args, digest
from bos_sim.stack import RedisServer


@pytest.fixture
def url(redis_server: RedisServer, redis_client: redis_lib.Redis) -> Iterator[str]:
    redis_client.flushdb()
    yield redis_server.url


def fed(redis_client: redis_lib.Redis) -> List[List[str]]:
    """Each feed entry's members (field "i": a JSON array)."""
    return [orjson.loads(fields[b"i"]) for _id, fields in redis_client.xrange(keys.COMPONENT_WRITES)]


def test_the_feed_lists_every_applied_write_and_no_refused_one(url: str, redis_client: redis_lib.Redis) -> None:
    async def scenario() -> List[int]:
        store = Store.connect(url)
        try:
            await store.redis.set(keys.component("gone"), b"old")
            await store.redis.set(keys.component("moved"), b"changed since it was read")
            writes = [Write(keys.component("new 1"), "new 1", MISSING, b"v"),  # an ID may hold a space
                      Write(keys.component("gone"), "gone", digest(b"old"), None),
                      Write(keys.component("moved"), "moved", digest(b"old"), b"v")]
            return await store.components.cas.apply(writes)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [2]
    assert fed(redis_client) == [["new 1", "gone"]]


def test_a_replayed_call_feeds_nothing_again_and_other_records_feed_nothing(
        url: str, redis_client: redis_lib.Redis) -> None:
    async def scenario() -> None:
        store = Store.connect(url)
        try:
            writer = store.components.cas
            args = _args([Write(keys.component("r1"), "r1", MISSING, b"v")], {}, keys.cas_receipt("feed-replay"),
                         feed=writer.feed)
            await writer._script(args=args)
            await writer._script(args=args)  # the reply was lost: the receipt answers, nothing is written
            await CasWriter(store.redis).apply([Write("bos:other:o1", "o1", MISSING, b"v")])  # not a component
        finally:
            await store.close()

    asyncio.run(scenario())
    assert fed(redis_client) == [["r1"]]


def test_a_large_call_feeds_each_member_once_whatever_its_characters(url: str, redis_client: redis_lib.Redis) -> None:
    members = [f"m{n}" for n in range(2000)] + ['a "quoted", spaced\\ ID', "ünïcode/ID", "tab\tand\nnewline"]

    async def scenario() -> List[int]:
        store = Store.connect(url)
        try:
            return await store.components.cas.apply(
                [Write(keys.component(m), m, MISSING, b"v") for m in members], chunk=len(members))
        finally:
            await store.close()

    assert asyncio.run(scenario()) == []
    assert fed(redis_client) == [members]


def test_entries_older_than_the_feed_keeps_are_trimmed(url: str, redis_client: redis_lib.Redis) -> None:
    old: Any = redis_client.config_get("stream-node-max-entries")["stream-node-max-entries"]
    redis_client.config_set("stream-node-max-entries", 1)  # whole nodes are trimmed: one entry each
    try:
        redis_client.xadd(keys.COMPONENT_WRITES, {"ancient": ""}, id="1-0")

        async def scenario() -> None:
            store = Store.connect(url)
            try:
                await store.components.cas.apply([Write(keys.component("x"), "x", MISSING, b"v")])
            finally:
                await store.close()

        asyncio.run(scenario())
    finally:
        redis_client.config_set("stream-node-max-entries", old)
    assert fed(redis_client) == [["x"]]
