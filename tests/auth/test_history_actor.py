"""Who wrote a component, in its history, when concurrent requests share one batched store write.

The write batcher (store/components.py) runs in its own task, so the writer of
each record is carried with the record, not read from the batch's context.
"""

from __future__ import annotations

import asyncio
from typing import Dict, Iterator

import pytest
import redis as redis_lib

from bos_server.store import Store
from bos_server.store.history import ACTOR, HistorySettings, read
from bos_sim.stack import RedisServer


@pytest.fixture
def url(redis_server: RedisServer, redis_client: redis_lib.Redis) -> Iterator[str]:
    redis_client.flushdb()
    yield redis_server.url


async def write_as(store: Store, actor: str, component_id: str) -> None:
    ACTOR.set(actor)  # as the auth middleware does, in this request's own task
    await store.components.update_one(component_id, lambda _id, _old: {"enabled": True, "error": actor})


def test_each_record_of_a_batch_keeps_its_own_writer(url: str) -> None:
    async def run() -> Dict[str, str]:
        settings = HistorySettings()
        store = Store.connect(url, settings)
        try:
            writers = {f"x1000c0s0b0n{i}": f"spiffe://shasta/compute/x1000c0s0b0n{i}/workload/r (node)" for i in range(8)}
            await asyncio.gather(*(asyncio.create_task(write_as(store, actor, cid)) for cid, actor in writers.items()))
            found = {}
            for cid in writers:
                entries = await read(store.redis, settings, cid, None, 10)
                found[cid] = entries[-1].get("by", "")
            return {cid: found[cid] == actor for cid, actor in writers.items()}
        finally:
            await store.close()
    assert all(asyncio.run(run()).values())
