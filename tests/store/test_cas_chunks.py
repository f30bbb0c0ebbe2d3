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
from bos_server.store.components import FIRST_CHUNK, WRITE_CHUNK
from bos_sim.stack import RedisServer

from .test_cas import interposing

COUNT = 2 * WRITE_CHUNK + 100  # five chunks (components._chunks)


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


def _counting_reads(store: Store) -> List[int]:
    """How many IDs each get_raw_many call of `store`'s components asked for (appended as they are made)."""
    asked: List[int] = []
    read = store.components.get_raw_many

    async def counted(ids: Any) -> Any:
        asked.append(len(ids))
        return await read(ids)
    store.components.get_raw_many = counted  # type: ignore[method-assign]
    return asked


def test_a_large_update_that_expects_its_records_absent_writes_them_without_reading_them(
        url: str, redis_client: redis_lib.Redis) -> None:
    """`absent` (a PUT: a seed creates its records): no record is read before its write; each is written
    with the compare-and-set's "absent", and joins its indexes."""
    ids = [f"x{n:05d}" for n in range(COUNT)]

    async def scenario() -> List[int]:
        store = Store.connect(url)
        try:
            asked = _counting_reads(store)
            written = await store.components.update(ids, lambda cid, _old: {"id": cid, "enabled": True, "error": ""},
                                                    absent=True)
            assert list(written) == ids
            return asked
        finally:
            await store.close()
    assert asyncio.run(scenario()) == [], "a record expected absent was read before its write"
    assert redis_client.zcard(keys.COMPONENT_IDS) == redis_client.zcard(keys.COMPONENT_ENABLED) == COUNT


@pytest.mark.parametrize("existing", [(FIRST_CHUNK, WRITE_CHUNK + 7), (7, WRITE_CHUNK + 7)],
                         ids=["probed", "between-probes"])
def test_records_that_exist_in_an_update_expecting_them_absent_are_computed_from_what_they_hold(
        url: str, redis_client: redis_lib.Redis, existing: Any) -> None:
    """A record that does exist is refused by the compare-and-set and computed again from a read: no
    update is lost, whether the probe found one (the rest is read) or not (each is a conflict)."""
    ids = [f"x{n:05d}" for n in range(COUNT)]
    there = [ids[n] for n in existing]

    async def scenario() -> List[int]:
        store = Store.connect(url)
        try:
            await store.components.update(there, lambda cid, _old: {"id": cid, "enabled": True, "error": "before"})
            asked = _counting_reads(store)
            written = await store.components.update(ids, lambda cid, old: {"id": cid, "enabled": False,
                                                                           **(old or {}), "error": "ours"},
                                                    absent=True)
            assert all(written[i]["enabled"] is True for i in there)
            return asked
        finally:
            await store.close()
    asked = asyncio.run(scenario())
    records = {i: loads(raw) for i, raw in zip(ids, redis_client.mget([keys.component(i) for i in ids]))}
    assert all(r["error"] == "ours" for r in records.values())
    assert sorted(i for i, r in records.items() if r["enabled"]) == sorted(there), "a stored record was overwritten"
    assert sorted(m.decode() for m in redis_client.zrange(keys.COMPONENT_ENABLED, 0, -1)) == sorted(there)
    assert redis_client.zcard(keys.COMPONENT_IDS) == COUNT
    if existing[0] == FIRST_CHUNK:  # the probe (the first after the first chunk, ...) found one: those were read
        assert asked[0] == COUNT - FIRST_CHUNK


def test_a_seed_puts_second_call_is_small_enough_to_be_planned_while_the_first_runs() -> None:
    """A 1,000-record PUT is four calls, the second SECOND_CHUNK records (planned while the first
    call's 100 run in Redis), not 500 (Redis idle while they were planned); a few hundred keep theirs."""
    from bos_server.store.components import SECOND_CHUNK, _chunks
    assert [part.stop - part.start for part in _chunks(1000)] == [FIRST_CHUNK, SECOND_CHUNK, 500, 200]
    assert [part.stop - part.start for part in _chunks(600)] == [FIRST_CHUNK, 300, 200]
