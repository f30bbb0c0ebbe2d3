"""A command is sent without a timer when the socket takes it at once, and is still bounded by the
socket time-out when it does not; a round trip's reply is read off the hiredis reader, bounded by the
socket time-out through the connection's watch timer (store/packing.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any, Iterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError, NoScriptError, TimeoutError as RedisTimeoutError

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


def _stopped(redis: RedisServer) -> "contextlib.AbstractContextManager[None]":
    @contextlib.contextmanager
    def stopped() -> Iterator[None]:
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
    return stopped()


def test_a_round_trip_reads_off_the_hiredis_reader_and_maps_errors(tmp_path: Path) -> None:
    """`roundtrip` (run_kept's path) reads the reply itself, not through redis-py's read_response;
    an error reply is raised as redis-py's class and leaves the connection usable."""
    redis = RedisServer(tmp_path / "r")

    async def scenario() -> None:
        conn = HiredisPackingConnection(host="127.0.0.1", port=redis.port, socket_timeout=5)
        await conn.connect()

        async def not_used(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("read through redis-py's read_response")
        conn.read_response = not_used  # type: ignore[method-assign]
        assert await conn.roundtrip(("SET", "k", b"v" * 100_000)) in (b"OK", "OK")
        assert await conn.roundtrip(("MGET", "k", "none")) == [b"v" * 100_000, None]  # over several reads
        with pytest.raises(NoScriptError):
            await conn.roundtrip(("EVALSHA", "0" * 40, 0))
        assert await conn.roundtrip(("GET", "k")) == b"v" * 100_000
        await conn.disconnect()

    try:
        asyncio.run(scenario())
    finally:
        redis.stop()


def test_a_reply_later_than_the_socket_timeout_times_out(tmp_path: Path) -> None:
    """The read of `roundtrip` has no timer of its own: the connection's watch timer fails it once it
    is older than the socket time-out, and never a read that is not (busy connections re-arm it)."""
    redis = RedisServer(tmp_path / "r")

    async def scenario() -> None:
        # 1 s, not less: a round trip stalled by a loaded 2-core CI machine is a read older than
        # the time-out, which is right to fail (a 0.3 s one did once, at load 10-16).
        conn = HiredisPackingConnection(host="127.0.0.1", port=redis.port, socket_timeout=1.0)
        await conn.connect()
        loop = asyncio.get_running_loop()
        until = loop.time() + 3.0  # round trips for three time-outs: the watch re-armed, never firing
        while loop.time() < until:
            assert await conn.roundtrip(("GET", "k")) is None
        with _stopped(redis):
            with pytest.raises(RedisTimeoutError, match="Timeout reading"):
                await asyncio.wait_for(conn.roundtrip(("GET", "k")), 10)
        assert not conn.is_connected  # a reply may still come: never reused
        assert await conn.roundtrip(("GET", "k")) is None  # connects again

    try:
        asyncio.run(scenario())
    finally:
        redis.stop()


def test_a_round_trip_on_a_dropped_connection_raises_connection_error(tmp_path: Path) -> None:
    """A connection Redis closed fails as redis-py's ConnectionError (connection.py's replays rely on it)."""
    redis = RedisServer(tmp_path / "r")

    async def scenario() -> None:
        conn = HiredisPackingConnection(host="127.0.0.1", port=redis.port, socket_timeout=5)
        await conn.connect()
        assert await conn.roundtrip(("CLIENT", "SETNAME", "doomed")) in (b"OK", "OK")
        killer = HiredisPackingConnection(host="127.0.0.1", port=redis.port, socket_timeout=5)
        await killer.connect()
        await killer.roundtrip(("CLIENT", "KILL", "SKIPME", "YES", "TYPE", "NORMAL"))
        with pytest.raises(RedisConnectionError):
            await conn.roundtrip(("GET", "k"))
        assert not conn.is_connected
        await killer.disconnect()

    try:
        asyncio.run(scenario())
    finally:
        redis.stop()


def test_a_round_trip_waits_for_a_send_the_socket_cannot_take_and_checks_health_when_due(tmp_path: Path) -> None:
    """`roundtrip` writes the command itself: what the socket did not take is still bounded by the
    socket time-out (as send_command), and a due health check still sends its PING first."""
    redis = RedisServer(tmp_path / "r")

    async def pings(other: HiredisPackingConnection) -> int:
        stats = (await other.roundtrip(("INFO", "commandstats"))).decode()
        return int(next((line.split("calls=")[1].split(",")[0] for line in stats.splitlines()
                         if line.startswith("cmdstat_ping:")), "0"))

    async def scenario() -> None:
        other = HiredisPackingConnection(host="127.0.0.1", port=redis.port, socket_timeout=5)
        conn = HiredisPackingConnection(host="127.0.0.1", port=redis.port, socket_timeout=1.0, health_check_interval=30)
        await conn.connect()
        await conn.roundtrip(("GET", "k"))
        before = await pings(other)
        await conn.roundtrip(("GET", "k"))
        assert await pings(other) == before  # checked a moment ago: no PING
        conn.next_health_check = 0  # due
        await conn.roundtrip(("GET", "k"))
        assert await pings(other) == before + 1
        with _stopped(redis):
            with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
                await asyncio.wait_for(conn.roundtrip(("SET", "large", b"x" * (32 << 20))), 10)
        assert not conn.is_connected
        await other.disconnect()

    try:
        asyncio.run(scenario())
    finally:
        redis.stop()
