"""Records written alike (store/alike.py, issue 13): one computation per shape, each record
still written as if it had been computed alone.

The differential test runs the same writes with and without `alike` on a flushed Redis
and compares everything stored (records, indexes, blobs, histories without their
clock-made entry IDs). The others go red when the key of a shape leaves out the stored
value or the writer, or when a taken record skips its own compare-and-set.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import orjson
import pytest
import redis as redis_lib

from bos_server.component_writes import merge
from bos_server.store import Store, keys
from bos_server.store.codec import loads
from bos_server.store.history import GS, US
from bos_server.store.record_form import unpack
from bos_sim.stack import RedisServer

Record = Dict[str, Any]
ARTS = {"kernel": "s3://boot-images/i1/kernel", "kernel_parameters": "console=ttyS0 " + "p" * 300,
        "initrd": "s3://boot-images/i1/initrd"}
ARTS2 = {**ARTS, "kernel_parameters": "console=ttyS1 " + "q" * 300}


@pytest.fixture
def url(redis_server: RedisServer, redis_client: redis_lib.Redis) -> str:
    redis_client.flushdb()
    return redis_server.url


def seeded(component_id: str, n: int) -> Record:
    """Records of three shapes (equal but for the ID within each), one with an error."""
    record: Record = {"id": component_id, "enabled": n % 3 == 1, "session": "s1" if n < 4 else "s2",
                      "desired_state": {"boot_artifacts": dict(ARTS), "configuration": "c1",
                                        "last_updated": "2026-12-01T00:00:00"},
                      "actual_state": {"boot_artifacts": dict(ARTS), "last_updated": "2026-12-01T00:00:01"},
                      "last_action": {"action": "powering_on", "failed": False}, "error": ""}
    if n == 5:
        record["error"] = "broken"
    return record


IDS = [f"x{n}" for n in range(8)]
PATCH = {"desired_state": {"boot_artifacts": dict(ARTS2), "configuration": "c2", "last_updated": "2026-12-02T00:00:00"},
         "session": "s3", "status": {"status_override": "on_hold"}, "enabled": True}


def stored(client: redis_lib.Redis, key: str) -> Record:
    return unpack(loads(client.get(key)))


def snapshot(client: redis_lib.Redis) -> Dict[str, Any]:
    """Everything stored; histories and the write feed without their entry IDs and blobs without their last use
    (clock-made)."""
    out: Dict[str, Any] = {}
    for key in sorted(k.decode() for k in client.keys("*")):
        if ":cas-receipt:" in key or key == keys.HISTORY_CLOCK:  # random names, one per call; the clock
            continue
        kind = client.type(key).decode()
        if key == keys.ARTIFACT_BLOBS:  # scored with the second of the last write
            out[key] = client.zrange(key, 0, -1)
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        elif key == keys.COMPONENT_WRITES:  # entries named by the clock: the members each write applied
            out[key] = sorted(member for _id, fields in client.xrange(key) for member in orjson.loads(fields[b"i"]))
        elif key.startswith(keys.component_history("")):
            out[key] = [entry.split(US.encode(), 1)[1] for entry in client.get(key).split(GS.encode())]
        else:
            out[key] = client.get(key)
    return out


def run_writes(url: str, alike: bool, calls: List[str]) -> None:
    async def scenario() -> None:
        store = Store.connect(url)
        try:
            seeds = {i: seeded(i, n) for n, i in enumerate(IDS)}

            def put(component_id: str, _old: Optional[Record]) -> Record:
                calls.append(component_id)
                return dict(seeds[component_id])
            shape_of = {i: (n % 3, n < 4, n == 5) for n, i in enumerate(IDS)}  # what seeded() depends on
            await store.components.update(IDS, put, alike=shape_of.__getitem__ if alike else None)

            def patch(component_id: str, old: Optional[Record]) -> Optional[Record]:
                calls.append(component_id)
                return merge(old, PATCH) if old is not None else None
            await store.components.update(IDS + ["missing"], patch, alike=(lambda _i: 0) if alike else None)
            await store.components.update(IDS, patch, alike=(lambda _i: 0) if alike else None)  # unchanged now
        finally:
            await store.close()
    asyncio.run(scenario())


def test_writes_alike_store_exactly_what_writes_one_by_one_store(url: str, redis_client: redis_lib.Redis) -> None:
    one_by_one: List[str] = []
    run_writes(url, False, one_by_one)
    expected = snapshot(redis_client)
    redis_client.flushdb()
    alike: List[str] = []
    run_writes(url, True, alike)
    assert snapshot(redis_client) == expected
    assert len(alike) < len(one_by_one) * 0.6, "records equal but for their IDs were computed one by one"
    record = stored(redis_client, keys.component("x3"))
    assert record["id"] == "x3" and record["session"] == "s3" and record["status"]["status_override"] == "on_hold"
    assert redis_client.zscore(keys.COMPONENT_ENABLED, "x3") is not None


def test_records_stored_differently_are_each_computed_from_their_own(url: str, redis_client: redis_lib.Redis) -> None:
    """One key for every record (the same patch), different stored values: no record is
    computed from another's (a lost update: x2's error)."""
    async def scenario() -> None:
        store = Store.connect(url)
        try:
            await store.components.update(["x1", "x2"], lambda cid, _o: {"id": cid, "enabled": False,
                                                                          "error": "x2's own" if cid == "x2" else ""})
            await store.components.update(["x1", "x2"], lambda _i, old: merge(old, {"retry_policy": 4}),
                                          alike=lambda _i: 0)
        finally:
            await store.close()
    asyncio.run(scenario())
    first, second = (stored(redis_client, keys.component(i)) for i in ("x1", "x2"))
    assert first["retry_policy"] == second["retry_policy"] == 4
    assert first["error"] == "" and second["error"] == "x2's own", "a record was computed from another's stored value"
    assert redis_client.zscore(keys.COMPONENT_ERRORED, "x2") is not None
    assert redis_client.zscore(keys.COMPONENT_ERRORED, "x1") is None


def test_each_writer_gets_its_own_history_entry(url: str, redis_client: redis_lib.Redis) -> None:
    async def scenario() -> None:
        store = Store.connect(url)
        try:
            await store.components.update(["x1", "x2"], lambda cid, _o: {"id": cid, "enabled": False})
            await store.components.update(["x1", "x2"], lambda _i, old: merge(old, {"error": "e"}),
                                          actors={"x1": "alice (admin)", "x2": "bob (admin)"}, alike=lambda _i: 0)
        finally:
            await store.close()
    asyncio.run(scenario())
    last = {i: redis_client.get(keys.component_history(i)).split(GS.encode())[-1].decode() for i in ("x1", "x2")}
    assert last["x1"].endswith("alice (admin)") and last["x2"].endswith("bob (admin)"), last


def test_a_record_taken_alike_is_still_compared_and_set_on_its_own_read(url: str,
                                                                         redis_client: redis_lib.Redis) -> None:
    """The update's first read is stale for x2 (another writer came after it): x2 must be
    recomputed from the new value, though x1 and x2 were read equal but for their IDs."""
    async def scenario() -> None:
        mine, other = Store.connect(url), Store.connect(url)
        try:
            await mine.components.update(["x1", "x2"], lambda cid, _o: {"id": cid, "enabled": False, "error": ""})
            read = dict(zip(["x1", "x2"], await mine.components.get_raw_many(["x1", "x2"])))
            await other.components.update(["x2"], lambda _i, old: {**old, "error": "set by the other writer"})
            await mine.components.update(["x1", "x2"], lambda _i, old: merge(old, {"retry_policy": 7}),
                                         read=read, alike=lambda _i: 0)
        finally:
            await mine.close()
            await other.close()
    asyncio.run(scenario())
    second = stored(redis_client, keys.component("x2"))
    assert second["retry_policy"] == 7, "our update was lost"
    assert second["error"] == "set by the other writer", "the concurrent write was lost"
    assert redis_client.zscore(keys.COMPONENT_ERRORED, "x2") is not None


def test_records_not_stored_with_their_id_first_are_computed_one_by_one(url: str,
                                                                         redis_client: redis_lib.Redis) -> None:
    """A stored value that does not begin with its ID (an older writer's key order) has no shape
    key: it is computed in full, and written correctly."""
    redis_client.set(keys.component("x1"), b'{"enabled":false,"id":"x1","error":""}')
    redis_client.zadd(keys.COMPONENT_IDS, {"x1": 0})
    calls: List[str] = []

    async def scenario() -> None:
        store = Store.connect(url)
        try:
            def compute(cid: str, old: Optional[Record]) -> Record:
                calls.append(cid)
                return merge(old, {"retry_policy": 1}) if old else {"id": cid, "enabled": False, "error": ""}
            await store.components.update(["x1", "x2", "x3"], compute, alike=lambda _i: 0)
        finally:
            await store.close()
    asyncio.run(scenario())
    assert sorted(calls) == ["x1", "x2"]  # x3 is taken from x2 (both absent)
    assert stored(redis_client, keys.component("x1"))["retry_policy"] == 1
    assert stored(redis_client, keys.component("x3")) == stored(redis_client, keys.component("x2")) | {"id": "x3"}


def test_ids_that_json_escapes_are_written_alike_correctly(url: str, redis_client: redis_lib.Redis) -> None:
    """The script makes a record's value from its ID only when JSON shows the ID as it is (cas.Shaped)."""
    ids = ['q"1', 'q"2', "back\\1", "back\\2", "é1", "é2", "tab\t1", "tab\t2", "x1", "x2"]

    async def scenario() -> None:
        store = Store.connect(url)
        try:
            await store.components.update(ids, lambda cid, _o: {"id": cid, "enabled": False, "retry_policy": 3},
                                          alike=lambda _i: 0)
        finally:
            await store.close()
    asyncio.run(scenario())
    for component_id in ids:
        record = stored(redis_client, keys.component(component_id))
        assert record["id"] == component_id and record["retry_policy"] == 3
