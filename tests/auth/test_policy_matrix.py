"""Every endpoint x every role, allowed or denied as docs/auth.md specifies (real HTTP, auth on).

The routes come from the app router itself, so a route added later is covered
here automatically: if it is not one of the routes named below, the expected
answer is the safe default (reads for admin and read-only, writes admin-only).
The expectations are written out independently of `bos_server.auth.policy`.
"""

from __future__ import annotations

import re
from typing import Dict, List, Tuple

import pytest

from bos_server.api.app import create_app
from bos_server.auth.middleware import route_template
from tests.support.auth import Issuer
from tests.support.client import Api

from .conftest import AuthStack

OWN = "x1000c0s0b0n0"     # owned by the tenant admin's tenant (vcluster-blue)
OTHER = "x1000c0s0b1n0"
OPEN = {("GET", "/"), ("GET", "/v2"), ("GET", "/v2/version"), ("GET", "/v2/healthz"), ("GET", "/v2/openapi.json"),
        ("GET", "/v1"), ("GET", "/v1/version"), ("GET", "/v1/healthz"),
        ("GET", "/dashboard"), ("GET", "/dashboard/static/{name}")}  # the dashboard's files hold no data
# The endpoints the Cray-Tenant-Name header scopes (api.md §3.3-§3.9 "(T)") plus what ignores it harmlessly.
TENANT_ROUTES = {"/v2/components", "/v2/components/{component_id}", "/v2/applystaged", "/v2/sessions",
                 "/v2/sessions/{session_id}", "/v2/sessions/{session_id}/status", "/v2/sessiontemplates",
                 "/v2/sessiontemplates/{session_template_id}", "/v2/sessiontemplatesvalid/{session_template_id}",
                 "/v2/sessiontemplatetemplate", "/v2/components/{component_id}/history",
                 "/v2/sessions/{session_id}/stop",
                 # the dashboard's data, scoped like the extended status (docs/dashboard.md)
                 "/dashboard/api/sessions/{session_id}/nodes", "/dashboard/api/events"}
KNOWN_ROUTES = TENANT_ROUTES | {"/v2/options"} | {route for _method, route in OPEN}
ROLES = ("anonymous", "admin", "tenant-admin", "read-only", "node", "other-node", "no-role")
REPORT = {"id": OWN, "actual_state": {"bss_token": "5b0c1f3e-4c2a-4a61-9d7e-0a2f7c9e1b11"}}


def router_routes() -> List[Tuple[str, str]]:
    """(method, template) of every route the app serves, without mount prefix or trailing slash."""
    app = create_app(None)  # type: ignore[arg-type]  # the router only; no request is served
    routes = {(route.method, route_template(route.resource.canonical))
              for route in app.router.routes() if route.resource is not None and route.method != "HEAD"}
    return sorted(routes)


def expected_allowed(method: str, route: str, role: str) -> bool:
    if (method, route) in OPEN:
        return True
    if role in ("anonymous", "no-role", "other-node"):
        return False
    if role == "admin":
        return True
    if route not in KNOWN_ROUTES:  # the safe default for routes added later
        return role == "read-only" and method == "GET"
    if role == "read-only":
        return method == "GET"
    if role == "tenant-admin":
        return method == "GET" if route == "/v2/options" else route in TENANT_ROUTES
    assert role == "node"
    return (method, route) == ("PATCH", "/v2/components/{component_id}")


def token_for(issuer: Issuer, role: str) -> "str | None":
    return {"anonymous": None, "admin": issuer.admin(), "tenant-admin": issuer.tenant_admin(),
            "read-only": issuer.read_only(), "node": issuer.node(OWN), "other-node": issuer.node(OTHER),
            "no-role": issuer.token("someone", ["offline_access"])}[role]


def concrete(route: str) -> str:
    values = {"component_id": OWN, "session_id": "matrix-session", "session_template_id": "matrix-template",
              "name": "app.js"}
    path = re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: values.get(m.group(1), "matrix"), route)
    # the dashboard's event stream never ends by itself: ask for a session that does not exist (404)
    return path + "?session=matrix-session" if route == "/dashboard/api/events" else path


ROUTES = router_routes()


def test_the_router_has_every_route_of_the_contract() -> None:
    """Guards the enumeration itself: if it found nothing, the matrix would pass vacuously."""
    known = {(m, r) for m, r in ROUTES if r in KNOWN_ROUTES}
    assert len(known) >= 30, known


@pytest.fixture(scope="module")
def clients(auth_stack: AuthStack) -> Dict[str, Api]:
    return {role: auth_stack.client(token_for(auth_stack.issuer, role)) for role in ROLES}


@pytest.mark.parametrize("method, route", ROUTES, ids=[f"{m} {r}" for m, r in ROUTES])
def test_every_role_on_every_endpoint(method: str, route: str, clients: Dict[str, Api], admin: Api) -> None:
    outcomes = {}
    for role in ROLES:
        body = REPORT if method not in ("GET", "HEAD") else None
        resp = clients[role].request(method, concrete(route), json=body)
        assert resp.status_code != 500, (role, resp.text)
        outcomes[role] = resp.status_code
    wrong = {}
    for role, status in outcomes.items():
        if expected_allowed(method, route, role):
            if status in (401, 403):
                wrong[role] = f"denied with {status}"
        elif status != (401 if role == "anonymous" else 403):
            wrong[role] = f"expected {401 if role == 'anonymous' else 403}, got {status}"
    assert not wrong, wrong


@pytest.mark.parametrize("path", ["/apis/bos/v2/options", "/v2/options/", "/apis/bos/v2/options/"])
def test_mount_prefix_and_trailing_slash_do_not_bypass_the_policy(path: str, clients: Dict[str, Api],
                                                                  admin: Api) -> None:
    assert clients["read-only"].patch(path, json={"polling_frequency": 5}).status_code == 403
    assert clients["anonymous"].patch(path, json={"polling_frequency": 5}).status_code == 401
    assert clients["admin"].patch(path, json={"polling_frequency": 5}).status_code == 200


def test_unknown_paths_need_a_token_before_they_say_not_found(clients: Dict[str, Api]) -> None:
    assert clients["anonymous"].get("/v2/no-such-thing").status_code == 401
    assert clients["read-only"].get("/v2/no-such-thing").status_code == 404
