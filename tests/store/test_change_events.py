"""Change events (operators.md §2.2): one per write request, never one for a refused write.

The compare-and-set script publishes a writer's event itself when none of its
writes conflicted (saving the writer a round trip, cas.py); after a conflict the
store publishes one event for everything it finally wrote. Each test reads the
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

from .test_cas import component_race

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
