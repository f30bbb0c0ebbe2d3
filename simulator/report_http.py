"""The simulated nodes' report PATCHes on raw keep-alive HTTP/1.1 connections (reporter.md §1).

On a real machine every node's reporter runs on that node; here one process sends
them all, so each costs as little as it can: the request is formatted once as
bytes (method, path, the reporter's headers, its JSON body) and written to
one of a fixed number of keep-alive connections, and only the status line and
the framing headers of the answer are parsed, straight from the bytes received
(an asyncio Protocol, no stream reader). At 100,000 nodes the aiohttp client
was a quarter of the simulator's CPU during a boot (issue 13). What reaches the
API is the reporter's request: the same path, headers and body.
"""

from __future__ import annotations

import asyncio
import json
from json.encoder import encode_basestring_ascii
from typing import Callable, Optional, Tuple, Union
from urllib.parse import urlsplit

from bos_reporter.payload import report_path
from bos_reporter.send import HEADERS, TIMEOUT

CONNECT_TIMEOUT, READ_TIMEOUT = TIMEOUT


class ReportError(Exception):
    """The report did not get an answer (connection refused, reset, timed out, garbled)."""


_HEADER_LINES = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())  # the reporter's fixed ones


def request_bytes(host: str, path: str, bearer: str, body: object) -> bytes:
    """One PATCH as the reporter sends it (bos_reporter.send): its headers and its JSON body."""
    return _request(host, path, bearer, json.dumps(body).encode())


def _request(host: str, path: str, bearer: str, payload: bytes) -> bytes:
    head = (f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n{_HEADER_LINES}"
            f"Content-Length: {len(payload)}\r\n\r\n")
    return head.encode("latin-1") + payload


def report_request(host: str, prefix: str, xname: str, bearer: str, token: str) -> bytes:
    """`request_bytes(host, prefix + report_path(xname), bearer, report_body(xname, token))`, the
    same bytes made with less: the body is `json.dumps` of the reporter's two-string object (its
    default separators and ASCII escapes, as requests sends it) written around the two strings'
    escapes, and an xname of ASCII letters and digits is its own path segment (`quote` leaves
    them as they are). Once per simulated report (issue 13)."""
    path = prefix + ("/components/" + xname if xname.isascii() and xname.isalnum() else report_path(xname))
    payload = ('{"id": ' + encode_basestring_ascii(xname) + ', "actual_state": {"bss_token": '
               + encode_basestring_ascii(token) + "}}")
    return _request(host, path, bearer, payload.encode())


class _Answer:
    """The first complete HTTP/1.1 answer in a buffer: (status, body, keep-alive, bytes used), or
    None while it is incomplete. `eof`: the peer closed; an answer delimited by the end of the
    connection is then complete. ValueError: not an HTTP answer."""

    @staticmethod
    def parse(buffer: bytearray, eof: bool) -> Optional[Tuple[int, bytes, bool, int]]:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if eof:
                raise ValueError("the connection closed before an answer")
            return None
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length: Optional[int] = None
        chunked, keep = False, lines[0].startswith("HTTP/1.1")  # HTTP/1.0 closes unless told otherwise
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                keep = value.strip().lower() == "keep-alive" or (keep and value.strip().lower() != "close")
        start = end + 4
        if status in (204, 304):
            return status, b"", keep, start  # never a body
        if chunked:
            return _Answer._chunked(buffer, start, status, keep, eof)
        if length is None:  # delimited by the end of the connection
            return (status, bytes(buffer[start:]), False, len(buffer)) if eof else None
        if len(buffer) - start < length:
            if eof:
                raise ValueError("the connection closed inside an answer")
            return None
        return status, bytes(buffer[start:start + length]), keep, start + length

    @staticmethod
    def _chunked(buffer: bytearray, at: int, status: int, keep: bool,
                 eof: bool) -> Optional[Tuple[int, bytes, bool, int]]:
        body = bytearray()
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                break
            size = int(bytes(buffer[at:line_end]).split(b";", 1)[0], 16)
            at = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n", at)  # no trailers are sent to a reporter
                if trailer_end < 0:
                    break
                return status, bytes(body), keep, trailer_end + 2
            if len(buffer) < at + size + 2:
                break
            body += buffer[at:at + size]
            at += size + 2
        if eof:
            raise ValueError("the connection closed inside a chunked answer")
        return None


Answered = Callable[[Union[Tuple[int, bytes], "ReportError"]], None]


class _ReportProtocol(asyncio.Protocol):
    """One keep-alive connection's bytes: the answer to the request in flight is handed to
    `on_answer` as soon as it is whole (parsed straight from the bytes received: no stream
    reader, no future, no task switch per report)."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.buffer = bytearray()
        self.on_answer: Optional[Callable[[Union[Tuple[int, bytes, bool], ReportError]], None]] = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.answer(eof=False)

    def eof_received(self) -> Optional[bool]:
        self.answer(eof=True)
        return False  # close the transport

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        self.answer(eof=True)

    def answer(self, eof: bool) -> None:
        """Hand the whole answer (or the reason there is none) to whoever waits for it, once."""
        if self.on_answer is None:
            return
        try:
            found = _Answer.parse(self.buffer, eof)
        except (ValueError, IndexError) as exc:
            self._hand(ReportError(type(exc).__name__))
            return
        if found is not None:
            status, body, keep, used = found
            del self.buffer[:used]
            self._hand((status, body, keep))

    def _hand(self, outcome: Union[Tuple[int, bytes, bool], "ReportError"]) -> None:
        on_answer, self.on_answer = self.on_answer, None
        if on_answer is not None:
            on_answer(outcome)


class ReportConnection:
    """One keep-alive connection to the API; one request at a time, reconnecting when closed.

    `start` sends a request and calls back with its answer from the connection's own data
    callback, so a sender may send the next request right there (reporting.py): at 100,000
    nodes a task woken per report was a good part of the simulator's CPU (issue 13). The
    request in flight is the connection's own state (no closure per request), and its read
    time-out is one loop timer per connection, moved on lazily: it fires at the deadline of
    the first request it was set for, and when the request then in flight is due later, it
    is set again for that request's deadline (no timer made and cancelled per request)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"simulated reports need an http:// BOS URL, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.netloc = parts.netloc
        self.prefix = parts.path.rstrip("/")
        self._protocol: Optional[_ReportProtocol] = None
        self._connecting: Optional["asyncio.Task[None]"] = None
        self._request = b""
        self._answered: Optional[Answered] = None
        self._reused = False  # the request in flight went on a kept-alive connection: an error retries it
        self._deadline = 0.0  # loop time by which the request in flight must be answered
        self._timer: Optional[asyncio.TimerHandle] = None
        self._on_answer = self._answer  # one bound method for every request

    async def send(self, request: bytes) -> Tuple[int, bytes]:
        """(status, body) of one request; ReportError when no answer came (`start`, awaited)."""
        waiter: "asyncio.Future[Union[Tuple[int, bytes], ReportError]]" = asyncio.get_running_loop().create_future()
        self.start(request, waiter.set_result)
        outcome = await waiter
        if isinstance(outcome, ReportError):
            raise outcome
        return outcome

    def start(self, request: bytes, answered: Answered) -> None:
        """Send `request`; `answered` gets (status, body) or the ReportError. A kept-alive
        connection the server closed while it was idle fails at once: the request then goes
        once more on a new connection (as HTTP clients do), not into the reporter's back-off."""
        self._request, self._answered = request, answered
        protocol = self._protocol
        if protocol is None or protocol.closed or protocol.transport is None:
            self._reused = False
            self._connect_then()
            return
        self._reused = True
        self._write(protocol)

    def _connect_then(self) -> None:
        self.close()
        self._connecting = asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, protocol = await loop.create_connection(_ReportProtocol, self.host, self.port)
        except (OSError, asyncio.TimeoutError) as exc:
            self._finish(ReportError(type(exc).__name__))
            return
        self._connecting = None
        self._protocol = protocol
        self._write(protocol)

    def _write(self, protocol: _ReportProtocol) -> None:
        assert protocol.transport is not None
        protocol.buffer.clear()  # nothing is owed on an idle connection
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + READ_TIMEOUT
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._timed_out)
        protocol.on_answer = self._on_answer
        protocol.transport.write(self._request)
        if protocol.closed:
            protocol.answer(eof=True)

    def _timed_out(self) -> None:
        """The timer's deadline: the request in flight has timed out if it is due by now, else the
        timer waits for its deadline; none in flight, none is set."""
        self._timer = None
        protocol = self._protocol
        if protocol is None or protocol.on_answer is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._timed_out)
            return
        protocol._hand(ReportError("TimeoutError"))

    def _answer(self, outcome: Union[Tuple[int, bytes, bool], ReportError]) -> None:
        """The answer in flight (or why there is none): an error on a kept-alive connection sends
        the request once more on a new one."""
        if isinstance(outcome, ReportError):
            self.close()
            if self._reused:
                self._reused = False
                self._connect_then()
                return
            self._finish(outcome)
            return
        status, body, keep = outcome
        if not keep:
            self.close()
        self._finish((status, body))

    def _finish(self, outcome: Union[Tuple[int, bytes], ReportError]) -> None:
        answered, self._answered = self._answered, None
        if answered is not None:
            answered(outcome)

    def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.on_answer = None
            if protocol.transport is not None:
                protocol.transport.close()
