"""Session create in one round trip (store/session_create.py): the template this process checked is
guarded in the create script by its stored value (by that value's SHA-1 when it is larger than
INLINE_BYTES). With that guard switched off (mutant `stale-template`,
`make mutation`), a session is created from a template that changed or vanished after its check."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Dict, Iterator, Optional

import pytest
import redis as redis_lib

from bos_server.store import Store, keys
from bos_server.store.codec import dumps, loads
from bos_server.store.scoped import session_indexes
from bos_server.store.session_create import INLINE_BYTES, Outcome, SessionCreator
from bos_sim.stack import RedisServer

Record = Dict[str, Any]
TEMPLATE = {"name": "tpl", "tenant": None, "boot_sets": {"b1": {"node_list": ["x3000c0s19b1n0"], "type": "s3",
                                                                  "path": "s3://boot-images/manifest.json"}}}


@pytest.fixture
def url(redis_server: RedisServer, redis_client: redis_lib.Redis) -> Iterator[str]:
    redis_client.flushdb()
    yield redis_server.url


def session(name: str, tenant: Optional[str] = None) -> Record:
    return {"name": name, "tenant": tenant, "operation": "shutdown", "template_name": "tpl", "limit": "",
            "stage": False, "components": "", "include_disabled": False,
            "status": {"start_time": "2026-12-01T00:00:00", "end_time": None, "status": "pending", "error": None}}


async def create(store: Store, record: Record, tenant: Optional[str] = None) -> Outcome:
    checked = await store.session_creator.template(tenant, "tpl")
    assert checked is not None
    return await store.session_creator.create(record, session_indexes(record), checked)


def with_store(url: str, body: Callable[[Store], Awaitable[None]]) -> None:
    """Run one scenario against its own Store on `url`, closed whatever happens."""
    async def scenario() -> None:
        store = Store.connect(url)
        try:
            await body(store)
        finally:
            await store.close()
    asyncio.run(scenario())


def test_a_create_is_refused_when_the_checked_template_changed_and_the_new_one_is_cached(
        url: str, redis_client: redis_lib.Redis) -> None:
    async def scenario(store: Store) -> None:
        await store.templates.put(dict(TEMPLATE))
        assert await create(store, session("s1")) is Outcome.CREATED
        changed = {**TEMPLATE, "description": "changed by another process"}
        await store.redis.set(keys.template(None, "tpl"), dumps(changed))  # not through this process
        checked = await store.session_creator.template(None, "tpl")
        assert checked is not None and "description" not in checked.template  # this process's copy
        assert await store.session_creator.create(session("s2"), session_indexes(session("s2")),
                                                  checked) is Outcome.CHANGED
        assert await store.sessions.get(None, "s2") is None
        again = await store.session_creator.template(None, "tpl")
        assert again is not None and again.template["description"] == "changed by another process"
        assert await store.session_creator.create(session("s2"), session_indexes(session("s2")),
                                                  again) is Outcome.CREATED
    with_store(url, scenario)
    assert redis_client.zrange(keys.SESSIONS, 0, -1) == [b"\x00s1", b"\x00s2"]


def test_a_large_template_is_guarded_by_its_sha1_and_a_change_is_refused(url: str) -> None:
    """Larger than INLINE_BYTES: the script compares SHA-1s; the changed template comes back whole."""
    large = {**TEMPLATE, "description": "x" * INLINE_BYTES}

    async def scenario(store: Store) -> None:
        await store.templates.put(dict(large))
        checked = await store.session_creator.template(None, "tpl")
        assert checked is not None and checked.size > INLINE_BYTES and len(checked.guard) == 40
        assert await create(store, session("s1")) is Outcome.CREATED
        await store.redis.set(keys.template(None, "tpl"), dumps({**large, "description": "y" * INLINE_BYTES}))
        assert await store.session_creator.create(session("s2"), session_indexes(session("s2")),
                                                  checked) is Outcome.CHANGED
        assert await store.sessions.get(None, "s2") is None
        again = await store.session_creator.template(None, "tpl")
        assert again is not None and again.template["description"] == "y" * INLINE_BYTES
        assert await store.session_creator.create(session("s2"), session_indexes(session("s2")),
                                                  again) is Outcome.CREATED
    with_store(url, scenario)


def test_a_create_is_refused_when_the_checked_template_was_deleted(url: str) -> None:
    async def scenario(store: Store) -> None:
        await store.templates.put(dict(TEMPLATE))
        checked = await store.session_creator.template(None, "tpl")
        assert checked is not None
        assert await store.templates.delete(None, "tpl")
        record = session("s1")
        assert await store.session_creator.create(record, session_indexes(record), checked) is Outcome.CHANGED
        assert await store.sessions.get(None, "s1") is None
        assert await store.session_creator.template(None, "tpl") is None
    with_store(url, scenario)


def test_names_conflict_per_tenant_and_the_new_session_is_indexed_and_announced(
        url: str, redis_client: redis_lib.Redis) -> None:
    async def scenario(store: Store) -> None:
        pubsub = store.redis.pubsub()
        await pubsub.subscribe(keys.EVENTS_CHANNEL)
        try:
            confirmed = await pubsub.get_message(timeout=5.0)
            assert confirmed is not None and confirmed["type"] == "subscribe"
            await store.templates.put(dict(TEMPLATE))
            await store.templates.put({**TEMPLATE, "tenant": "t1"})
            first = session("s1")
            assert await store.session_creator.create(
                first, session_indexes(first), await store.session_creator.template(None, "tpl"),  # type: ignore[arg-type]
                b'{"kind":"sessions"}') is Outcome.CREATED
            assert await create(store, session("s1")) is Outcome.EXISTS
            assert await create(store, session("s1", "t1"), tenant="t1") is Outcome.CREATED
            assert loads(await store.redis.get(keys.session(None, "s1"))) == first
            messages = []
            while True:
                message = await pubsub.get_message(timeout=0.5)
                if message is None:
                    break
                messages.append(message["data"])
            assert messages == [b'{"kind":"sessions"}']
        finally:
            await pubsub.aclose()
    with_store(url, scenario)
    for index in session_indexes(session("s1")):
        assert redis_client.zscore(index, b"\x00s1") == 0
    assert redis_client.zrange(keys.sessions_by_tenant("t1"), 0, -1) == [b"t1\x00s1"]


def test_the_cache_keeps_at_most_its_byte_budget_and_a_larger_template_is_read_every_time(url: str) -> None:
    async def scenario(store: Store) -> None:
        creator = SessionCreator(store.redis, cache_bytes=1000)
        for n in range(8):
            await store.templates.put({**TEMPLATE, "name": f"t{n}"})
            assert await creator.template(None, f"t{n}") is not None
            assert creator.cached_bytes <= 1000
        await store.templates.put({**TEMPLATE, "name": "big", "description": "x" * 2000})
        big = await creator.template(None, "big")
        assert big is not None and big.size > 1000 and creator.cached_bytes <= 1000
        await store.redis.set(keys.template(None, "big"), dumps({**TEMPLATE, "name": "big"}))
        again = await creator.template(None, "big")  # not kept: read again
        assert again is not None and "description" not in again.template
    with_store(url, scenario)


def test_a_replayed_create_returns_its_first_outcome_not_a_conflict_with_itself(url: str) -> None:
    """After a dropped connection the store repeats the script call (connection.py): the receipt makes
    the replay answer `created`, as the first run did, instead of `exists`."""
    async def scenario(store: Store) -> None:
        await store.templates.put(dict(TEMPLATE))
        checked = await store.session_creator.template(None, "tpl")
        assert checked is not None
        record = session("s1")
        call = dict(keys=[keys.template(None, "tpl"), keys.session(None, "s1"), *sorted(session_indexes(record))],
                    args=[checked.guard, dumps(record), keys.scoped_member(None, "s1"), keys.EVENTS_CHANNEL, b"",
                          keys.cas_receipt("replayed")])
        script = store.session_creator._script
        assert await script(**call) == [b"created"]
        assert await script(**call) == [b"created"]  # the replay
        assert await create(store, session("s1")) is Outcome.EXISTS  # a new call conflicts
    with_store(url, scenario)


def test_a_create_whose_connection_drops_after_the_script_ran_is_replayed_and_answers_created(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The script runs on a pooled connection directly (connection.py `ReplayableScript`): a connection
    lost before the reply arrives is replayed, and the receipt answers the first run's outcome."""
    from bos_server.store import connection
    roundtrip = connection._roundtrip
    dropped = []

    async def drop_once_after_running(conn: Any, command: Any) -> Any:
        reply = await roundtrip(conn, command)
        if command[0] == "EVALSHA" and not dropped:
            dropped.append(command)
            await conn.disconnect()
            raise redis_lib.exceptions.ConnectionError("Connection closed by server.")
        return reply

    async def scenario(store: Store) -> None:
        await store.templates.put(dict(TEMPLATE))
        monkeypatch.setattr(connection, "_roundtrip", drop_once_after_running)
        assert await create(store, session("s1")) is Outcome.CREATED
        assert dropped and await store.redis.zcard(keys.SESSIONS) == 1
    with_store(url, scenario)
