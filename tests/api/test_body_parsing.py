"""Both JSON parsing paths of params.json_body refuse the same hostile input (api.md §1.2).

Bodies of LEAN_BYTES or more take the memory-lean path (standard library from
decoded text); the HTTP tests exercise the orjson path, these the lean one.
"""

from __future__ import annotations

import pytest

from bos_server.api.errors import BadRequest
from bos_server.api.params import parse_json, parse_large_json


@pytest.mark.parametrize("parse", [parse_json, parse_large_json], ids=["orjson", "lean"])
@pytest.mark.parametrize("text,reason", [
    (b'{"a": "\\ud800"}', "surrogate"),
    (b'{"\\udfff": 1}', "surrogate"),
    (b'[NaN]', "NaN"),
    (b'[1, Infinity]', "Infinity"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested"),
    (b'{"a": ', "Expecting value"),
])
def test_hostile_json_is_a_bad_request(parse, text: bytes, reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse(bytearray(text))
    assert caught.value.detail.startswith("Error parsing the data provided: ") and reason in caught.value.detail


@pytest.mark.parametrize("parse", [parse_json, parse_large_json], ids=["orjson", "lean"])
def test_valid_json_parses_alike(parse) -> None:
    text = '{"a": ["é", 1, 2.5, null, true, {"b": "\\u00e9\\ud83d\\ude00"}]}'
    assert parse(bytearray(text.encode())) == {"a": ["é", 1, 2.5, None, True, {"b": "é😀"}]}
    assert parse(bytearray(text.encode("utf-16"))) == parse_json(text.encode())  # UTF-16 still understood


def test_the_lean_path_releases_the_buffer() -> None:
    raw = bytearray(b'{"a": "' + b"x" * 1000 + b'"}')
    assert parse_large_json(raw) == {"a": "x" * 1000}
    assert len(raw) == 0


def _request(chunks: "list[bytes]", length: int, whole: bool):
    """A request whose body stream has received `chunks` (and its end when `whole`)."""
    import asyncio
    from unittest import mock
    from aiohttp import streams
    from aiohttp.test_utils import make_mocked_request
    protocol = mock.Mock(_reading_paused=False)
    stream = streams.StreamReader(protocol, 2 ** 16, loop=asyncio.get_running_loop())
    for chunk in chunks:
        stream.feed_data(chunk)
    if whole:
        stream.feed_eof()
    return make_mocked_request("PATCH", "/v2/components/x1", headers={"Content-Length": str(length)},
                               payload=stream), stream


def test_a_small_body_that_arrived_whole_is_taken_from_the_buffer_as_it_is() -> None:
    """params.read_body: a node's report arrives whole; its bytes are the body (no copy into a new
    buffer through the stream's async iterator), and a body still arriving is read as before."""
    import asyncio
    from bos_server.api.params import read_body
    body = b'{"id":"x1","actual_state":{"bss_token":"t"}}'

    async def check() -> None:
        request, _stream = _request([body], len(body), whole=True)
        assert await read_body(request) is body
        request, stream = _request([body[:10], body[10:20]], len(body), whole=False)
        asyncio.get_running_loop().call_soon(lambda: (stream.feed_data(body[20:]), stream.feed_eof()))
        assert await read_body(request) == body
    asyncio.run(check())
