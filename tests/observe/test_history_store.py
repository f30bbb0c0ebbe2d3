"""The history entry is part of the compare-and-set write (store/cas.py): appended only when
the record write is applied, bounded by count, and its ids increase per component."""

from __future__ import annotations

import asyncio

import redis as redis_lib
from redis.asyncio import Redis

from bos_server.store import keys
from bos_server.store.cas import CasWriter, Write, digest
from bos_server.store.history import HistorySettings, decode, entry, read


def _record(error: str) -> dict:
    return {"id": "h1", "enabled": True, "error": error, "session": "s"}


async def _scenario(url: str) -> list:
    redis = Redis.from_url(url)
    writer = CasWriter(redis, HistorySettings(max_entries=3, max_age=3600))
    try:
        await redis.delete("rec:h1", keys.component_history("h1"))
        assert await writer.apply([Write("rec:h1", "h1", "", b"v1", history=entry(None, _record("")))]) == []
        # a stale writer (expects the record to be missing): refused, and no history entry either
        assert await writer.apply([Write("rec:h1", "h1", "", b"v2", history=entry(_record(""), _record("x")))]) == [0]
        assert len(decode(await redis.get(keys.component_history("h1")))) == 1
        for n in range(5):
            current = await redis.get("rec:h1")
            new = f"v{n + 3}".encode()
            await writer.apply([Write("rec:h1", "h1", digest(current), new, history=entry(_record(""), _record(str(n))))])
        return await read(redis, writer.history, "h1", None, 100)  # type: ignore[arg-type]
    finally:
        await redis.aclose()


def test_history_is_written_with_the_record_only(redis_server, redis_client: redis_lib.Redis) -> None:
    entries = asyncio.run(_scenario(redis_server.url))
    assert [e["error"] for e in entries] == ["2", "3", "4"]  # bounded to 3, newest kept
    ids = [tuple(map(int, e["id"].split("-"))) for e in entries]
    assert ids == sorted(ids) and len(set(ids)) == 3
