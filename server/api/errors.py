"""Errors as data: one exception hierarchy, turned into RFC 7807 problems in one middleware.

Titles are the exact strings of api.md §5; every other module raises these.
"""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable, Optional

from aiohttp import web
from redis.exceptions import RedisError

from .. import metrics
from ..store import TooMuchContention
from ..jsonio import dumps

LOG = logging.getLogger("bos_server.api")

BAD_REQUEST = "Bad Request"
INVALID_TENANT = "Invalid tenant"
NOT_FOUND = "The resource was not found"
ALREADY_EXISTS = "The resource to be created already exists"
ACTUAL_STATE_CONFLICT = "Actual state can not be updated."
ACTUAL_STATE_DETAIL = ("BOS is currently changing the state of the node, and the actual state "
                       "can not be accurately recorded")
REDIS_UNAVAILABLE = "Unable to connect to the Redis database"
SERVICE_UNAVAILABLE = "Service Unavailable"
PROBLEM_TYPE = "application/problem+json"


class ApiError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str, title: Optional[str] = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if title is not None:
            self.title = title


class BadRequest(ApiError):
    status, title = 400, BAD_REQUEST


class InvalidTenant(ApiError):
    status, title = 400, INVALID_TENANT


class NotFound(ApiError):
    status, title = 404, NOT_FOUND


class Conflict(ApiError):
    status, title = 409, ALREADY_EXISTS


class ActualStateConflict(ApiError):
    status, title = 409, ACTUAL_STATE_CONFLICT

    def __init__(self) -> None:
        super().__init__(ACTUAL_STATE_DETAIL)


class Unavailable(ApiError):
    status, title = 503, SERVICE_UNAVAILABLE


def problem(status: int, title: str, detail: str, headers: Optional[dict] = None) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.Response(status=status, body=dumps(body), content_type=PROBLEM_TYPE, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response = await answer(request, handler)
    logged(request, response, started)
    return response


def logged(request: web.Request, response: web.StreamResponse, started: float) -> None:
    """The request's line in the log: at ERROR for a 5xx, else at DEBUG (`started`: its perf_counter)."""
    level = logging.ERROR if response.status >= 500 else logging.DEBUG
    if LOG.isEnabledFor(level):  # not for every request at the usual level (the path, the call)
        elapsed = (time.perf_counter() - started) * 1000
        LOG.log(level, "%s %s -> %d (%.1f ms)", request.method, request.path, response.status, elapsed)


async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response, or the problem its exception stands for (never raises but for cancellation)."""
    try:
        return await handler(request)
    except ApiError as exc:
        return problem(exc.status, exc.title, exc.detail)
    except web.HTTPMethodNotAllowed as exc:
        return problem(405, "Method Not Allowed", f"{request.method} is not allowed on {request.path}",
                       {"Allow": ", ".join(sorted(exc.allowed_methods))})
    except web.HTTPNotFound:
        return problem(404, "Not Found", f"No such path: {request.path}")
    except web.HTTPRequestEntityTooLarge as exc:
        return problem(413, "Request Entity Too Large", exc.text or "The request body is too large")
    except web.HTTPException as exc:
        return problem(exc.status, exc.reason, exc.text or exc.reason)
    except (RedisError, ConnectionError) as exc:
        metrics.redis_error("api")
        return problem(503, REDIS_UNAVAILABLE, " ".join(str(exc).split()) or type(exc).__name__)
    except TooMuchContention as exc:
        return problem(503, SERVICE_UNAVAILABLE, str(exc))
    except Exception:  # the one place that turns the unexpected into a 500, with a traceback
        LOG.exception("Unhandled error on %s %s", request.method, request.path)
        return problem(500, "Internal Server Error", "An unexpected error occurred; see the server log")
