"""The simulated nodes' report PATCHes on raw keep-alive HTTP/1.1 connections (reporter.md §1).

On a real machine every node's reporter runs on that node; here one process sends
them all, so each costs as little as it can: the request is formatted once as
bytes (method, path, the reporter's three headers, its JSON body) and written to
one of a fixed number of keep-alive connections, and only the status line and
the framing headers of the answer are parsed. At 100,000 nodes the aiohttp client
was a quarter of the simulator's CPU during a boot (issue 13). What reaches the
API is the reporter's request: the same path, headers and body.
"""

from __future__ import annotations

import asyncio
import json
from typing import Optional, Tuple
from urllib.parse import urlsplit

from bos_reporter.send import HEADERS, TIMEOUT

CONNECT_TIMEOUT, READ_TIMEOUT = TIMEOUT


class ReportError(Exception):
    """The report did not get an answer (connection refused, reset, timed out, garbled)."""


def request_bytes(host: str, path: str, bearer: str, body: object) -> bytes:
    """One PATCH as the reporter sends it (bos_reporter.send): its headers and its JSON body."""
    payload = json.dumps(body).encode()
    headers = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
    head = (f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n{headers}"
            f"Content-Length: {len(payload)}\r\n\r\n")
    return head.encode("latin-1") + payload


class ReportConnection:
    """One keep-alive connection to the API; one request at a time, reconnecting when closed."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"simulated reports need an http:// BOS URL, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.netloc = parts.netloc
        self.prefix = parts.path.rstrip("/")
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None

    async def send(self, request: bytes) -> Tuple[int, bytes]:
        """(status, body) of one request; ReportError when no answer came. A kept-alive
        connection the server closed while it was idle fails at once: the request then goes
        once more on a new connection (as HTTP clients do), not into the reporter's back-off."""
        reused = self._writer is not None
        try:
            return await self._exchange(request)
        except ReportError:
            if not reused:
                raise
        return await self._exchange(request)

    async def _exchange(self, request: bytes) -> Tuple[int, bytes]:
        try:
            if self._writer is None:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            self._writer.write(request)
            async with asyncio.timeout(READ_TIMEOUT):
                status, body, keep = await self._answer(self._reader)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as exc:
            self.close()
            raise ReportError(type(exc).__name__) from exc
        if not keep:
            self.close()
        return status, body

    @staticmethod
    async def _answer(reader: asyncio.StreamReader) -> Tuple[int, bytes, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
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
        if status in (204, 304):
            return status, b"", keep  # never a body
        if length is None and not chunked:
            return status, await reader.read(), False  # delimited by the end of the connection
        if not chunked:
            return status, await reader.readexactly(length) if length else b"", keep
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers are sent to a reporter
                return status, bytes(body), keep
            body += await reader.readexactly(size)
            await reader.readexactly(2)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
