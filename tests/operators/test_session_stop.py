"""The stop's wait for operator actions in progress (operators.md §2.8, api.md §3.10.3), in
process on a real redis-server: an action registered before the stop disabled the nodes
holds the stop until it ends; one registered after finds nothing enabled."""

from __future__ import annotations

import asyncio
from typing import Any, List

import pytest

from bos_server.session_stop import stop_session
from bos_server.store import ComponentQuery, Store
from bos_server.store.acting import acting

NODES = ["x1000c0s0b0n0", "x1000c0s0b0n1"]


@pytest.fixture
def redis_url(redis_server: Any, redis_client: Any) -> str:
    redis_client.flushdb()
    return redis_server.url


async def running_session(store: Store) -> None:
    await store.sessions.create({"name": "s", "tenant": None, "operation": "boot", "template_name": "t",
                                 "status": {"status": "running", "start_time": "2025-01-01T00:00:00"}})
    await store.components.update(NODES, lambda cid, _old: {"id": cid, "session": "s", "enabled": True})


async def enabled(store: Store) -> List[str]:
    return [c["id"] for c in await store.components.query(ComponentQuery(session="s", enabled=True))]


def test_stop_waits_for_an_action_that_began_before_it(redis_url: str) -> None:
    async def scenario() -> List[str]:
        store = Store.connect(redis_url)
        await running_session(store)
        order: List[str] = []
        began, finish = asyncio.Event(), asyncio.Event()

        async def operator() -> None:  # read the nodes as enabled, then act on them
            async with acting(store.redis):
                order.append(f"operator read {len(await enabled(store))} enabled")
                began.set()
                await finish.wait()
                order.append("operator's PCS call done")

        acting_task = asyncio.create_task(operator())
        await began.wait()
        stop = asyncio.create_task(stop_session(store, None, None, "s", keep_configuration=True))
        with pytest.raises(asyncio.TimeoutError):  # still waiting for the operator
            await asyncio.wait_for(asyncio.shield(stop), timeout=0.5)
        order.append(f"meanwhile {len(await enabled(store))} enabled")
        finish.set()
        result = await stop
        order.append(f"stop returned ({result.cleanup['actions_still_running']} actions left)")
        await acting_task
        async with acting(store.redis):  # an action after the stop: nothing left to act on
            order.append(f"later operator read {len(await enabled(store))} enabled")
        await store.close()
        return order

    assert run(scenario()) == ["operator read 2 enabled", "meanwhile 0 enabled", "operator's PCS call done",
                               "stop returned (0 actions left)", "later operator read 0 enabled"]


def run(coro: Any) -> Any:
    return asyncio.run(coro)
