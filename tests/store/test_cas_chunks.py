"""A large update is written in chunks whose scripts overlap the planning of the next
chunk (ComponentStore._round); every record stays individually compare-and-set.

A second store changes records of several chunks between the update's read and its
writes: the update must recompute exactly those and lose neither side's change.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterator, List, Mapping

import pytest
import redis as redis_lib

from bos_server.store import Store, keys
from bos_server.store.codec import loads
from bos_server.store.components import WRITE_CHUNK
from bos_sim.stack import RedisServer

from .test_cas import interposing

COUNT = 2 * WRITE_CHUNK + 100  # four chunks (components._chunks)


@pytest.fixture
def url(redis_server: RedisServer, redis_client: redis_lib.Redis) -> Iterator[str]:
    redis_client.flushdb()
    yield redis_server.url


def test_a_chunked_update_recomputes_the_records_changed_meanwhile(url: str, redis_client: redis_lib.Redis) -> None:
    ids = [f"x{n:05d}" for n in range(COUNT)]
    raced = ids[7::WRITE_CHUNK // 2]  # some in every chunk

    async def scenario() -> None:
        mine, other = Store.connect(url), Store.connect(url)
        try:
            await mine.components.update(ids, lambda cid, _old: {"id": cid, "enabled": False, "error": ""})
            interloper = lambda: other.components.update(raced, lambda _id, old: {**old, "enabled": True})  # noqa: E731
            mine.components.get_raw_many = interposing(mine.components.get_raw_many, interloper)  # type: ignore
            written = await mine.components.update(ids, lambda _id, old: {**(old or {}), "error": "ours"})
            assert len(written) == COUNT
        finally:
            await mine.close()
            await other.close()
    asyncio.run(scenario())
    records = {i: loads(raw) for i, raw in zip(ids, redis_client.mget([keys.component(i) for i in ids]))}
    assert all(r["error"] == "ours" for r in records.values()), "an update was lost"
    assert sorted(i for i, r in records.items() if r["enabled"]) == sorted(raced), "a concurrent write was lost"
    assert sorted(m.decode() for m in redis_client.zrange(keys.COMPONENT_ENABLED, 0, -1)) == sorted(raced)


def test_ahead_gets_the_first_rounds_records_and_a_conflict_returns_others(url: str) -> None:
    """`ahead` (update's: the API makes its answer while the scripts run) is called once, with every
    record of the first round; a record recomputed after a conflict is returned as a new object, so a
    caller that checks identity never answers the record it was given in place of the one written."""
    ids = [f"x{n:05d}" for n in range(COUNT)]
    raced = ids[-1]  # in the last chunk: its script cannot have answered when ahead is called
    given: List[Mapping[str, Any]] = []

    async def scenario() -> Dict[str, Any]:
        mine, other = Store.connect(url), Store.connect(url)
        try:
            await mine.components.update(ids, lambda cid, _old: {"id": cid, "enabled": False, "error": ""})
            interloper = lambda: other.components.update([raced], lambda _id, old: {**old, "enabled": True})  # noqa: E731
            mine.components.get_raw_many = interposing(mine.components.get_raw_many, interloper)  # type: ignore
            return await mine.components.update(ids, lambda _id, old: {**(old or {}), "error": "ours"},
                                                ahead=given.append)
        finally:
            await mine.close()
            await other.close()
    written = asyncio.run(scenario())
    assert len(given) == 1 and list(given[0]) == ids, "ahead: once, with every record in ID order"
    assert given[0][raced]["enabled"] is False and written[raced]["enabled"] is True
    assert written[raced] is not given[0][raced], "a recomputed record must be a new object"
    assert all(written[i] is given[0][i] for i in ids if i != raced), "the records written as given are those objects"
