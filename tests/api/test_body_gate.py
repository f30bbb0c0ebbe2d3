"""The per-worker gate on large request bodies (api/body_gate.py; issue 13, API memory).

The server side is the real application (real Context, real Redis, real HTTP on
loopback), built in this process as `serve` builds it so that the gate's state can
be read; a client sends half a large body and keeps its permit while it waits.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable, List, Tuple

import aiohttp
import pytest
from aiohttp import web

from bos_server.api.app import create_app
from bos_server.api.body_gate import DEFAULT_PERMITS, GATE, LARGE_BODY, Gate, large_body_gate
from bos_server.config import ServerSettings
from bos_server.main import build_context
from bos_sim.stack import free_port

IDS = [f"x1000c0s{n}b0n0" for n in range(4)]


async def _until(check: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


# -- the gate alone --

def test_waiters_get_the_permit_in_arrival_order() -> None:
    async def scenario() -> List[str]:
        gate, order = Gate(1), []
        await gate.acquire()

        async def one(name: str) -> None:
            await gate.acquire()
            order.append(name)
            gate.release()
        tasks = [asyncio.create_task(one(name)) for name in "abc"]
        await _until(lambda: gate.waiting == 3, "three waiters")
        gate.release()
        await asyncio.gather(*tasks)
        assert gate.inside == 0 and gate.waiting == 0
        return order
    assert asyncio.run(scenario()) == ["a", "b", "c"]


def test_a_waiter_cancelled_after_it_was_granted_hands_the_permit_on() -> None:
    async def scenario() -> None:
        gate = Gate(1)
        await gate.acquire()
        first = asyncio.create_task(gate.acquire())
        second = asyncio.create_task(gate.acquire())
        await _until(lambda: gate.waiting == 2, "two waiters")
        gate.release()  # granted to `first`, which has not run yet ...
        first.cancel()  # ... and is cancelled before it does
        await asyncio.wait_for(second, 5)  # the permit went on instead of being lost
        assert first.cancelled() and gate.inside == 1
        third = asyncio.create_task(gate.acquire())
        await _until(lambda: gate.waiting == 1, "a third waiter")
        third.cancel()  # cancelled while waiting: leaves nothing behind
        await asyncio.gather(third, return_exceptions=True)
        gate.release()
        assert gate.inside == 0 and gate.waiting == 0
        await asyncio.wait_for(gate.acquire(), 5)  # the permit is free again
    asyncio.run(scenario())


def test_the_setting_is_checked_and_zero_turns_the_gate_off() -> None:
    assert ServerSettings.parse([]).large_body_concurrency == DEFAULT_PERMITS == 0
    with pytest.raises(SystemExit):
        ServerSettings.parse(["--large-body-concurrency", "-1"])
    off, on = create_app(None, None, 0), create_app(None, None, 3)  # type: ignore[arg-type]
    assert GATE not in off and large_body_gate not in off.middlewares  # no layer for every request to pass
    assert on[GATE].permits == 3 and large_body_gate in on.middlewares  # type: ignore[attr-defined]


# -- in the application --

def _patch_body(size: int) -> bytes:
    """A valid list-form PATCH of IDS, padded with JSON whitespace to `size` bytes."""
    text = json.dumps([{"id": i, "enabled": True} for i in IDS]).encode()
    return text + b" " * (size - len(text))


async def _half_sent(port: int, body: bytes) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A PATCH whose headers and first half of the body are sent; the rest is the caller's."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"PATCH /v2/components HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body[:len(body) // 2])
    await writer.drain()
    return reader, writer


def _in_app(test: Callable[[web.Application, int, aiohttp.ClientSession], Awaitable[None]],
            redis_url: str) -> None:
    async def run() -> None:
        settings = ServerSettings.parse(["--redis-url", redis_url, "--large-body-concurrency", "1"])
        context = build_context(settings)
        app = create_app(context, None, settings.large_body_concurrency)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                async with http.put("/v2/components", json=[{"id": i} for i in IDS]) as answer:
                    assert answer.status == 200, await answer.text()
                await test(app, port, http)
        finally:
            await runner.cleanup()
            await context.store.close()
    asyncio.run(run())


async def _status(http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> int:
    async with http.request(method, path, **kwargs) as answer:
        await answer.read()
        return answer.status


def test_a_large_body_waits_unread_while_another_holds_the_permit(redis_server) -> None:
    async def test(app: web.Application, port: int, http: aiohttp.ClientSession) -> None:
        gate = app[GATE]
        body = _patch_body(LARGE_BODY + 4096)
        reader, writer = await _half_sent(port, body)
        await _until(lambda: gate.inside == 1, "the first large body to take the permit")
        second = asyncio.create_task(_status(http, "PATCH", "/v2/components", data=_patch_body(LARGE_BODY),
                                             headers={"Content-Type": "application/json"}))
        await _until(lambda: gate.waiting == 1, "the second large body to wait")
        small = _patch_body(1024)  # small bodies and reads go past the gate
        assert await _status(http, "PATCH", "/v2/components", data=small,
                             headers={"Content-Type": "application/json"}) == 200
        assert await _status(http, "GET", f"/v2/components/{IDS[0]}") == 200
        assert not second.done() and gate.waiting == 1
        writer.write(body[len(body) // 2:])
        await writer.drain()
        assert (await reader.read()).startswith(b"HTTP/1.1 200")
        writer.close()
        assert await asyncio.wait_for(second, 20) == 200
        assert gate.inside == 0 and gate.waiting == 0
    _in_app(test, redis_server.url)


def test_a_client_that_goes_away_mid_body_gives_its_permit_back(redis_server) -> None:
    async def test(app: web.Application, port: int, http: aiohttp.ClientSession) -> None:
        gate = app[GATE]
        _reader, writer = await _half_sent(port, _patch_body(LARGE_BODY + 4096))
        await _until(lambda: gate.inside == 1, "the first large body to take the permit")
        second = asyncio.create_task(_status(http, "PATCH", "/v2/components", data=_patch_body(LARGE_BODY),
                                             headers={"Content-Type": "application/json"}))
        await _until(lambda: gate.waiting == 1, "the second large body to wait")
        writer.close()  # the first client is gone with half its body sent
        assert await asyncio.wait_for(second, 20) == 200
        await _until(lambda: gate.inside == 0 and gate.waiting == 0, "the permits to be free")
    _in_app(test, redis_server.url)


def test_a_large_body_goes_ahead_without_a_permit_after_the_longest_wait(redis_server) -> None:
    """A client that stalls mid-body (aiohttp has no body read time-out) holds its permit for
    as long as it likes; the requests behind it wait `max_wait` at most, then go ahead."""
    async def test(app: web.Application, port: int, http: aiohttp.ClientSession) -> None:
        gate = app[GATE]
        gate.max_wait = 0.3
        _reader, writer = await _half_sent(port, _patch_body(LARGE_BODY + 4096))
        await _until(lambda: gate.inside == 1, "the stalled body to take the permit")
        assert await asyncio.wait_for(_status(http, "PATCH", "/v2/components", data=_patch_body(LARGE_BODY),
                                              headers={"Content-Type": "application/json"}), 20) == 200
        assert gate.inside == 1 and gate.waiting == 0  # the stalled one still holds it; no waiter left behind
        writer.close()
        await _until(lambda: gate.inside == 0, "the stalled client's permit to come back")
        await asyncio.wait_for(gate.acquire(), 5)  # nothing was lost: the permit is free
        gate.release()
    _in_app(test, redis_server.url)
