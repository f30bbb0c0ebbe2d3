"""One JSON-over-HTTP client with the retry policy of operators.md §2.6.

Every service client (BOS API, HSM, PCS, BSS, CFS, IMS, TAPMS) is a thin layer
over `JsonClient`, so timeouts, retries, back-off and error rendering are
decided once: connection failures (request never sent) are retried for every
method; 500/502/503/504, read timeouts and dropped connections only for idempotent
requests (idempotent methods, or a call that says it is, like the BOS API's
absolute-value PATCHes), with bounded exponential back-off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Optional

import aiohttp

from .. import metrics
from ..jsonio import encode, parse

LOG = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
BACKOFF_FACTOR = 0.5
BACKOFF_MAX = 120.0
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Awaited before every attempt of a write request (anything but GET/HEAD/OPTIONS and queries
# sent as POST, `request(reads=True)`). The
# operators set it while acting on claimed components, so a replica that lost its claim
# sends nothing more (it raises); see operators/claims.py and docs/ha.md.
BEFORE_WRITE: ContextVar[Optional[Callable[[], Awaitable[None]]]] = ContextVar("bos_before_write", default=None)


class ServiceError(Exception):
    """A request to a service failed for good; the message is one line."""

    def __init__(self, service: str, method: str, url: str, reason: str,
                 status: Optional[int] = None, body: Any = None) -> None:
        self.service = service
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        self.reason = reason
        super().__init__(" ".join(f"{service} {method} {url} failed: {reason}".split()))


class ServiceUnavailable(ServiceError):
    """Connection failure, timeout or 5xx after retries: the service is down, not the request wrong."""


def backoff(retry: int) -> float:
    """Seconds to wait before retry number `retry` (1-based): 0, 1, 2, 4, ... capped at 120."""
    if retry <= 1:
        return 0.0
    return min(BACKOFF_MAX, BACKOFF_FACTOR * 2 ** (retry - 1))


def single_line(body: Any, limit: int = 500) -> str:
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any

    def header(self, name: str) -> Optional[str]:
        """Case-insensitive header lookup (aiohttp's CIMultiDict already is)."""
        return self.headers.get(name)


@dataclass
class JsonClient:
    """A base URL plus the retry policy for one service.

    `read_timeout` may be changed between passes (the `<svc>_read_timeout`
    options); `budget` bounds the total time of one call including retries.
    """

    service: str
    base_url: str
    retries: int = 10
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    budget: Optional[float] = None
    token: Optional[str] = None
    session: Optional[aiohttp.ClientSession] = field(default=None, repr=False)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            connector = aiohttp.TCPConnector(limit=64, enable_cleanup_closed=True)
            self.session = aiohttp.ClientSession(connector=connector)
        return self.session

    async def close(self) -> None:
        if self.session is not None and not self.session.closed:
            await self.session.close()

    async def request(self, method: str, path: str, *, params: Optional[Mapping[str, Any]] = None,
                      json_body: Any = None, headers: Optional[Mapping[str, str]] = None,
                      ok_statuses: tuple = (), idempotent: Optional[bool] = None,
                      decoder: Optional[Callable[[bytes], Any]] = None, reads: bool = False) -> Response:
        """Send with retries; return the 2xx (or `ok_statuses`) response or raise ServiceError.

        `idempotent` overrides the method's default (PUT/DELETE/GET yes, POST/PATCH no).
        `decoder` decodes a 2xx body instead of the generic JSON parse (`_decode`), which it
        falls back to when the decoder raises ValueError (msgspec's errors included).
        `reads`: a query sent with a write method (PCS's `POST /power-status`, HSM's
        `POST /State/Components/Query`) changes nothing, so as a GET it awaits no fence check
        (BEFORE_WRITE): it was 30 % of the lease keys fence-checked in a boot (issue 13)."""
        url = self.url(path)
        body = None if json_body is None else encode(json_body)  # once, not per attempt
        started = time.monotonic()
        deadline = started + self.budget if self.budget else None
        repeatable = method in IDEMPOTENT if idempotent is None else idempotent
        guard = BEFORE_WRITE.get() if method not in READ_METHODS and not reads else None
        attempt = 0
        failed = True
        try:
            while True:
                attempt += 1
                if guard is not None:
                    await guard()
                outcome = await self._attempt(method, url, params, body, headers, deadline, decoder)
                if isinstance(outcome, Response) and (200 <= outcome.status < 300 or outcome.status in ok_statuses):
                    failed = False
                    return outcome
                error = self._error(method, url, outcome)
                if not self._retryable(repeatable, outcome) or attempt > self.retries:
                    raise error
                delay = backoff(attempt)
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise error
                LOG.info("Retrying %s %s (attempt %d) in %.1fs: %s", method, url, attempt + 1, delay, error.reason)
                await asyncio.sleep(delay)
        finally:
            metrics.service_call(self.service, method, started, attempt, failed)

    async def _attempt(self, method: str, url: str, params: Optional[Mapping[str, Any]], body: Optional[bytes],
                       headers: Optional[Mapping[str, str]], deadline: Optional[float],
                       decoder: Optional[Callable[[bytes], Any]] = None) -> Any:
        read = self.read_timeout
        if deadline is not None:
            read = max(0.1, min(read, deadline - time.monotonic()))
        timeout = aiohttp.ClientTimeout(sock_connect=self.connect_timeout, sock_read=read,
                                        total=read + self.connect_timeout)
        hdrs = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        try:
            async with self._session().request(method, url, params=_query(params), data=body,
                                               headers=hdrs, timeout=timeout) as resp:
                raw = await resp.read()
                return Response(resp.status, resp.headers, _decode(raw, decoder if 200 <= resp.status < 300 else None))
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            return ("unsent", exc)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            return ("sent", exc)

    @staticmethod
    def _retryable(repeatable: bool, outcome: Any) -> bool:
        if isinstance(outcome, Response):
            return outcome.status in RETRY_STATUSES and repeatable
        kind, _exc = outcome
        return kind == "unsent" or repeatable

    def _error(self, method: str, url: str, outcome: Any) -> ServiceError:
        if isinstance(outcome, Response):
            cls = ServiceUnavailable if outcome.status >= 500 else ServiceError
            return cls(self.service, method, url, f"status {outcome.status}: {single_line(outcome.body)}",
                       outcome.status, outcome.body)
        _kind, exc = outcome
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ServiceUnavailable(self.service, method, url, reason)

    async def get(self, path: str, **kw: Any) -> Any:
        return (await self.request("GET", path, **kw)).body

    async def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return (await self.request("POST", path, json_body=body, **kw)).body

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return (await self.request("PATCH", path, json_body=body, **kw)).body

    async def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return (await self.request("PUT", path, json_body=body, **kw)).body

    async def delete(self, path: str, **kw: Any) -> Any:
        return (await self.request("DELETE", path, **kw)).body


def _query(params: Optional[Mapping[str, Any]]) -> Optional[dict]:
    """Drop None values and render booleans as `true`/`false` (services.md §1)."""
    if not params:
        return None
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _decode(raw: bytes, decoder: Optional[Callable[[bytes], Any]] = None) -> Any:
    if not raw:
        return None
    if decoder is not None:
        try:
            return decoder(raw)
        except ValueError:  # not the shape it knows: read as any JSON (the caller checks it)
            pass
    try:
        return parse(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
