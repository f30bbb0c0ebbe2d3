"""HTTP plumbing shared by the fake services: errors as data, request log, fault middleware.

Every service raises `SimError`; one middleware per service turns it (and
aiohttp's own 404/405) into that service's error shape (RFC 7807 problem, TAPMS
`{"message"}` or S3 XML), records the request for the control API and applies
injected service faults before the handler runs.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Deque, Dict, List, Optional, Tuple
from xml.sax.saxutils import escape

import msgspec
from aiohttp import web

from .faults import ServiceFaults

LOG = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SimError(Exception):
    """A request failed with `status`; rendered in the service's own error shape."""

    def __init__(self, status: int, detail: str, title: Optional[str] = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or _phrase(status)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_SECONDS: Dict[int, str] = {}  # whole second -> its "%Y-%m-%dT%H:%M:%S" (a bounded memo)
_SECONDS_MAX = 4096


def _second(whole: int) -> str:
    """The date and time of a whole UTC second. PCS stamps every node of a power-status answer
    and most share a handful of seconds: strftime per node was 7 % of the simulator's CPU in a
    30,000-node boot."""
    text = _SECONDS.get(whole)
    if text is None:
        if len(_SECONDS) >= _SECONDS_MAX:
            _SECONDS.clear()
        text = _SECONDS[whole] = datetime.fromtimestamp(whole, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return text


def stamp(epoch: float, nanos: bool = True) -> str:
    """UTC time as the Go services print it: `2025-01-13T15:04:05.123456789Z` (or without fraction).

    The microseconds are rounded as `datetime.fromtimestamp` rounds them (the fraction times 10^6,
    half to even, carried into the next second at 10^6), without building a datetime per stamp."""
    fraction, whole = math.modf(epoch)
    micros = round(fraction * 1e6)
    if micros >= 1000000:
        micros -= 1000000
        whole += 1
    if not nanos:
        return _second(int(whole)) + "Z"
    return _second(int(whole)) + f".{micros * 1000:09d}Z"


def problem(status: int, detail: str, title: Optional[str] = None) -> web.Response:
    """An RFC 7807 body as HSM, PCS, BSS, CFS and IMS send them (services.md §1)."""
    body = {"type": "about:blank", "title": title or _phrase(status), "detail": detail, "status": status}
    return web.json_response(body, status=status, content_type="application/problem+json")


def message_error(status: int, detail: str, title: Optional[str] = None) -> web.Response:
    """TAPMS errors are `{"message": "..."}` (services.md §8)."""
    return web.json_response({"message": detail}, status=status)


_S3_CODES = {404: "NoSuchKey", 500: "InternalError", 503: "ServiceUnavailable", 403: "AccessDenied",
             400: "InvalidRequest"}


def s3_error(status: int, detail: str, title: Optional[str] = None) -> web.Response:
    """S3 XML error document (services.md §7)."""
    code = _S3_CODES.get(status, "InternalError")
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           f"<Error><Code>{code}</Code><Message>{escape(detail)}</Message><RequestId>sim</RequestId></Error>")
    return web.Response(status=status, text=xml, content_type="application/xml")


Renderer = Callable[[int, str, Optional[str]], web.Response]

ERROR_RENDERERS: Dict[str, Renderer] = {
    "problem": problem,
    "message": message_error,
    "s3": s3_error,
}


ENCODE = msgspec.json.Encoder().encode  # compact UTF-8 JSON, as json_answer's


def json_answer(data: Any, status: int = 200) -> web.Response:
    """`web.json_response` encoded by msgspec: the answers the operators ask for per page
    (PCS power status, HSM component queries, CFS component pages) were, with `json.dumps`,
    a tenth of the simulator's CPU in a 30,000-node reboot (issue 13). Compact, UTF-8 JSON."""
    return web.Response(body=ENCODE(data), status=status, content_type="application/json")


def entries_answer(name: str, entries: List[bytes], after: Optional[Dict[str, Any]] = None) -> web.Response:
    """What json_answer({name: [...], **after}) sends, from entries each encoded already: the memoised
    JSON of each node or component (PCS power status, HSM queries, CFS pages), joined, not decoded
    and encoded again."""
    body = b'{"' + name.encode() + b'":[' + b",".join(entries) + b"]"
    for key, value in (after or {}).items():
        body += b"," + ENCODE(key) + b":" + ENCODE(value)
    return web.Response(body=body + b"}", content_type="application/json")


# msgspec decodes what json.loads decodes to the same value, and refuses more (NaN, out-of-range
# numbers, lone surrogates, a BOM, other encodings); the operators' bodies (PCS power-status lists
# of 2,800 xnames) decode about three times faster (issue 13).
_DECODE = msgspec.json.Decoder().decode


async def json_body(request: web.Request) -> Any:
    """The decoded JSON body; a 400 problem when it is missing or malformed."""
    raw = await request.read()
    if not raw.strip():
        raise SimError(400, "The request body is empty")
    try:
        return _DECODE(raw)
    except msgspec.DecodeError:
        pass  # what msgspec refuses, json.loads decides (the same value, or its own error text)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SimError(400, f"The request body is not valid JSON: {exc}") from exc


def parse_bool(text: Optional[str], name: str) -> Optional[bool]:
    """Query booleans in any case (services.md §1); "" and absent mean no filter."""
    if text is None or text == "":
        return None
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise SimError(400, f"Invalid value for '{name}': '{text}' is not a boolean")


def csv_set(text: Optional[str]) -> Optional[set]:
    """A comma-separated query/filter value as a set; empty means no filter."""
    if not text:
        return None
    return {item.strip() for item in text.split(",") if item.strip()}


@dataclass(slots=True)
class RequestRecord:
    seq: int
    time: float
    method: str
    path: str
    query: List[Tuple[str, str]]
    headers: Dict[str, str]
    body: bytes
    status: int = 0

    def describe(self) -> Dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "method": self.method, "path": self.path,
                "query": _query_dict(self.query), "headers": self.headers, "body": _decode(self.body),
                "status": self.status}


def _query_dict(pairs: List[Tuple[str, str]]) -> Dict[str, Any]:
    """Single values as strings, repeated parameters as lists."""
    out: Dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            prior = out[key]
            out[key] = (prior if isinstance(prior, list) else [prior]) + [value]
        else:
            out[key] = value
    return out


def _decode(body: bytes) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Recorder:
    """The last `limit` requests of every service, for tests and debugging."""

    def __init__(self, limit: int, body_limit: int) -> None:
        self.limit = limit
        self.body_limit = body_limit
        self._logs: Dict[str, Deque[RequestRecord]] = {}
        self._seq = itertools.count(1)
        self.counts: Dict[str, int] = {}

    def record(self, service: str, request: web.Request, body: bytes) -> RequestRecord:
        rec = RequestRecord(next(self._seq), time.time(), request.method, request.path,
                            list(request.query.items()), dict(request.headers), body[: self.body_limit])
        self._logs.setdefault(service, deque(maxlen=self.limit)).append(rec)
        self.counts[service] = self.counts.get(service, 0) + 1
        return rec

    def list(self, service: str, since: int = 0) -> List[Dict[str, Any]]:
        return [rec.describe() for rec in self._logs.get(service, ()) if rec.seq > since]

    def clear(self, service: Optional[str] = None) -> None:
        if service is None:
            self._logs.clear()
        else:
            self._logs.pop(service, None)


def service_middleware(service: str, base: str, style: str, recorder: Recorder,
                       faults: ServiceFaults) -> Any:  # an aiohttp middleware
    """Record, inject faults, and render errors for one service."""
    render = ERROR_RENDERERS[style]

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        rec = recorder.record(service, request, body)
        response = await _respond(request, handler, render, faults, service, base)
        rec.status = response.status
        return response

    return middleware


async def _respond(request: web.Request, handler: Handler, render: Renderer,
                   faults: ServiceFaults, service: str, base: str) -> web.StreamResponse:
    relative = request.path[len(base):] if base and request.path.startswith(base) else request.path
    rule = faults.take(service, request.method, request.path, relative)
    if rule is not None:
        if rule.delay > 0:
            await asyncio.sleep(rule.delay)
        if rule.status is not None:
            return render(rule.status, f"Injected fault {rule.id}: {service} answers {rule.status}", None)
    try:
        return await handler(request)
    except SimError as exc:
        return render(exc.status, exc.detail, exc.title)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render(exc.status, exc.reason, exc.reason)


def build_app(service: str, base: str, style: str, recorder: Recorder, faults: ServiceFaults) -> web.Application:
    """An application whose every response goes through the service middleware."""
    app = web.Application(middlewares=[service_middleware(service, base, style, recorder, faults)],
                          client_max_size=256 * 1024 * 1024)
    return app
