"""The per-request shortcuts of a node's report keep their behaviour: the problem middleware still
logs every 5xx (and each request at DEBUG), and what a middleware left on the request is still
found (api/context.request_value)."""

from __future__ import annotations

import asyncio
import logging
from unittest import mock

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request

import pytest

from bos_server.api.context import request_value
from bos_server.api.errors import problem_middleware
from bos_server.api.metrics import counted_problems
from bos_server.api.components import FAST_ONE
from bos_server.api.params import BODY_KEY, arrived_body

def _through_middleware(status: int, middleware=problem_middleware) -> web.StreamResponse:
    async def handler(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=status)
    return asyncio.run(middleware(make_mocked_request("PATCH", "/v2/components/x1"), handler))


@pytest.mark.parametrize("middleware", [problem_middleware, counted_problems])
def test_a_5xx_is_logged_and_a_success_only_at_debug(caplog, middleware) -> None:
    """The problem layer on its own (auth or the gate between the layers) and folded with metrics'."""
    with caplog.at_level(logging.INFO, logger="bos_server.api"):
        assert _through_middleware(200, middleware).status == 200
        assert _through_middleware(503, middleware).status == 503
    assert [(r.levelno, r.getMessage().rsplit(" (", 1)[0]) for r in caplog.records] == [
        (logging.ERROR, "PATCH /v2/components/x1 -> 503")]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="bos_server.api"):
        _through_middleware(200, middleware)
    assert [r.getMessage().rsplit(" (", 1)[0] for r in caplog.records] == ["PATCH /v2/components/x1 -> 200"]


def test_a_value_a_middleware_left_is_found_and_a_missing_one_is_none() -> None:
    request = make_mocked_request("PATCH", "/v2/components/x1")
    assert request_value(request, BODY_KEY) is None
    request[web.RequestKey("other", int)] = 1
    assert request_value(request, BODY_KEY) is None
    request[BODY_KEY] = b"{}"
    assert request_value(request, BODY_KEY) == b"{}"


def _arrived_request(raw: bytes, eof: bool = True) -> web.Request:
    async def make() -> web.Request:
        payload = StreamReader(mock.Mock(_reading_paused=False), 2 ** 16, loop=asyncio.get_running_loop())
        payload.feed_data(raw)
        if eof:
            payload.feed_eof()
        return make_mocked_request("PATCH", "/v2/components/x1", headers={"Content-Length": str(len(raw))},
                                   payload=payload)
    return asyncio.run(make())


def test_a_small_body_that_arrived_whole_is_decoded_without_a_coroutine_and_a_refused_one_is_kept() -> None:
    """params.arrived_body (a node's report): red when it leaves every body to fast_body."""
    report = b'{"id":"x1","actual_state":{"bss_token":"t"}}'
    assert arrived_body(_arrived_request(report), FAST_ONE) == {"id": "x1", "actual_state": {"bss_token": "t"}}
    refused = _arrived_request(b'{"enabled": "no"}')
    assert arrived_body(refused, FAST_ONE) is None and refused[BODY_KEY] == b'{"enabled": "no"}'
    assert arrived_body(_arrived_request(report, eof=False), FAST_ONE) is None  # not arrived: fast_body reads it
    kept = _arrived_request(report)
    kept[BODY_KEY] = b'{"id": "x1"}'  # read by a middleware (auth): fast_body takes it from there
    assert arrived_body(kept, FAST_ONE) is None
