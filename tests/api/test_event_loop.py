"""Every process that serves the API runs on uvloop (issue 13: about a sixth less API CPU per
request than asyncio's own loop). `transport.new_event_loop` falls back to asyncio's loop in a
venv without uvloop, so nothing else would notice a deployment that lost it. Checked on a real
`bos-server --workers 2` from the libraries mapped into each worker's memory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List

from bos_sim.stack import ApiServer, RedisServer


def children(pid: int) -> List[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def maps_uvloop(pid: int) -> bool:
    try:
        return "/uvloop/loop." in Path(f"/proc/{pid}/maps").read_text()
    except OSError:  # not a worker after all: a short-lived child that ended
        return False


def test_every_api_worker_runs_on_uvloop(workdir: Path, redis_server: RedisServer) -> None:
    server = ApiServer(workdir / "api-uvloop", redis_server.url, extra_args=["--workers", "2"])
    try:
        # The server answers once one worker serves: the other may still be starting (forked, or not
        # yet past its imports) under load, so both are waited for (a condition, not a sleep).
        deadline = time.monotonic() + 60
        while True:
            workers = children(server.proc.pid)
            if len(workers) == 2 and all(maps_uvloop(pid) for pid in workers) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(workers) == 2, f"bos-server --workers 2 has children {workers}"
        assert all(maps_uvloop(pid) for pid in workers), "an API worker does not run on uvloop"
    finally:
        assert server.stop() == 0
