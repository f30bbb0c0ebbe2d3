"""An asyncio event loop on a virtual clock, for tests of timing logic (kopf's looptime idea).

`loop.time()` starts at 0 and only moves when nothing is ready to run: then it jumps straight
to the next timer. A test of "woken within DEBOUNCE" or "at most once per period" thus
asserts exact loop times instead of sleeping on the wall clock and hoping. Only code that
reads time through the loop (asyncio.sleep, wait_for, loop.time()) is virtualised; real
I/O still works, it just never makes the clock wait.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any, Awaitable, List, Optional, Tuple, TypeVar

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):
    """Polls for I/O without blocking; an idle wait advances the virtual clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: Optional[float] = None) -> List[Tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and timeout is not None and timeout > 0:
            self.now += timeout  # nothing to do until the next timer: jump to it
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


def run_virtual(coro: Awaitable[T]) -> T:
    """`asyncio.run` on a VirtualClockLoop."""
    loop = VirtualClockLoop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)  # type: ignore[arg-type]
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def loop_time() -> float:
    return asyncio.get_running_loop().time()


__all__: Any = ["VirtualClockLoop", "loop_time", "run_virtual"]
