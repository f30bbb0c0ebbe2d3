"""bench.changes: the end-to-end driver sees a session's milestones when the store's change
event arrives, not at its next poll (each wall time held up to 0.1 s of polling before).

No timed assert: each test waits on a condition; the waits' bounds only keep a broken build
from hanging.
"""

from __future__ import annotations

import threading
from typing import Iterator, List

import pytest
import redis as redis_lib

from bench.changes import ChangeEvents, wakes
from bench.common import wait_for
from bos_server.store import keys
from bos_server.store.events import components_message, encoded, sessions_message

FLAG = "bench-test:milestone"
BOUND = 60.0  # s: only a broken build waits this long
NEVER = 3600.0  # s: a fallback poll no test outlives


@pytest.fixture
def events(redis_client: redis_lib.Redis) -> Iterator[ChangeEvents]:
    redis_client.delete(FLAG)
    listener = ChangeEvents(redis_client, fallback=NEVER).start()
    assert listener.subscribed.wait(BOUND), "Redis never confirmed the subscription"
    yield listener
    listener.close()
    redis_client.delete(FLAG)


def test_a_session_event_ends_the_wait_that_the_poll_would_not_end_for_an_hour(
        redis_client: redis_lib.Redis, events: ChangeEvents) -> None:
    checks: List[bool] = []
    checked = threading.Condition()

    def reached() -> bool:
        with checked:
            checks.append(redis_client.get(FLAG) is not None)
            checked.notify_all()
        return checks[-1]

    waiter = threading.Thread(target=wait_for, args=(reached, NEVER, "the milestone"),
                              kwargs={"sleep": events.sleep}, daemon=True)
    waiter.start()
    with checked:
        assert checked.wait_for(lambda: checks, BOUND)  # the first check saw nothing: the waiter sleeps
    redis_client.set(FLAG, 1)  # the write, then its event (as the API publishes them)
    redis_client.publish(keys.EVENTS_CHANNEL, encoded(sessions_message(["complete"])))
    waiter.join(BOUND)
    assert not waiter.is_alive(), "the event did not wake the wait (it slept for the hour-long fallback poll)"
    assert checks[0] is False and checks[-1] is True


def test_what_wakes_the_driver() -> None:
    assert wakes(encoded(sessions_message(["running"])))
    assert wakes(encoded(components_message([("stable", False)], [["x1", "s", "", "stable", False]])))
    assert wakes(encoded(components_message([("stable", False)] * 3)))
    assert wakes(b"not json")  # unreadable: a needless check costs little, a missed milestone a wall
    # a boot's reports (enabled records only: most of the messages) cannot empty the enabled index
    assert not wakes(encoded(components_message([("stable", False), ("configuring", True)])))
    assert not wakes(encoded(components_message([("power_on_pending", True)] * 2800)))


def test_a_lost_subscription_falls_back_to_the_fast_poll(redis_client: redis_lib.Redis, events: ChangeEvents) -> None:
    assert events.period(0.1) == NEVER
    host, port = events._connection._sock.getsockname()[:2]
    redis_client.client_kill(f"{host}:{port}")
    events._thread.join(BOUND)
    assert not events._thread.is_alive() and not events.subscribed.is_set()
    assert events.period(0.1) == 0.1
