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
        self._wake: Optional[asyncio.Event] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None  # the running loop, once `run` runs on it
        self.processed = 0

    def _now(self) -> float:
        loop = self._loop
        return (loop if loop is not None else asyncio.get_running_loop()).time()

    def call_later(self, sim_seconds: float, callback: Callable[..., Any], *args: Any) -> None:
        """Run `callback(*args)` after `sim_seconds` of simulated time."""
        if not sim_seconds > 0:  # none (or a negative or NaN delay, which max(0, ...) made none)
            self._ready.append((self._now(), next(self._seq), callback, args))
            if self._wake is not None:
                self._wake.set()
            return
        due = self._now() + sim_seconds / self.speed
        entry = (due, next(self._seq), callback, args)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry and self._wake is not None:
            self._wake.set()

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
        if self._wake is not None:
            self._wake.set()

    def pending(self) -> int:
        return len(self._heap) + len(self._ready)

    def _first(self) -> Optional[Entry]:
        """The next event in (due, seq) order: the earlier of the heap's head and the first ready one."""
        heap, ready = self._heap, self._ready
        if ready and (not heap or ready[0] < heap[0]):
            return ready[0]
        return heap[0] if heap else None

    async def run(self) -> None:
        """Process due events forever (cancel the task to stop)."""
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        while True:
            await self._run_due()
            first = self._first()
            timeout = first[0] - self._now() if first is not None else None
            self._wake.clear()
            if timeout is not None and timeout <= 0:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

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
