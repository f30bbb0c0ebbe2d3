"""Who may call what: one declarative table, route template x method -> roles (docs/auth.md).

The middleware (middleware.py) consults only this table. Routes are the
templates of the app router without the `/apis/bos` mount prefix or a trailing
slash (api.md §1.1). A route missing from the table gets the safe default:
reads for administrators and read-only callers (not tenant admins: a new route
is not known to scope its answer by tenant), writes for administrators only.

Limits that depend on the role that granted a request:
- tenant-admin: the tenant comes from the token; a `Cray-Tenant-Name` header
  naming another tenant is 403 (api.md §1.8 scoping then applies as usual);
- node: only its own component, and only an `actual_state` body (reporter.md §1).

The v1 API (v1.md) is untenanted, so it is left to the default: tenant admins
neither read nor write there.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, List, Optional, Tuple

from .principal import ADMIN, NODE, READ_ONLY, ROLE_ORDER, TENANT_ADMIN, Principal

Roles = FrozenSet[str]

OPEN: Roles = frozenset({"anyone"})        # no token needed (health, version, OpenAPI)
READ: Roles = frozenset({ADMIN, TENANT_ADMIN, READ_ONLY})
GLOBAL_READ: Roles = frozenset({ADMIN, READ_ONLY})
WRITE: Roles = frozenset({ADMIN, TENANT_ADMIN})
REPORT: Roles = frozenset({ADMIN, TENANT_ADMIN, NODE})
ADMIN_ONLY: Roles = frozenset({ADMIN})

READ_METHODS = ("GET", "HEAD")

POLICY: Dict[Tuple[str, str], Roles] = {
    ("GET", "/"): OPEN,
    ("GET", "/v2"): OPEN,
    ("GET", "/v2/version"): OPEN,
    ("GET", "/v2/healthz"): OPEN,
    ("GET", "/v2/openapi.json"): OPEN,
    ("GET", "/v1"): OPEN,
    ("GET", "/v1/version"): OPEN,
    ("GET", "/v1/healthz"): OPEN,
    ("GET", "/v2/options"): READ,
    ("PATCH", "/v2/options"): ADMIN_ONLY,             # global: never a tenant's to change
    ("GET", "/v2/components"): READ,
    ("PUT", "/v2/components"): WRITE,
    ("PATCH", "/v2/components"): WRITE,
    ("GET", "/v2/components/{component_id}"): READ,
    ("PUT", "/v2/components/{component_id}"): WRITE,
    ("PATCH", "/v2/components/{component_id}"): REPORT,  # the reporter's one request
    ("DELETE", "/v2/components/{component_id}"): WRITE,
    ("POST", "/v2/applystaged"): WRITE,
    ("POST", "/v2/sessions"): WRITE,
    ("GET", "/v2/sessions"): READ,
    ("DELETE", "/v2/sessions"): WRITE,
    ("GET", "/v2/sessions/{session_id}"): READ,
    ("PATCH", "/v2/sessions/{session_id}"): WRITE,
    ("DELETE", "/v2/sessions/{session_id}"): WRITE,
    ("GET", "/v2/sessions/{session_id}/status"): READ,
    ("POST", "/v2/sessions/{session_id}/status"): WRITE,
    ("POST", "/v2/sessions/{session_id}/stop"): WRITE,  # tenant-scoped like DELETE, which stops first
    ("GET", "/v2/sessiontemplates"): READ,
    ("GET", "/v2/sessiontemplates/{session_template_id}"): READ,
    ("PUT", "/v2/sessiontemplates/{session_template_id}"): WRITE,
    ("PATCH", "/v2/sessiontemplates/{session_template_id}"): WRITE,
    ("DELETE", "/v2/sessiontemplates/{session_template_id}"): WRITE,
    ("GET", "/v2/sessiontemplatesvalid/{session_template_id}"): READ,
    ("GET", "/v2/sessiontemplatetemplate"): READ,
    # observability extensions (docs/dashboard.md, docs/metrics.md): a history is scoped by tenant like its
    # component; the dashboard's files hold no data; its data endpoints are scoped like the extended status
    # (a tenant admin's view is its token's tenant, a `?tenant=` naming another is a 400); /metrics keeps the
    # default (administrators and read-only callers)
    ("GET", "/v2/components/{component_id}/history"): READ,
    ("GET", "/dashboard"): OPEN,
    ("GET", "/dashboard/static/{name}"): OPEN,
    ("GET", "/dashboard/api/sessions/{session_id}/nodes"): READ,
    ("GET", "/dashboard/api/events"): READ,
}


def allowed(method: str, route: str) -> Roles:
    """The roles that may call `method route` (the safe default for routes not in the table)."""
    method = "GET" if method == "HEAD" else method
    rule = POLICY.get((method, route))
    if rule is not None:
        return rule
    return GLOBAL_READ if method in READ_METHODS else ADMIN_ONLY


def grant(principal: Principal, roles: Roles) -> Optional[str]:
    """The strongest of the caller's roles that the rule allows; None: forbidden."""
    for role in ROLE_ORDER:
        if role in principal.roles and role in roles:
            return role
    return None


def ordered(roles: FrozenSet[str]) -> List[str]:
    return [role for role in ROLE_ORDER if role in roles]


def describe(roles: Roles) -> str:
    names = ordered(roles)
    if not names:
        return "none"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
