"""Several server processes on one port (SO_REUSEPORT), supervised by the parent.

Every request handler is stateless apart from caches with bounded staleness
(api.md §6.2), so workers need no coordination. The parent forks before any
event loop or connection exists, forwards SIGTERM/SIGINT, and exits non-zero if
a worker dies on its own.

Workers never outlive their parent, even when it is killed with SIGKILL: each
asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG, Linux), and a
watchdog thread compares the parent PID every WATCH_SECONDS as a fallback (other
systems, or a parent that died before the request took effect). SIGTERM then
shuts the worker down cleanly.

One parent per port: SO_REUSEPORT would let a second `bos-server --workers N` on
the same port add N more workers beside the first. The parent (and a
single-process server) first claims the port with an abstract Unix socket named
after it, which lives exactly as long as its process and in the same network
namespace as the TCP port; a second server finds it taken and exits with a clear
message. Workers close their copy, so once a parent is gone (even by SIGKILL) a
new one can take over at once while the old workers finish.

Once the workers are forked, the parent needs nothing it imported (aiohttp, redis,
the API: ≈45 MiB of a 2-worker server's RSS, issue 13's API memory bound), so it
replaces its image with a bare interpreter running supervisor.py as a script
(`python -I -S`, ≈9 MiB): the same PID (the workers' parent-death signal and
watchdog still see it), the same children, the port claim's descriptor kept open
across exec. SIGTERM and SIGINT are blocked over the exec, so one sent meanwhile
waits for the new image's handler instead of killing it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Callable, Dict, List, Optional

from .libc import function
from .supervisor import supervise_and_remove

LOG = logging.getLogger("bos_server.workers")
PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.5
CLAIM_WAIT_SECONDS = 1.0


class PortTaken(RuntimeError):
    """Another bos-server process already serves this port."""


def claim_port(port: int, wait: float = CLAIM_WAIT_SECONDS) -> Optional[socket.socket]:
    """Hold the port for this process; PortTaken if another server holds it (after `wait` s).

    Returns None where abstract Unix sockets do not exist (not Linux): there the
    bind of the listening socket is the only check.
    """
    if not sys.platform.startswith("linux"):
        return None
    deadline = time.monotonic() + wait
    while True:
        guard = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            guard.bind(f"\0bos-server-port-{port}")
            guard.set_inheritable(False)
            return guard
        except OSError:
            guard.close()
            if time.monotonic() >= deadline:
                raise PortTaken(f"another bos-server is already serving port {port}; stop it first "
                                "(a second one would add its workers beside the first one's)") from None
            time.sleep(0.1)


def die_with_parent(parent: int) -> None:
    """In a worker: get SIGTERM when `parent` exits, however it exits."""
    prctl = function("prctl")  # Linux only
    if prctl is not None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            LOG.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d); relying on the watchdog", ctypes.get_errno())
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watchdog", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    LOG.error("The bos-server parent (pid %d) is gone; stopping this worker", parent)
    os.kill(os.getpid(), signal.SIGTERM)


def run_workers(count: int, serve: Callable[[], None], guard: Optional[socket.socket] = None,
                remove: Optional[str] = None) -> int:
    """Fork `count` workers running `serve`, then supervise them (see the module docstring).

    `remove`: a directory to delete once every worker has exited (the metrics files).
    """
    children: Dict[int, int] = {}
    parent = os.getpid()
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            if guard is not None:
                guard.close()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            die_with_parent(parent)
            serve()
            os._exit(0)
        children[pid] = index
    _become_supervisor(list(children), guard, remove)  # returns only if the exec failed
    return supervise_and_remove(list(children), remove)


def _become_supervisor(children: List[int], guard: Optional[socket.socket], remove: Optional[str]) -> None:
    """Replace this process's image with supervisor.py, run by a bare interpreter, supervising `children`."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "supervisor.py")
    if not os.path.isfile(script):  # not installed as files (a zip): supervise from this process
        LOG.warning("No %s; supervising from this process", script)
        return
    argv = [sys.executable, "-I", "-S", script, *map(str, children)]
    if remove:
        argv += ["--remove", remove]
    if guard is not None:
        os.set_inheritable(guard.fileno(), True)  # the claim lives as long as this PID
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        os.execv(sys.executable, argv)
    except OSError as exc:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        LOG.warning("Could not start the slim supervisor (%s); supervising from this process", exc)


