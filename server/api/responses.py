"""JSON responses, encoded with orjson (large component listings dominate the cost)."""

from __future__ import annotations

import logging
import tempfile
from typing import Any, AsyncIterator, Iterator, List, Tuple, Union, cast

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from multidict import CIMultiDict, CIMultiDictProxy

from ..jsonio import dumps_transient, exact

LOG = logging.getLogger("bos_server.api")
JSON = "application/json"
MINIMAL = "return=minimal"
APPLIED = {"Preference-Applied": MINIMAL}
SMALL_BODY = 16 * 1024  # respond(): larger encodings are copied to their size (jsonio.dumps)


def wants_minimal(request: web.Request) -> bool:
    """`Prefer: return=minimal` (RFC 7240; extension of api.md §3.3.2-§3.4): the caller needs
    only the IDs written, not the records (the operators' bulk writes at 100,000 nodes), or
    only the status of a single write (a node's report). The header as our reporter sends it is
    matched by one look-up (its parse was ~1 % of the API's CPU per report)."""
    first = request.headers.get("Prefer")
    if first is None or first == MINIMAL:
        return first is not None
    return any(part.strip().lower() == MINIMAL
               for value in request.headers.getall("Prefer", ()) for part in value.split(","))


def respond_ids(ids: List[str]) -> web.Response:
    """The minimal form of a bulk write's answer: the IDs written, in the full answer's order."""
    response = respond(ids)
    response.headers["Preference-Applied"] = MINIMAL
    return response


def respond_minimal() -> web.StreamResponse:
    """The minimal form of a single-record write's answer: 204, no body (RFC 7240 §4.2)."""
    return Minimal()


MINIMAL_STATUS_LINE = "HTTP/1.1 204 No Content"
_dated: Tuple[str, "CIMultiDictProxy[str]"] = ("", CIMultiDictProxy(CIMultiDict()))


def _minimal_headers() -> "CIMultiDictProxy[str]":
    """The header block of Minimal's answer for this second (aiohttp's Date is per second too):
    what aiohttp's response would send (its own headers, then Date and Server), made once a second."""
    global _dated
    date = rfc822_formatted_time()
    if _dated[0] != date:
        _dated = (date, CIMultiDictProxy(CIMultiDict([(k, v) for k, v in APPLIED.items()]
                                                     + [(hdrs.DATE, date), (hdrs.SERVER, SERVER_SOFTWARE)])))
    return _dated[1]


def _signalled(request: web.BaseRequest) -> bool:
    """An app of the request's has on_response_prepare signals (they may change the headers)."""
    return any(app.on_response_prepare for app in cast(web.Request, request).match_info.apps)


class Minimal(web.StreamResponse):
    """`respond_minimal`'s 204: its headers are written as made once a second (_minimal_headers).

    A node's report answers this, 100,000 times in a boot's last seconds. aiohttp's own start of a
    response (Content-Length and keep-alive rules, the Date and Server defaults, the status line, each
    on a header dict of the response's own) was ~3 % of the API's instructions per report (issue 13).
    The rules decide nothing for a 204 to an HTTP/1.1 request that keeps its connection (no body, no
    Content-Length, no Connection header); any other request gets aiohttp's own start."""

    def __init__(self) -> None:
        super().__init__(status=204, headers=APPLIED)

    async def _start(self, request: web.BaseRequest) -> AbstractStreamWriter:
        if (request.version != HttpVersion11 or not request.keep_alive or _signalled(request)
                or len(self.headers) != len(APPLIED)):
            # a signal may change the headers, and a header added after the response was made (a
            # middleware's) is not in the made block: aiohttp's start sends them all
            return await super()._start(request)
        self._req = request
        self._keep_alive = True
        writer = self._payload_writer = request._payload_writer
        await writer.write_headers(MINIMAL_STATUS_LINE, _minimal_headers())  # type: ignore[arg-type]
        return writer


def respond(data: Any, status: int = 200) -> web.Response:
    """`data` encoded; a small encoding as orjson returns it, sent and dropped at once (a node's
    report: the copy jsonio.dumps makes to keep encodings at their size was ~1 us of it)."""
    raw = dumps_transient(data)
    return web.Response(status=status, body=raw if len(raw) <= SMALL_BODY else exact(raw), content_type=JSON)


def respond_stored(raws: Union[bytes, List[bytes]], status: int = 200) -> web.Response:
    """Records answered as the store holds their JSON (one, or a list of them), neither decoded
    nor encoded again (issue 13: API memory). orjson reserves 12 bytes per character of a
    string it encodes: a 100,000-node session's ~1.5 MB `components` took ~18 MB of heap at
    each GET and at each operator's listing of running sessions."""
    body = raws if isinstance(raws, bytes) else b"[" + b",".join(raws) + b"]"
    return web.Response(status=status, body=body, content_type=JSON)


async def respond_list(request: web.Request, chunks: AsyncIterator[List[Any]]) -> web.StreamResponse:
    """A JSON array sent chunk by chunk as `chunks` yields its (non-empty) parts.

    A listing of 100,000 components is ~170 MB of JSON: streamed, the server holds
    one chunk of records at a time and encodes the next chunk while the client
    reads the previous one. A result of one chunk is an ordinary response (with
    Content-Length). Errors before the first byte is sent (Redis down) are answered
    as usual by the problem middleware; an error after that can no longer change
    the status, so the connection is dropped and the client sees a truncated body,
    never a shorter valid list.
    """
    first = await anext(chunks, None)
    if first is None:
        return respond([])
    second = await anext(chunks, None)
    if second is None:
        return respond(first)
    response = web.StreamResponse(status=200)
    response.content_type = JSON
    await response.prepare(request)
    try:
        await _write_items(response, b"[", first)
        del first
        async for chunk in _prepend(second, chunks):
            await _write_items(response, b",", chunk)
        await response.write(b"]")
        await response.write_eof()
    except Exception as exc:  # too late for a problem response: drop the connection
        LOG.error("Listing of %s aborted after the response started: %s", request.path, exc)
        if request.transport is not None:
            request.transport.close()
    return response


async def _write_items(response: web.StreamResponse, before: bytes, items: List[Any]) -> None:
    """`before`, then the items' JSON without its brackets: orjson's output written as it is
    (the transport copies what the socket does not take at once), no copy of ~2 MiB per chunk."""
    encoded = dumps_transient(items)
    await response.write(before)
    await response.write(memoryview(encoded)[1:-1])


async def _prepend(item: List[Any], rest: AsyncIterator[List[Any]]) -> AsyncIterator[List[Any]]:
    yield item
    async for chunk in rest:
        yield chunk


SPOOL_MEMORY = 4 * 1024 * 1024  # a response's encoded parts kept in memory; beyond: a temporary file
SEND_CHUNK = 1024 * 1024


class ResponseParts:
    """The encoded parts of a JSON array response (each the items of an array, without brackets).

    A bulk write's response is as large as its body, and it grows while the parsed
    body shrinks: kept in memory, it lands in fresh pages (the freed items are small
    scattered holes), so the request's peak would be the parsed body PLUS the
    response (~3.8x the body's size, issue 10 item 7). Beyond SPOOL_MEMORY the parts
    go to an anonymous temporary file (page cache, not this process's memory).
    """

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
        self.count = 0

    def add(self, part: Union[bytes, memoryview]) -> None:
        if part:
            if self.count:
                self._file.write(b",")
            self._file.write(part)
            self.count += 1

    def size(self) -> int:
        return self._file.tell()

    def chunks(self) -> Iterator[bytes]:
        self._file.seek(0)
        while chunk := self._file.read(SEND_CHUNK):
            yield chunk

    def close(self) -> None:
        self._file.close()


async def respond_joined(request: web.Request, parts: List[bytes]) -> web.StreamResponse:
    """A JSON array whose text is `parts` joined (brackets and commas included), sent with a
    Content-Length in writes of about SEND_CHUNK, each one join of its parts.

    A bulk write's 2,800 records written alike are each an ID prefix and a ~3 KiB text shared
    with the others (store/alike.py): joined here once, their ~9 MB are copied once. Encoded as
    a list of orjson.Fragment and streamed chunked (respond_list), each record's text was
    copied four times: into its fragment, into orjson's output, into the chunk's frame
    (aiohttp joins a chunk with its size line) and into the socket's buffer."""
    size = sum(map(len, parts))
    if size <= SEND_CHUNK:
        return web.Response(status=200, body=b"".join(parts), content_type=JSON)
    response = web.StreamResponse(status=200)
    response.content_type = JSON
    response.content_length = size
    await response.prepare(request)
    await response.write(parts[0])  # small: it goes out joined with the headers, the rest as it is
    start, pending = 1, 0
    for end in range(1, len(parts)):
        pending += len(parts[end])
        if pending >= SEND_CHUNK or end == len(parts) - 1:
            await response.write(b"".join(parts[start:end + 1]))
            start, pending = end + 1, 0
    await response.write_eof()
    return response


async def respond_parts(request: web.Request, parts: ResponseParts) -> web.StreamResponse:
    """A JSON array from its encoded parts, sent chunk by chunk with a Content-Length
    (the whole body is never joined into one more copy: a bulk write's response, components.py)."""
    try:
        if parts.size() <= SEND_CHUNK:
            return web.Response(status=200, body=b"[" + b"".join(parts.chunks()) + b"]", content_type=JSON)
        response = web.StreamResponse(status=200)
        response.content_type = JSON
        response.content_length = parts.size() + 2
        await response.prepare(request)
        await response.write(b"[")
        for chunk in parts.chunks():
            await response.write(chunk)
        await response.write(b"]")
        await response.write_eof()
        return response
    finally:
        parts.close()
