"""A single write's `return=minimal` 204 (api/responses.Minimal) sends what aiohttp's own response
would, with its header block made once a second; a request that does not keep its HTTP/1.1
connection gets aiohttp's own start. And the default middleware chain is one layer
(metrics.counted_problems) that still counts requests and answers problems."""

from __future__ import annotations

import asyncio
from typing import List, Tuple

from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict, CIMultiDictProxy

from bos_server import metrics as server_metrics
from bos_server.api import app as app_module, metrics, responses
from bos_server.api.errors import NotFound, problem_middleware

KEEP = b"PATCH /minimal HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"


async def _minimal(_request: web.Request) -> web.StreamResponse:
    return responses.respond_minimal()


async def _aiohttp_own(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=204, headers=responses.APPLIED)


async def _heads(requests: List[Tuple[str, bytes]]) -> List[bytes]:
    """Each (path, raw request)'s response head, each on a connection of its own."""
    app = web.Application()
    app.router.add_route("PATCH", "/minimal", _minimal)
    app.router.add_route("PATCH", "/own", _aiohttp_own)
    async with TestServer(app) as server:
        heads = []
        for path, raw in requests:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(raw.replace(b"/minimal", path.encode()))
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.close()
        return heads


def _without_date(head: bytes) -> List[bytes]:
    return [line for line in head.split(b"\r\n") if not line.startswith(b"Date: ")]


def test_the_minimal_204_sends_what_aiohttps_own_response_sends() -> None:
    for raw in (KEEP, KEEP.replace(b"HTTP/1.1", b"HTTP/1.0"),
                KEEP.replace(b"Host: x", b"Host: x\r\nConnection: close"),
                KEEP.replace(b"HTTP/1.1", b"HTTP/1.0").replace(b"Host: x", b"Host: x\r\nConnection: keep-alive")):
        minimal, own = asyncio.run(_heads([("/minimal", raw), ("/own", raw)]))
        assert _without_date(minimal) == _without_date(own), raw
        assert minimal.startswith(b"HTTP/1.") and b" 204 No Content\r\n" in minimal
        assert b"Preference-Applied: return=minimal\r\n" in minimal and b"Date: " in minimal


def test_the_minimal_204_of_a_kept_http11_connection_is_sent_from_the_header_block_made(monkeypatch) -> None:
    """Red when Minimal starts as aiohttp does: the made block (here marked) is what is sent."""
    marked = CIMultiDictProxy(CIMultiDict([*responses._minimal_headers().items(), ("X-Made", "1")]))
    monkeypatch.setattr(responses, "_minimal_headers", lambda: marked)
    kept, ten, closed = asyncio.run(_heads([("/minimal", KEEP), ("/minimal", KEEP.replace(b"HTTP/1.1", b"HTTP/1.0")),
                                            ("/minimal", KEEP.replace(b"Host: x", b"Host: x\r\nConnection: close"))]))
    assert b"X-Made: 1\r\n" in kept
    assert b"X-Made" not in ten and b"X-Made" not in closed  # aiohttp's start: its Connection rules
    assert b"Connection: close\r\n" in closed


def test_a_header_added_to_the_minimal_204_after_it_was_made_is_sent() -> None:
    """Red when Minimal sends its made block whatever its own headers became: a middleware's header
    (none adds one today) would be dropped without a word."""
    async def stamped(request: web.Request, handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers["X-Stamp"] = "1"
        return response

    async def run() -> bytes:
        app = web.Application(middlewares=[web.middleware(stamped)])
        app.router.add_route("PATCH", "/minimal", _minimal)
        async with TestServer(app) as server:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(KEEP)
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            return head

    head = asyncio.run(run())
    assert b"X-Stamp: 1\r\n" in head and b"Preference-Applied: return=minimal\r\n" in head


def test_the_header_block_is_made_once_a_second(monkeypatch) -> None:
    clock = ["Thu, 03 Dec 2026 21:00:00 GMT"]
    monkeypatch.setattr(responses, "rfc822_formatted_time", lambda: clock[0])
    first = responses._minimal_headers()
    assert responses._minimal_headers() is first and first["Date"] == clock[0]
    clock[0] = "Thu, 03 Dec 2026 21:00:01 GMT"
    assert responses._minimal_headers()["Date"] == clock[0]
    assert list(first.keys()) == ["Preference-Applied", "Date", "Server"]


def test_the_default_chain_is_one_layer_and_auth_or_the_gate_keep_the_layers_apart() -> None:
    async def auth(request: web.Request, handler) -> web.StreamResponse:
        return await handler(request)

    assert list(app_module.create_app(None).middlewares) == [metrics.counted_problems]  # type: ignore[arg-type]
    assert list(app_module.create_app(None, auth).middlewares) == [  # type: ignore[arg-type]
        metrics.metrics_middleware, auth, problem_middleware]


def test_the_one_layer_counts_each_request_with_its_final_status_and_answers_problems(monkeypatch) -> None:
    seen = []

    class Recorder:
        def http(self, route: str, method: str, status: int, seconds: float) -> None:
            seen.append((route, method, status))

    monkeypatch.setattr(server_metrics, "METRICS", Recorder())

    async def missing(_request: web.Request) -> web.StreamResponse:
        raise NotFound("Component 'x1' does not exist")

    async def run() -> Tuple[int, str]:
        app = web.Application(middlewares=[metrics.counted_problems])
        app.router.add_route("GET", "/v2/components/{component_id}", missing)
        async with TestServer(app) as server:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b"GET /v2/components/x1 HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            return int(head.split()[1]), head.decode()

    status, head = asyncio.run(run())
    assert status == 404 and "application/problem+json" in head
    assert seen == [("/v2/components/{component_id}", "GET", 404)]
