"""Stopping bos-server while dashboards are open: their event streams, which never end by
themselves, are ended at shutdown, so SIGTERM stops the server at once (no kill after the
stop timeout, no rolling update held up by a browser tab)."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from bos_sim.stack import ApiServer, RedisServer


def test_sigterm_ends_open_event_streams(tmp_path: Path, redis_server: RedisServer) -> None:
    server = ApiServer(tmp_path / "api", redis_server.url)
    streams = []
    try:
        for _ in range(2):
            resp = requests.get(server.url + "/dashboard/api/events", stream=True, timeout=10)
            assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/event-stream"
            streams.append(resp)
        started = time.monotonic()
        assert server.stop(timeout=8) == 0, "bos-server was killed: an open stream held up its shutdown"
        assert time.monotonic() - started < 5
    finally:
        for resp in streams:
            resp.close()
        server.stop()
