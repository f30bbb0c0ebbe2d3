"""One timer heap for every delayed event of every node.

A task (or timer handle) per node would cost kilobytes each and swamp the event
loop at 100,000 nodes; a heap of (due, seq, callback, args) processed by one
task costs a tuple per pending event. Delays are given in simulated seconds and
divided by the speed factor; changing the speed rescales what is pending.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Tuple

LOG = logging.getLogger(__name__)

# Events run between yields to the loop, so HTTP handlers stay responsive during a storm.
BATCH = 2000
# How late a timed event may run: the loop is woken at most once per SLACK for events that come due
# one by one (10,000 jittered nodes going off within a second woke it every ~0.1 ms). Late, never
# early: a simulated step lasts at least what was drawn, so a session's measured overhead over the
# drawn hardware time can only grow by it (at most SLACK per step on a node's path).
SLACK = 0.001

Entry = Tuple[float, int, Callable[..., Any], Tuple[Any, ...]]


class Scheduler:
    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._heap: List[Entry] = []
        # Events due at once (no delay), in (due, seq) order already: the clock only moves on.
        # Kept out of the heap: with zero delays (bench.boot's zero latency) most events are
        # these, and a push and a pop through a heap holding every node's next report cost a
        # tenth of the simulator's CPU in a 20,000-node boot (issue 13).
        self._ready: Deque[Entry] = deque()
        self._seq = itertools.count()
        self._waiter: Optional["asyncio.Future[None]"] = None  # what `run` awaits, until the next event is due
        self._loop: Optional[asyncio.AbstractEventLoop] = None  # the running loop, once `run` runs on it
        self.processed = 0

    def _now(self) -> float:
        loop = self._loop
        return (loop if loop is not None else asyncio.get_running_loop()).time()

    def call_later(self, sim_seconds: float, callback: Callable[..., Any], *args: Any) -> None:
        """Run `callback(*args)` after `sim_seconds` of simulated time."""
        if not sim_seconds > 0:  # none (or a negative or NaN delay, which max(0, ...) made none)
            self._ready.append((self._now(), next(self._seq), callback, args))
            _wake(self._waiter)
            return
        due = self._now() + sim_seconds / self.speed
        entry = (due, next(self._seq), callback, args)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            _wake(self._waiter)

    def set_speed(self, speed: float) -> None:
        """Change the speed; pending events keep their remaining simulated time."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        now = self._now()
        ratio = self.speed / speed
        self._heap.extend(self._ready)  # rescaled with the rest, as when they were in the heap
        self._ready.clear()
        self._heap = [(now + max(0.0, due - now) * ratio, seq, cb, args) for due, seq, cb, args in self._heap]
        heapq.heapify(self._heap)  # overdue entries collapse to `now`, so sequence order may change
        self.speed = speed
        _wake(self._waiter)

    def pending(self) -> int:
        return len(self._heap) + len(self._ready)

    def _first(self) -> Optional[Entry]:
        """The next event in (due, seq) order: the earlier of the heap's head and the first ready one."""
        heap, ready = self._heap, self._ready
        if ready and (not heap or ready[0] < heap[0]):
            return ready[0]
        return heap[0] if heap else None

    async def run(self) -> None:
        """Process due events forever (cancel the task to stop). Between events it awaits a plain
        future that a loop timer SLACK after the next due time, or an event due at once, completes:
        `asyncio.wait_for` on an Event (a task and a timeout per wait), woken for each event, was
        most of the simulator's CPU while 10,000 jittered nodes went off one every ~0.1 ms in a
        realistic reboot (issue 13)."""
        loop = self._loop = asyncio.get_running_loop()
        while True:
            await self._run_due()
            first = self._first()
            if first is not None and first[0] <= self._now():
                continue
            waiter = self._waiter = loop.create_future()
            timer = loop.call_at(first[0] + SLACK, _wake, waiter) if first is not None else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()

    async def _run_due(self) -> None:
        """Run what is due, reading the clock once per BATCH events (and once more when the
        next event is not due by the last reading): a clock read per event was a twentieth of
        the simulator's CPU in a 30,000-node boot (issue 13). Events due by the reading run in
        (due, seq) order, ready ones and the heap's merged; one that becomes due meanwhile runs
        at the next reading, as before."""
        done = 0
        heap, ready = self._heap, self._ready
        now = self._now()
        while heap or ready:
            from_ready = bool(ready) and (not heap or ready[0] < heap[0])
            due = ready[0][0] if from_ready else heap[0][0]
            if due > now:
                now = self._now()
                if due > now:
                    break
            _, _, callback, args = ready.popleft() if from_ready else heapq.heappop(heap)
            self._call(callback, args)
            done += 1
            if done % BATCH == 0:
                await asyncio.sleep(0)
                heap = self._heap  # set_speed may have replaced it meanwhile
                now = self._now()
        self.processed += done

    @staticmethod
    def _call(callback: Callable[..., Any], args: Tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception:  # one bad event must not stop every node's clock
            LOG.exception("simulated event %s%r failed", getattr(callback, "__qualname__", callback), args[:2])


def _wake(waiter: "Optional[asyncio.Future[None]]") -> None:
    """Let `Scheduler.run` look at its events again (no-op when it is not waiting, or already woken)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
