"""`bos-server --workers N`: workers die with their parent, even on SIGKILL, and one parent per port.

Real processes on loopback: the parent is killed with SIGKILL and its workers must
be gone within a bounded time; a second server on the same port is refused while
the first lives, and takes over at once after the first was killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Set

import pytest
import requests

from bos_sim.stack import BIN, ApiServer, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
GONE_WITHIN = 10.0  # seconds; PR_SET_PDEATHSIG acts at once, the watchdog within 0.5 s
# Workers are counted once the server answers; on a loaded 2-core CI machine the second one may
# still be starting then: a bound, not a speed check (each wait ends as soon as the count is right).
STARTED_WITHIN = 30.0


def children_of(pid: int) -> Set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_all(pids: Set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start(tmp_path: Path, redis_url: str, port: int = 0, workers: int = 2) -> ApiServer:
    return ApiServer(tmp_path / f"api-{port}-{workers}", redis_url, port=port or None,
                     extra_args=["--workers", str(workers)])


def test_workers_exit_when_the_parent_is_killed_with_sigkill(tmp_path: Path, redis_server) -> None:
    api = start(tmp_path, redis_server.url, workers=3)
    workers = set()
    try:
        wait_until(lambda: len(children_of(api.proc.pid)) == 3, STARTED_WITHIN, "three workers")
        workers = children_of(api.proc.pid)
        api.proc.kill()  # SIGKILL: no chance to forward anything
        api.proc.wait()
        wait_until(lambda: not any(alive(pid) for pid in workers), GONE_WITHIN, "workers to exit")
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{api.url}/v2/version", timeout=2)
    finally:
        kill_all(workers)
        api.stop()


def test_a_second_server_on_the_same_port_is_refused(tmp_path: Path, redis_server) -> None:
    first = start(tmp_path, redis_server.url)
    try:
        wait_until(lambda: len(children_of(first.proc.pid)) == 2, STARTED_WITHIN, "two workers")
        for workers in ("2", "1"):
            second = subprocess.run([str(BIN / "bos-server"), "--host", "127.0.0.1", "--port", str(first.port),
                                     "--redis-url", redis_server.url, "--workers", workers],
                                    capture_output=True, text=True, timeout=60)
            assert second.returncode != 0
            assert f"another bos-server is already serving port {first.port}" in second.stderr, second.stderr
        assert len(children_of(first.proc.pid)) == 2  # nobody added workers beside the first ones
        assert requests.get(f"{first.url}/v2/version", timeout=5).status_code == 200
    finally:
        assert first.stop() == 0


def test_a_new_server_takes_over_the_port_of_a_killed_one(tmp_path: Path, redis_server) -> None:
    old = start(tmp_path, redis_server.url)
    workers: Set[int] = set()
    replacement = None
    try:
        wait_until(lambda: len(children_of(old.proc.pid)) == 2, STARTED_WITHIN, "two workers")
        workers = children_of(old.proc.pid)
        old.proc.kill()
        old.proc.wait()
        wait_until(lambda: not any(alive(pid) for pid in workers), GONE_WITHIN, "old workers to exit")
        replacement = start(tmp_path / "new", redis_server.url, port=old.port)  # nothing of the old one left
        assert requests.put(f"{replacement.url}/v2/components/takeover1", json={"enabled": False},
                            timeout=10).status_code == 200
        wait_until(lambda: len(children_of(replacement.proc.pid)) == 2, STARTED_WITHIN, "two new workers")
    finally:
        kill_all(workers)
        old.stop()
        if replacement is not None:
            assert replacement.stop() == 0


ORPHAN = """
import os, threading, time
from bos_server.workers import _watch_parent
parent = os.getpid()
pid = os.fork()
if pid == 0:
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    time.sleep(60)
    os._exit(3)
print(pid, flush=True)
os._exit(0)
"""


def test_the_watchdog_alone_stops_an_orphaned_worker() -> None:
    """The fallback where PR_SET_PDEATHSIG does not exist or came too late: no prctl here."""
    out = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True, timeout=60)
    orphan = int(out.stdout.strip())
    try:
        wait_until(lambda: not alive(orphan), GONE_WITHIN, "the orphan to stop")
    finally:
        kill_all({orphan})
