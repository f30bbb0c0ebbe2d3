"""TAPMS (services.md §8): tenants and the xnames they own; errors are `{"message": ...}`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from aiohttp import web

from .httputil import SimError

# Served under both so that a base URL of .../v1alpha3 works with or without the gateway prefix.
BASES = ("/v1alpha3", "/apis/tapms/v1alpha3")


@dataclass
class Tenant:
    name: str
    uuid: str
    hsm_group: str = ""
    state: str = "Deployed"
    xnames: Dict[str, None] = field(default_factory=dict)

    def describe(self) -> Dict[str, Any]:
        resources = [{"type": "compute", "hsmgrouplabel": self.hsm_group or self.name,
                      "enforceexclusivehsmgroups": True, "xnames": list(self.xnames)}]
        namespaces = [f"{self.name}-slurm"]
        return {"spec": {"tenantname": self.name, "state": self.state, "childnamespaces": namespaces,
                         "tenantresources": resources},
                "status": {"uuid": self.uuid, "childnamespaces": namespaces, "tenantresources": resources}}


def find(tenants: Dict[str, Tenant], name_or_uuid: str) -> Optional[Tenant]:
    tenant = tenants.get(name_or_uuid)
    if tenant is not None:
        return tenant
    return next((t for t in tenants.values() if t.uuid == name_or_uuid), None)


def make_routes(tenants: Dict[str, Tenant]) -> List[web.RouteDef]:
    async def list_tenants(request: web.Request) -> web.Response:
        return web.json_response([t.describe() for t in tenants.values()])

    async def get_tenant(request: web.Request) -> web.Response:
        tenant = find(tenants, request.match_info["tenant"])
        if tenant is None:
            raise SimError(404, f"Tenant {request.match_info['tenant']} not found")
        return web.json_response(tenant.describe())

    routes = []
    for base in BASES:
        routes += [web.get(f"{base}/tenants", list_tenants), web.get(f"{base}/tenants/{{tenant}}", get_tenant)]
    return routes
