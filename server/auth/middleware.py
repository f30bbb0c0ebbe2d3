"""The auth middleware: authenticate the bearer token, authorise by the policy table, audit.

Runs outside the problem middleware so the audit line carries the final status.
Its own answers are problem+json: 401 with `WWW-Authenticate: Bearer ...`
(RFC 6750) for a missing or invalid token, 403 naming the role that was
missing, 503 when the issuer's keys cannot be fetched.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Mapping, Optional

from aiohttp import web

from bos_shared.xnames import canonical

from ..api.errors import PROBLEM_TYPE, ApiError, Handler, problem
from ..api.params import BODY_KEY, json_body, read_body
from ..api.tenancy import HEADER as TENANT_HEADER, TOKEN_TENANT
from ..jsonio import dumps
from ..store.history import ACTOR
from . import audit, policy
from .keys import KeysUnavailable
from .principal import NODE, TENANT_ADMIN, Principal
from .tokens import InvalidToken, Verifier

LOG = logging.getLogger("bos_server.auth")
MOUNT_PREFIX = "/apis/bos"
REALM = 'Bearer realm="bos"'
UNAUTHORIZED, FORBIDDEN = "Unauthorized", "Forbidden"
NODE_BODY_KEYS = frozenset({"id", "actual_state"})


class Denied(Exception):
    """403 with this detail; `required`: the roles that would have been allowed."""

    def __init__(self, detail: str, required: policy.Roles) -> None:
        super().__init__(detail)
        self.required = required


@functools.lru_cache(maxsize=1024)
def route_template(canonical_path: str) -> str:
    """`/apis/bos/v2/components/{component_id}/` -> `/v2/components/{component_id}`."""
    path = canonical_path
    if path == MOUNT_PREFIX or path.startswith(MOUNT_PREFIX + "/"):
        path = path[len(MOUNT_PREFIX):]
    return path.rstrip("/") or "/"


def route_of(request: web.Request) -> Optional[str]:
    resource = request.match_info.route.resource
    return route_template(resource.canonical) if resource is not None else None


def bearer_token(request: web.Request) -> Optional[str]:
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def unauthorized(detail: str, error: Optional[str] = "invalid_token") -> web.Response:
    challenge = REALM if error is None else f'{REALM}, error="{error}", error_description="{_quoted(detail)}"'
    return problem(401, UNAUTHORIZED, detail, {"WWW-Authenticate": challenge})


def forbidden(detail: str, required: policy.Roles, principal: Principal) -> web.Response:
    """403 problem; `required_roles`/`token_roles` let a client say which role was missing."""
    body = {"type": "about:blank", "title": FORBIDDEN, "status": 403, "detail": detail,
            "required_roles": policy.ordered(required), "token_roles": policy.ordered(principal.roles)}
    return web.Response(status=403, body=dumps(body), content_type=PROBLEM_TYPE,
                        headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope"'})


def _quoted(text: str) -> str:
    """An RFC 6750 error_description: printable ASCII without quote or backslash."""
    return "".join(c for c in text if 0x20 <= ord(c) < 0x7F and c not in '"\\')[:200]


def make_middleware(verifier: Verifier) -> Any:
    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request)
        roles = policy.allowed(request.method, route) if route is not None else None
        if roles is policy.OPEN:
            return await handler(request)
        what = f"{request.method} {route or request.path}"
        token = bearer_token(request)
        if token is None:
            needed = f" with the role {policy.describe(roles)}" if roles else ""
            audit.record(request, 401, None, None, "no token")
            return unauthorized(f"{what} needs a bearer token{needed}", None)
        try:
            principal = await verifier.principal(token)
        except InvalidToken as exc:
            audit.record(request, 401, None, None, str(exc))
            return unauthorized(str(exc))
        except KeysUnavailable as exc:
            LOG.error("Cannot verify tokens: %s", exc)
            return problem(503, "Service Unavailable", f"Cannot verify the token: {exc}")
        if roles is None:  # no such path or method: the router's 404/405
            return await handler(request)
        role = policy.grant(principal, roles)
        try:
            if role is None:
                raise Denied(f"{what} needs the role {policy.describe(roles)}; the token of "
                             f"'{principal.subject}' has role(s): {principal.describe_roles()}", roles)
            if role == TENANT_ADMIN:
                scope_to_tenant(request, principal)
            elif role == NODE:
                await check_node_report(request, principal)
        except Denied as exc:
            audit.record(request, 403, principal, role, str(exc))
            return forbidden(str(exc), exc.required, principal)
        except ApiError as exc:
            audit.record(request, exc.status, principal, role, exc.detail)
            return problem(exc.status, exc.title, exc.detail)
        actor = ACTOR.set(f"{principal.subject} ({role})")  # the component history's `by` (history.py)
        try:
            response = await handler(request)
        finally:
            ACTOR.reset(actor)
        audit.record(request, response.status, principal, role)
        return response
    return auth_middleware


def scope_to_tenant(request: web.Request, principal: Principal) -> None:
    """A tenant admin acts for the token's tenant (api.md §1.8), whatever the header says."""
    if not principal.tenant:
        raise Denied(f"The token of '{principal.subject}' has the role {TENANT_ADMIN} but no tenant claim",
                     policy.ADMIN_ONLY)
    header = request.headers.get(TENANT_HEADER)
    if header and header != principal.tenant:
        raise Denied(f"The {TENANT_HEADER} header names tenant '{header}' but the token is for tenant "
                     f"'{principal.tenant}'", policy.ADMIN_ONLY)
    request[TOKEN_TENANT] = principal.tenant


async def check_node_report(request: web.Request, principal: Principal) -> None:
    """A node reports its own actual state (reporter.md §1) and does nothing else."""
    target = request.match_info.get("component_id", "")
    own = principal.xname
    if own is None or (target != own and canonical(target) != canonical(own)):
        raise Denied(f"A node token for {principal.xname} may only report for its own component, "
                     f"not '{target}' (other changes need the role admin or tenant-admin)", policy.WRITE)
    raw = await read_body(request)
    request[BODY_KEY] = raw  # the handler parses it again: a node report is a few dozen bytes
    body = await json_body(request)
    if not _is_report(body, target):
        raise Denied(f"A node token may only PATCH actual_state (and id) of {principal.xname} "
                     "(other changes need the role admin or tenant-admin)", policy.WRITE)


def _is_report(body: Any, target: str) -> bool:
    if not isinstance(body, Mapping) or "actual_state" not in body or not set(body) <= NODE_BODY_KEYS:
        return False
    return "id" not in body or body["id"] == target
