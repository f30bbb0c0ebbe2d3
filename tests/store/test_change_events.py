"""Change events (operators.md §2.2): one per write request (one per chunk of a large one),
never one for a refused write.

The compare-and-set script publishes a writer's event itself when none of its
writes conflicted (saving the writer a round trip, cas.py); a large update's chunks
each announce their own writes so; after a conflict the store publishes one event for
everything else it finally wrote. Each test reads the
channel up to a marker published after the write, so "exactly one" needs no sleep.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterator, List

import pytest
import redis as redis_lib

from bos_server.store import Store, keys
from bos_server.store.codec import loads
from bos_sim.stack import RedisServer

from bos_server.store.components import WRITE_CHUNK, _chunks

from .test_cas import component_race, interposing

MARKER = b'{"kind":"marker"}'


@pytest.fixture
def url(redis_server: RedisServer, redis_client: redis_lib.Redis) -> Iterator[str]:
    redis_client.flushdb()
    yield redis_server.url


@pytest.fixture
def channel(redis_client: redis_lib.Redis) -> Iterator[Any]:
    pubsub = redis_client.pubsub()
    pubsub.subscribe(keys.EVENTS_CHANNEL)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    yield pubsub
    pubsub.close()


def events_until_marker(redis_client: redis_lib.Redis, pubsub: Any) -> List[Dict[str, Any]]:
    redis_client.publish(keys.EVENTS_CHANNEL, MARKER)
    out: List[Dict[str, Any]] = []
    while True:
        message = pubsub.get_message(timeout=5)
        assert message is not None, f"the marker never arrived (got {out})"
        if message["type"] != "message":
            continue
        if message["data"] == MARKER:
            return out
        out.append(loads(message["data"]))


def test_a_component_write_publishes_one_event(url: str, redis_client: redis_lib.Redis, channel: Any) -> None:
    async def write() -> None:
        store = Store.connect(url)
        try:
            await store.components.update(["x1", "x2"], lambda cid, _old: {"id": cid, "enabled": True})
            await store.components.update(["x1"], lambda cid, old: old)  # unchanged: no write, no event
        finally:
            await store.close()
    asyncio.run(write())
    events = events_until_marker(redis_client, channel)
    assert len(events) == 1, events
    assert events[0]["kind"] == "components" and events[0]["enabled"] is True
    assert sorted(change[0] for change in events[0]["changes"]) == ["x1", "x2"]


def test_a_conflicted_write_publishes_one_event_for_what_it_wrote(url: str, redis_client: redis_lib.Redis,
                                                                  channel: Any) -> None:
    asyncio.run(component_race(url, {"id": "x1", "enabled": False},
                               theirs=lambda old: {**old, "enabled": True},
                               ours=lambda old: {**old, "error": "e"}))
    events = events_until_marker(redis_client, channel)
    # ours created x1, theirs enabled it, ours (recomputed) set the error: three writes, three events
    assert [e["enabled"] for e in events] == [False, True, True], events
    assert events[-1]["changes"][0][4] is True, "the last event describes the record as finally written"


CHUNKED = 2 * WRITE_CHUNK + 100  # several compare-and-set calls (ComponentStore._round)


def _announced(events: List[Dict[str, Any]]) -> Dict[str, List[Any]]:
    """Each ID's changes over the events, in order."""
    out: Dict[str, List[Any]] = {}
    for event in events:
        for change in event.get("changes", ()):
            out.setdefault(change[0], []).append(change)
    return out


def test_each_chunk_of_a_large_update_is_announced_by_its_own_script(url: str, redis_client: redis_lib.Redis,
                                                                     channel: Any) -> None:
    """No PUBLISH round trip after the writes: the store itself publishes nothing."""
    ids = [f"x{n:05d}" for n in range(CHUNKED)]

    async def write() -> None:
        store = Store.connect(url)
        published: List[Any] = []

        async def publish(message: Dict[str, Any]) -> None:
            published.append(message)
        store.components.events.publish = publish  # type: ignore[method-assign]
        try:
            await store.components.update(ids, lambda cid, _old: {"id": cid, "enabled": False})
        finally:
            await store.close()
        assert published == [], "the store published an event of its own"
    asyncio.run(write())
    events = events_until_marker(redis_client, channel)
    assert len(events) == len(_chunks(CHUNKED)) > 1, [len(e.get("changes", ())) for e in events]
    assert {i: len(c) for i, c in _announced(events).items()} == dict.fromkeys(ids, 1)


def test_a_large_update_with_a_conflict_in_one_chunk_announces_each_record_once_as_written(
        url: str, redis_client: redis_lib.Redis, channel: Any) -> None:
    """The chunks without a conflict announce themselves; the rest, recomputed, in one event at the end."""
    ids = [f"x{n:05d}" for n in range(CHUNKED)]
    raced = ids[WRITE_CHUNK + 7]  # in the second chunk only

    async def write() -> None:
        mine, other = Store.connect(url), Store.connect(url)
        try:
            await mine.components.update(ids, lambda cid, _old: {"id": cid, "enabled": False, "error": ""})
            events_until_marker(redis_client, channel)  # the creation's events
            interloper = lambda: other.components.update([raced], lambda _id, old: {**old, "enabled": True})  # noqa: E731
            mine.components.get_raw_many = interposing(mine.components.get_raw_many, interloper)  # type: ignore
            await mine.components.update(ids, lambda _id, old: {**(old or {}), "error": "ours"})
        finally:
            await mine.close()
            await other.close()
    asyncio.run(write())
    announced = _announced(events_until_marker(redis_client, channel))
    assert sorted(announced) == ids
    assert len(announced[raced]) == 2, "the interloper's write and ours, once each"
    assert all(len(changes) == 1 for i, changes in announced.items() if i != raced)
    assert all(changes[-1][4] is True for changes in announced.values()), "announced as written: with our error"


def test_session_create_publishes_only_when_it_created(url: str, redis_client: redis_lib.Redis,
                                                       channel: Any) -> None:
    record = {"name": "s1", "tenant": None, "operation": "boot", "template_name": "t", "limit": "", "stage": False,
              "components": "", "include_disabled": False,
              "status": {"start_time": "2026-01-01T00:00:00", "end_time": None, "status": "pending", "error": None}}
    event = b'{"kind":"sessions","statuses":["pending"]}'

    async def create() -> List[bool]:
        store = Store.connect(url)
        try:
            return [await store.sessions.create(record, event=event), await store.sessions.create(record, event=event)]
        finally:
            await store.close()
    assert asyncio.run(create()) == [True, False]
    assert events_until_marker(redis_client, channel) == [{"kind": "sessions", "statuses": ["pending"]}]
