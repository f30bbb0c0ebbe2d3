"""A per-worker gate on requests with large bodies (issue 13: API memory at 100,000 nodes).

At the start of a 100,000-node session the operators send dozens of bulk writes of
2,800 components at once, and each API worker was handling 8-10 of them together:
their bodies, decoded items and the records read and written all alive at the same
time. The memory of that peak is not given back afterwards: CPython's allocator keeps
each 1 MiB arena of small objects as long as one block in it lives, and the few
objects that outlive a request (pooled connections, caches) are scattered over the
arenas the peak made. So the peak of concurrent bulk work sets the worker's RSS for
good, and a worker gains nothing from it anyway: it has one core (eight such writes took
the same CPU and wall time one at a time as all at once).

The gate lets at most `permits` requests with a large body (LARGE_BODY, 64 KiB or more,
or a chunked body of unknown size) into their handler at once; the others wait in
arrival order *before their body is read*: what a waiting request holds is its
headers and what aiohttp buffers before it stops reading the socket (at most 128 KiB),
never its decoded body. A permit is held from the first body byte read to the last
response byte written and is given back however the handler ends (error, client gone,
cancelled); so a client that sends its body or reads its answer slowly delays the
large requests behind it in its worker (the gate comes after authentication: only
authorised clients can), but for MAX_WAIT at most: a request that has waited that long
goes ahead without a permit. The gate bounds memory, a soft limit; a stalled upload
(aiohttp has no body read time-out) must not stop every operator's bulk writes in its
worker. A request holds at most one permit and its handler awaits nothing that
needs another one, so the gate cannot deadlock; requests with small bodies (node
reports, session creates, reads) never wait for it.

Setting: `--large-body-concurrency` / BOS_LARGE_BODY_CONCURRENCY (0 = no gate).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Awaitable, Callable, Deque, Optional

from aiohttp import web

# A body this large is a bulk write of a few hundred components or more (~150 bytes each without
# desired state; 2,800 with boot artifacts are ~1-4 MB), whose records take MiB while it runs;
# node reports and session creates are under a few KiB.
LOG = logging.getLogger("bos_server.api")
LARGE_BODY = 64 * 1024
MAX_WAIT = 10.0  # seconds; a 100k session's start queues ~10 writes of ~0.15 s per worker
# Off by default: on the idle machine a 100,000-node boot + reboot took 373 s of CPU with 1 or 2
# permits (3 runs) against 275 s without (python -m bench.boot --nodes 100000, 2026-12-02): the
# queued writes slowed the operators, whose extra passes cost more than the memory saved.
DEFAULT_PERMITS = 0
GATE = web.AppKey("bos.large_body_gate", object)  # the worker's Gate, when on
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gate:
    """FIFO permits (asyncio's Semaphore lets a newcomer overtake a woken waiter on some versions)."""

    def __init__(self, permits: int, max_wait: float = MAX_WAIT) -> None:
        if permits < 1:
            raise ValueError("a gate needs at least one permit")
        self.permits = permits
        self.max_wait = max_wait  # then a waiter goes ahead without a permit (see the module)
        self.inside = 0  # requests holding a permit
        self._free = permits
        self._waiters: Deque["asyncio.Future[None]"] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def acquire(self) -> None:
        if self._free and not self._waiters:
            self._free -= 1
            self.inside += 1
            return
        waiter: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._waiters.remove(waiter)
                self._hand_on()  # granted, then cancelled before it ran: the next one gets the permit
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        self._waiters.remove(waiter)
        self.inside += 1

    def release(self) -> None:
        self.inside -= 1
        self._hand_on()

    def _hand_on(self) -> None:
        """Give a permit to the longest waiter not granted yet, else put it back."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


def has_large_body(request: web.Request) -> bool:
    """A body of LARGE_BODY bytes or more, or of unknown length (chunked)."""
    if not request.body_exists:
        return False
    length = request.content_length
    return length is None or length >= LARGE_BODY


def install(app: web.Application, permits: int) -> None:
    """Give each worker's application its gate (`permits` 0: none)."""
    if permits > 0:
        app[GATE] = Gate(permits)


@web.middleware
async def large_body_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    gate: Optional[Gate] = request.app.get(GATE)  # type: ignore[assignment]
    if gate is None or not has_large_body(request):
        return await handler(request)
    try:
        async with asyncio.timeout(gate.max_wait):
            await gate.acquire()
    except TimeoutError:
        LOG.warning("%s %s waited %.0f s for the large-body gate (--large-body-concurrency %d): "
                    "going ahead without it", request.method, request.path, gate.max_wait, gate.permits)
        return await handler(request)
    try:
        return await handler(request)
    finally:
        gate.release()
