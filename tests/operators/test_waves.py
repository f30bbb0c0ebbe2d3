"""Wave slots in Redis (operators.md §5.7): the cap holds across replicas, slots free as
nodes move on, and max_failed stops admission (real redis-server, no mocks)."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

import pytest
from redis.asyncio import Redis

from bos_server.store import Store, waves

SESSION = "w"


def node(i: int) -> str:
    return f"x1000c0s{i // 8}b0n{i % 8}"


async def seed(store: Store, count: int, phase: str = "powering_off") -> List[str]:
    ids = [node(i) for i in range(count)]
    await store.components.update(ids, lambda cid, _old: {"id": cid, "session": SESSION, "enabled": True,
                                                          "status": {"phase": phase, "status_override": ""}})
    return ids


async def set_records(store: Store, ids: List[str], **fields: Any) -> None:
    await store.components.update(ids, lambda cid, old: {**(old or {}), **fields})


@pytest.fixture
def redis_url(redis_server: Any, redis_client: Any) -> str:
    redis_client.flushdb()
    return redis_server.url


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_replicas_admitting_at_once_never_exceed_the_cap(redis_url: str) -> None:
    async def scenario() -> Dict[str, int]:
        store = Store.connect(redis_url)
        ids = await seed(store, 200)
        replicas = [Redis.from_url(redis_url) for _ in range(8)]
        # every replica sees the whole candidate list, in its own order, several times over
        rounds = [waves.admit(r, SESSION, 50, None, ids[n::3] + ids) for n, r in enumerate(replicas) for _ in range(3)]
        results = await asyncio.gather(*rounds)
        admitted = set().union(*(set(r.admitted) for r in results))
        held = await waves.in_flight(store.redis, SESSION)
        waiting = await waves.waiting_count(store.redis, SESSION)
        for r in replicas:
            await r.aclose()
        await store.close()
        return {"admitted": len(admitted), "held": held, "waiting": waiting}

    assert run(scenario()) == {"admitted": 50, "held": 50, "waiting": 150}


def test_slots_free_when_nodes_reach_configuring_or_are_disabled(redis_url: str) -> None:
    async def scenario() -> List[int]:
        store = Store.connect(redis_url)
        ids = await seed(store, 30)
        first = (await waves.admit(store.redis, SESSION, 10, None, ids)).admitted
        await set_records(store, first[:4], status={"phase": "configuring", "status_override": ""})
        await set_records(store, first[4:6], enabled=False)
        second = (await waves.admit(store.redis, SESSION, 10, None, ids)).admitted
        counts = [len(first), len(set(second) - set(first)), await waves.in_flight(store.redis, SESSION)]
        await store.close()
        return counts

    assert run(scenario()) == [10, 6, 10]


def test_max_failed_stops_admission_but_keeps_started_nodes(redis_url: str) -> None:
    async def scenario() -> List[Any]:
        store = Store.connect(redis_url)
        ids = await seed(store, 20)
        started = (await waves.admit(store.redis, SESSION, 5, "10%", ids)).admitted  # 10% of 20 = 2
        await set_records(store, ids[5:8], enabled=False,
                          status={"phase": "", "status_override": "failed"})  # 3 failed > 2
        later = await waves.admit(store.redis, SESSION, 5, "10%", ids)
        await store.close()
        return [len(started), later.exceeded, sorted(later.admitted)]

    assert run(scenario()) == [5, True, sorted(node(i) for i in range(5))]


@pytest.mark.parametrize("value, members, limit", [(None, 10, -1), (0, 10, 0), (3, 10, 3), ("2%", 500, 10),
                                                   ("2.5%", 100, 2), ("100%", 7, 7), ("0%", 7, 0)])
def test_failure_limit(value: Any, members: int, limit: int) -> None:
    assert waves.failure_limit(value, members) == limit
