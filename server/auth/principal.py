"""Who a verified token speaks for: subject, roles, tenant, node xname (docs/auth.md).

Roles come from a configurable claim (Keycloak's `realm_access.roles` by
default). A *node* is a token whose `sub` is a SPIFFE ID with a path segment
that is an xname, as SPIRE issues JWT-SVIDs to nodes, e.g.
`spiffe://shasta/compute/x1000c0s0b0n0/workload/bos-reporter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, FrozenSet, Iterable, Mapping, Optional

from bos_shared.xnames import is_valid_xname

from .config import ClaimNames

# The roles the policy knows (policy.py), strongest first: a request is granted by the
# first of the caller's roles that allows it, and that role's limits apply.
ADMIN = "admin"
TENANT_ADMIN = "tenant-admin"
READ_ONLY = "read-only"
NODE = "node"
ROLE_ORDER = (ADMIN, TENANT_ADMIN, READ_ONLY, NODE)
SPIFFE = "spiffe://"


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: FrozenSet[str]
    tenant: Optional[str] = None
    xname: Optional[str] = None

    def describe_roles(self) -> str:
        return ", ".join(r for r in ROLE_ORDER if r in self.roles) or "none"


def claim(claims: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path (`realm_access.roles`), or None."""
    value: Any = claims
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _names(value: Any) -> Iterable[str]:
    """A roles claim: a list of strings, or one space-separated string (OAuth `scope` style)."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return ()


def node_xname(subject: str) -> Optional[str]:
    """The xname in a SPIFFE ID's path, or None when the subject is not a node's."""
    if not subject.startswith(SPIFFE):
        return None
    _trust_domain, _, path = subject[len(SPIFFE):].partition("/")
    for segment in path.split("/"):
        if segment and segment != "s0" and is_valid_xname(segment):
            return segment
    return None


def principal_of(claims: Mapping[str, Any], names: ClaimNames) -> Principal:
    subject = claims.get("sub")
    subject = subject if isinstance(subject, str) else ""
    granted = set(_names(claim(claims, names.roles)))
    mapping = {names.admin: ADMIN, names.tenant_admin: TENANT_ADMIN, names.read_only: READ_ONLY}
    roles = {role for name, role in mapping.items() if name in granted}
    xname = node_xname(subject)
    if xname is not None:
        roles.add(NODE)
    tenant = claim(claims, names.tenant)
    return Principal(subject, frozenset(roles), tenant if isinstance(tenant, str) and tenant else None, xname)
