"""Several server processes on one port (SO_REUSEPORT), supervised by the parent.

Every request handler is stateless apart from caches with bounded staleness
(api.md §6.2), so workers need no coordination. The parent forks before any
event loop or connection exists, forwards SIGTERM/SIGINT, and exits non-zero if
a worker dies on its own.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Callable, Dict

LOG = logging.getLogger("bos_server.workers")


def run_workers(count: int, serve: Callable[[], None]) -> int:
    children: Dict[int, int] = {}
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            serve()
            os._exit(0)
        children[pid] = index
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    while children:
        pid, code = os.wait()
        children.pop(pid, None)
        if not stopping:
            LOG.error("Worker %d exited unexpectedly (status %d); stopping the others", pid, code)
            status = 1
            forward(signal.SIGTERM, None)
    return status
