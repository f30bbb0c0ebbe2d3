"""The HTTP server around the application: even transport-level errors are problem+json (api.md §5).

aiohttp answers requests its own parser refuses (a request line over the limit,
thousands of headers, bytes that are not HTTP) before any middleware runs, as
`text/plain`, and offers no public hook for it (aio-libs/aiohttp#3287). The one
place those answers are made is `RequestHandler.handle_error`; this module
installs a handler class that overrides it, through the runner's server factory,
and runs the application the way `web.run_app` does (SIGTERM/SIGINT stop it
cleanly, cleanup contexts run), on uvloop's event loop.

uvloop (libuv) runs the loop and the sockets in C: a request costs about a sixth
less API CPU than on asyncio's own loop (issue 13: `POST /v2/sessions` is
sequential, so its rate is the inverse of the time a request takes). A venv made
before uvloop was a dependency runs on asyncio's loop until `make venv` installs it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from http import HTTPStatus
from typing import Any, Optional

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from ..logs import printable
from .errors import BAD_REQUEST, problem

LOG = logging.getLogger("bos_server.api")
MAX_REASON = 200


def _title(status: int) -> str:
    if status == 400:
        return BAD_REQUEST
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _detail(status: int, exc: Optional[BaseException], message: Optional[str]) -> str:
    if status >= 500:
        return "An unexpected error occurred; see the server log"
    reason = exc.message if isinstance(exc, HttpProcessingError) and exc.message else (message or _title(status))
    reason = printable(str(reason))
    if len(reason) > MAX_REASON:
        reason = reason[:MAX_REASON] + "..."
    return f"The HTTP request could not be parsed: {reason}"


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, with errors answered as RFC 7807 problems."""

    def handle_error(self, request: Any, status: int = 500, exc: Optional[BaseException] = None,
                     message: Optional[str] = None) -> web.StreamResponse:
        if status >= 500:
            LOG.error("Error handling request from %s", request.remote, exc_info=exc)
        else:
            LOG.warning("Refused a malformed HTTP request from %s: %s", request.remote,
                        printable(str(getattr(exc, "message", None) or message or status))[:MAX_REASON])
        if request.writer.output_size > 0:  # part of a response went out: only closing is left
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        response = problem(status, _title(status), _detail(status, exc, message))
        response.force_close()
        return response


class ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemAppRunner(web.AppRunner):
    """An AppRunner whose server makes ProblemRequestHandler connections."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return ProblemServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, **self._kwargs)


async def _serve(app: web.Application, host: str, port: int, reuse_port: bool, ssl_context: Optional[ssl.SSLContext],
                 kwargs: dict) -> None:
    runner = ProblemAppRunner(app, handle_signals=True, **kwargs)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port, ssl_context=ssl_context).start()
        await asyncio.Event().wait()  # until SIGTERM/SIGINT raise GracefulExit
    finally:
        await runner.cleanup()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop, or asyncio's when uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_app(app: web.Application, *, host: str, port: int, reuse_port: bool = False,
            ssl_context: Optional[ssl.SSLContext] = None, **kwargs: Any) -> None:
    """Serve until SIGTERM/SIGINT, then clean up (what `web.run_app` does, with ProblemServer).

    `ssl_context` serves HTTPS (`--tls-cert`, docs/auth.md).
    """
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, host, port, reuse_port, ssl_context, kwargs))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        main.cancel()
        loop.run_until_complete(asyncio.gather(main, return_exceptions=True))
        rest = asyncio.all_tasks(loop)
        for task in rest:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
