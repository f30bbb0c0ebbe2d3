"""The simulator's timer (simulator/scheduler.py): events run in (due, sequence) order whether
they wait in the heap or, due at once, in the ready queue beside it. Driven in-process on a
clock the test moves (no sleeps)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any, Callable, List, Tuple

import pytest
from hypothesis import given, settings, strategies as st

from bos_sim.scheduler import SLACK, Scheduler


class Clock:
    """Stands in for the running loop: only `time()` is read."""

    def __init__(self) -> None:
        self.now = 100.0

    def time(self) -> float:
        return self.now


class HeapOnly:
    """The reference: every event through one heap of (due, seq, callback, args)."""

    def __init__(self, clock: Clock, speed: float) -> None:
        self.clock, self.speed = clock, speed
        self.heap: List[Tuple[float, int, Callable[..., Any], Tuple[Any, ...]]] = []
        self.seq = itertools.count()

    def call_later(self, sim_seconds: float, callback: Callable[..., Any], *args: Any) -> None:
        heapq.heappush(self.heap, (self.clock.now + max(0.0, sim_seconds) / self.speed, next(self.seq), callback, args))

    def set_speed(self, speed: float) -> None:
        now, ratio = self.clock.now, self.speed / speed
        self.heap = [(now + max(0.0, due - now) * ratio, seq, cb, args) for due, seq, cb, args in self.heap]
        heapq.heapify(self.heap)
        self.speed = speed

    async def _run_due(self) -> None:
        while self.heap and self.heap[0][0] <= self.clock.now:
            _, _, callback, args = heapq.heappop(self.heap)
            callback(*args)


DELAYS = st.sampled_from([0.0, 0.0, 0.0, -1.0, 0.5, 1.0, 2.0])
STEPS = st.lists(st.one_of(
    st.tuples(st.just("later"), DELAYS, st.sampled_from([None, 0.0, 1.0])),  # an event; it may schedule another
    st.tuples(st.just("tick"), st.sampled_from([0.0, 0.3, 1.0, 2.5]), st.none()),  # the clock moves on
    st.tuples(st.just("run"), st.just(0.0), st.none()),
    st.tuples(st.just("speed"), st.sampled_from([0.5, 2.0]), st.none())), max_size=40)


def _order(make: Callable[[Clock], Any], steps: List[Tuple[str, float, Any]]) -> List[Tuple[int, float]]:
    """(event number, clock time) of each event run, in the order they ran."""
    clock = Clock()
    sched = make(clock)
    ran: List[Tuple[int, float]] = []
    count = itertools.count()

    def event(number: int, then: Any) -> None:
        ran.append((number, clock.now))
        if then is not None:
            sched.call_later(then, event, next(count), None)

    for kind, value, then in steps + [("tick", 10.0, None), ("run", 0.0, None)]:
        if kind == "later":
            sched.call_later(value, event, next(count), then)
        elif kind == "tick":
            clock.now += value
        elif kind == "run":
            asyncio.run(sched._run_due())
        else:
            sched.set_speed(value)
    return ran


def _scheduler(clock: Clock) -> Scheduler:
    sched = Scheduler()
    sched._loop = clock  # type: ignore[assignment]
    return sched


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_events_run_in_due_order_whether_ready_at_once_or_waiting_in_the_heap(steps) -> None:
    assert _order(_scheduler, steps) == _order(lambda clock: HeapOnly(clock, 1.0), steps)


def test_a_waiting_event_due_before_a_ready_one_runs_first() -> None:
    steps = [("later", 1.0, None), ("tick", 2.5, None), ("later", 0.0, None), ("run", 0.0, None)]
    assert [number for number, _ in _order(_scheduler, steps)] == [0, 1]


def test_the_loop_is_woken_slack_after_the_next_timed_event_so_events_due_one_by_one_share_a_wake() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        real, armed, was_armed = loop.call_at, [], asyncio.Event()

        def spy(when: float, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
            if getattr(callback, "__module__", "") == "bos_sim.scheduler":  # the scheduler's timer, not wait_for's
                armed.append(when)
                was_armed.set()
            return real(when, callback, *args, **kwargs)

        loop.call_at = spy  # type: ignore[method-assign]
        sched = Scheduler()
        sched.call_later(60.0, lambda: None)
        task = asyncio.create_task(sched.run())
        await asyncio.wait_for(was_armed.wait(), 10)
        assert armed[-1] - sched._heap[0][0] == pytest.approx(SLACK)
        assert SLACK >= 0.001  # events due within a millisecond of the first share its wake
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    asyncio.run(main())


def test_a_timed_event_never_runs_before_it_is_due_and_one_due_at_once_runs_first() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sched = Scheduler()
        task = asyncio.create_task(sched.run())
        ran: List[Tuple[str, float]] = []
        done = asyncio.Event()

        def event(name: str) -> None:
            ran.append((name, loop.time()))
            if len(ran) == 2:
                done.set()
        sched.call_later(0.002, event, "timed")
        due = sched._heap[0][0]
        sched.call_later(0.0, event, "at once")
        await asyncio.wait_for(done.wait(), 10)
        assert [name for name, _at in ran] == ["at once", "timed"]
        assert ran[1][1] >= due
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    asyncio.run(main())
