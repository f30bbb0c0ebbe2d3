"""The audit trail: with auth on, one log line per write, naming who made it and as what.

The line is JSON after the word `audit`, so every value (subject, path, tenant)
is escaped: a token subject with a newline cannot forge a second line. It is
always written, whatever `logging_level` says, so the trail does not vanish
when an admin quiets the logs.

Every reporter PATCH is a write, so the trail is on the hot path: measured
with bench/auth_overhead.py, one `logging` record per request cost more CPU
than all the token and policy checks together. Lines therefore take the log
format (`<time> INFO bos_server.audit: audit {...}`) here and are written to
standard error, like every other log line, in batches: at the latest
FLUSH_SECONDS after they were made, and at exit. Each batch goes out in writes
of whole lines of at most PIPE_BUF bytes, so the lines of several worker
processes sharing the stream never interleave within a line.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import sys
import time
from typing import List, Optional

import orjson
from aiohttp import web

from .principal import Principal

READS = ("GET", "HEAD", "OPTIONS")
MAX_QUERY = 256
FLUSH_SECONDS = 0.05
MAX_PENDING = 512
CHUNK = 4096  # PIPE_BUF on Linux: one write of at most this many bytes is not interleaved
PREFIX = " INFO bos_server.audit: audit "


class Trail:
    """Buffered audit lines on a file descriptor (standard error by default)."""

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.pending: List[bytes] = []
        self.scheduled = False
        self._second = -1
        self._stamp = ""

    def add(self, entry: dict) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:  # the logging module's default time format, local time
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        line = f"{self._stamp},{int((now - second) * 1000):03d}{PREFIX}".encode() + orjson.dumps(entry) + b"\n"
        self.pending.append(line)
        if len(self.pending) >= MAX_PENDING:
            self.flush()
        elif not self.scheduled:
            try:
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
                self.scheduled = True
            except RuntimeError:  # no event loop (a tool, a test): write now
                self.flush()

    def flush(self) -> None:
        self.scheduled = False
        lines, self.pending = self.pending, []
        if not lines:
            return
        sys.stderr.flush()  # whatever the logging module has buffered goes first
        chunk = b""
        for line in lines:
            if chunk and len(chunk) + len(line) > CHUNK:
                self._write(chunk)
                chunk = b""
            chunk += line
        self._write(chunk)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except InterruptedError:
                continue
            except OSError:
                return  # standard error is gone: nothing else could report it either


TRAIL = Trail()
atexit.register(TRAIL.flush)


def is_write(request: web.Request) -> bool:
    return request.method not in READS


def record(request: web.Request, status: int, principal: Optional[Principal], role: Optional[str],
           reason: Optional[str] = None) -> None:
    """One line for a write (allowed or not); reads are not audited."""
    if not is_write(request):
        return
    entry = {"method": request.method, "path": request.path, "status": status,
             "subject": principal.subject if principal else None, "role": role,
             "tenant": principal.tenant if principal and role == "tenant-admin" else None}
    if request.query_string:
        entry["query"] = request.query_string[:MAX_QUERY]
    if reason:
        entry["reason"] = reason
    TRAIL.add(entry)
