"""After Redis restarts, what is safe to repeat is repeated; nothing else is (store/connection.py).

A real redis-server is killed and started again on the same port while the
client's pool holds connections to the old one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from bos_server.store import Store, keys
from bos_server.store.cas import CasWriter, MISSING, Write, _args
from bos_server.store.connection import retry_safe
from bos_server.store.tokens import get_tokens
from bos_sim.stack import RedisServer

CONCURRENT = 30


def restarted(redis: RedisServer, workdir: Path) -> RedisServer:
    redis.proc.kill()
    redis.proc.wait()
    return RedisServer(workdir, port=redis.port)


async def fill_pool(store: Store) -> None:
    """Many pooled connections to the server that is about to go away."""
    await asyncio.gather(*(store.redis.get("k") for _ in range(CONCURRENT)))


def run(factory: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(factory())


def test_reads_and_compare_and_set_writes_survive_a_restart(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "r0")
    servers = [redis]

    async def scenario() -> list:
        store = Store.connect(redis.url)
        try:
            await fill_pool(store)
            servers.append(restarted(redis, tmp_path / "r1"))
            calls = [store.redis.get("k") for _ in range(CONCURRENT)]
            calls += [store.components.get_raw_many(["x1", "x2"]) for _ in range(5)]
            calls += [store.options.patch({"polling_frequency": 7 + n}) for n in range(5)]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await store.close()

    try:
        results = run(scenario)
        assert not [r for r in results if isinstance(r, BaseException)], results
    finally:
        servers[-1].stop()


def test_commands_that_are_not_safe_to_repeat_are_not_repeated(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "r0")
    servers = [redis]

    async def scenario() -> None:
        store = Store.connect(redis.url)
        try:
            await fill_pool(store)
            servers.append(restarted(redis, tmp_path / "r1"))
            with pytest.raises(RedisConnectionError):
                await store.redis.rpush("list", "item")  # may have run: never replayed
            assert await store.redis.lrange("list", 0, -1) == []
        finally:
            await store.close()

    try:
        run(scenario)
    finally:
        servers[-1].stop()


def test_the_command_classification() -> None:
    safe = {"abc"}
    assert retry_safe(("GET", "k"), safe) and retry_safe(("MGET", "a", "b"), safe)
    assert retry_safe(("SET", "k", "v"), safe) and retry_safe(("SET", "k", "v", "EX", 5), safe)
    assert not retry_safe(("SET", "k", "v", "NX"), safe) and not retry_safe(("SET", "k", "v", "GET"), safe)
    for command in (("DEL", "k"), ("RPUSH", "l", "v"), ("INCR", "k"), ("PUBLISH", "c", "m"), ("HSETNX", "h", "f", 1)):
        assert not retry_safe(command, safe), command
    assert retry_safe(("EVALSHA", "ABC", 0), safe) and not retry_safe(("EVALSHA", "other", 0), safe)


def test_a_replayed_compare_and_set_returns_its_first_outcome(redis_server: RedisServer) -> None:
    """The same script call twice (a reply lost, then the retry): one effect, one answer."""
    async def scenario() -> tuple:
        store = Store.connect(redis_server.url)
        try:
            key = keys.component("replay-x1")
            await store.redis.delete(key)
            writer = CasWriter(store.redis)
            create = Write(key, "replay-x1", MISSING, b'{"id": "replay-x1"}')
            args = _args([create], {}, keys.cas_receipt("test-replay"))
            await store.redis.delete(keys.cas_receipt("test-replay"))
            first = await writer._script(args=args)
            replay = await writer._script(args=args)
            return list(first), list(replay), await store.redis.get(key)
        finally:
            await store.close()

    first, replay, value = run(scenario)
    assert first == [] and replay == [], (first, replay)  # without the receipt the replay is a conflict
    assert value == b'{"id": "replay-x1"}'


async def _write_each(store: Store, ids: list) -> list:
    """One compare-and-set script run per ID, all at once (each on its own connection)."""
    return await asyncio.gather(*(store.components.cas.apply(
        [Write(keys.component(i), i, MISSING, b'{"id":"' + i.encode() + b'"}')]) for i in ids), return_exceptions=True)


def test_script_runs_reuse_their_connections_and_survive_a_restart(tmp_path: Path) -> None:
    """Script runs and the hot reads (run_kept, read_kept) keep idle connections aside
    (RetryingRedis.script_connections): a run takes one without asking the pool; after a restart those
    are dead, and the runs are still repeated (receipts; reads are safe to repeat)."""
    redis = RedisServer(tmp_path / "r0")
    servers = [redis]

    async def scenario() -> tuple:
        store = Store.connect(redis.url)
        try:
            assert await _write_each(store, [f"a{n}" for n in range(8)]) == [[]] * 8
            kept = list(store.redis.script_connections)
            asked = []
            real = store.redis.connection_pool.get_connection
            store.redis.connection_pool.get_connection = lambda *a, **k: asked.append(1) or real(*a, **k)
            for n in range(20):  # sequential runs: each takes a kept connection, the pool is never asked
                assert await _write_each(store, [f"b{n}"]) == [[]]
                assert await store.components.get_raw_many([f"b{n}", "none"]) == [b'{"id":"b%d"}' % n, None]
                assert await get_tokens(store.redis, [f"token-{n}"]) == {}
            store.redis.connection_pool.get_connection = real
            servers.append(restarted(redis, tmp_path / "r1"))
            reads = await asyncio.gather(*(store.components.get_raw_many([f"a{n}"]) for n in range(8)))
            after = await _write_each(store, [f"c{n}" for n in range(8)])
            assert reads == [[None]] * 8  # the restarted server is empty (no persistence)
            return kept, asked, after, await store.redis.exists(*[keys.component(f"c{n}") for n in range(8)])
        finally:
            await store.close()

    try:
        kept, asked, after, written = run(scenario)
        assert len(kept) >= 2 and asked == []
        assert after == [[]] * 8 and written == 8
    finally:
        servers[-1].stop()
