"""TAPMS client: which xnames a tenant owns (services.md §8)."""

from __future__ import annotations

import time
from typing import Dict, FrozenSet, Optional, Tuple

from .rest import JsonClient, ServiceError


class TenantNotFound(Exception):
    """TAPMS answered 404: the tenant does not exist."""


class TapmsClient:
    """Tenant look-ups with a short cache (D5: at most `cache_seconds` stale)."""

    def __init__(self, http: JsonClient, cache_seconds: float = 10.0) -> None:
        self.http = http
        self.cache_seconds = cache_seconds
        self._cache: Dict[str, Tuple[float, FrozenSet[str]]] = {}

    async def tenant_xnames(self, tenant: str) -> FrozenSet[str]:
        """Union of `status.tenantresources[].xnames`; raises TenantNotFound or ServiceError."""
        cached = self._cache.get(tenant)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        body = await self._fetch(tenant)
        xnames = frozenset(_xnames(body))
        self._cache[tenant] = (time.monotonic(), xnames)
        return xnames

    async def exists(self, tenant: str) -> bool:
        try:
            await self.tenant_xnames(tenant)
        except TenantNotFound:
            return False
        return True

    async def _fetch(self, tenant: str) -> dict:
        try:
            resp = await self.http.request("GET", f"/tenants/{tenant}")
        except ServiceError as exc:
            if exc.status == 404:
                raise TenantNotFound(tenant) from exc
            raise
        return resp.body if isinstance(resp.body, dict) else {}


def _xnames(body: dict) -> set:
    status: Optional[dict] = body.get("status") if isinstance(body, dict) else None
    found: set = set()
    for resource in (status or {}).get("tenantresources") or []:
        found.update((resource or {}).get("xnames") or [])
    return found
