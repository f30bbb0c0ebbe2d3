"""A command is sent without a timer when the socket takes it at once, and is still bounded by the
socket time-out when it does not (store/packing.py)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from bos_server.store.packing import HiredisPackingConnection
from bos_sim.stack import RedisServer


def test_a_send_the_socket_cannot_take_times_out(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "r")

    async def scenario() -> None:
        conn = HiredisPackingConnection(host="127.0.0.1", port=redis.port, socket_timeout=0.3)
        await conn.connect()
        await conn.send_command("SET", "small", b"x")  # taken at once
        assert await conn.read_response() == b"OK"
        os.kill(redis.proc.pid, signal.SIGSTOP)  # Redis stops reading: 32 MB cannot all be taken
        try:
            with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
                await conn.send_command("SET", "large", b"x" * (32 << 20))
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        assert not conn.is_connected  # an unfinished send: never reused

    try:
        asyncio.run(scenario())
    finally:
        redis.stop()
