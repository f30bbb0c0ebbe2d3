"""The `Cray-Tenant-Name` header (api.md §1.8): who is asking, and which xnames they own."""

from __future__ import annotations

from typing import FrozenSet, Iterable, Optional

from aiohttp import web

from ..clients.rest import ServiceError
from ..clients.tapms import TenantNotFound
from .context import ctx, request_value
from .errors import BadRequest, InvalidTenant, NotFound, Unavailable

HEADER = "Cray-Tenant-Name"
MAX_LENGTH = 127
# Set by the auth middleware for a tenant admin (docs/auth.md)
TOKEN_TENANT: web.RequestKey[Optional[str]] = web.RequestKey("bos.token_tenant")


def tenant_of(request: web.Request) -> Optional[str]:
    """The header's tenant, or None for "no tenant" (absent or empty).

    With auth on, a tenant admin's tenant comes from the token instead (the
    middleware has already refused a header naming another tenant).
    """
    forced = request_value(request, TOKEN_TENANT)
    if forced is not None:
        return forced
    value = request.headers.get(HEADER)
    if value is not None and len(value) > MAX_LENGTH:
        raise BadRequest(f"The {HEADER} header must be at most {MAX_LENGTH} characters long")
    if value and not value.isprintable():  # undecodable bytes arrive as lone surrogates
        raise BadRequest(f"The {HEADER} header must be UTF-8 text without control characters")
    return value or None


async def require_tenant_exists(request: web.Request, tenant: Optional[str]) -> None:
    """Session create and template PUT: the tenant must exist in TAPMS."""
    if not tenant:
        return
    try:
        await ctx(request).tapms.tenant_xnames(tenant)
    except TenantNotFound:
        raise InvalidTenant("The provided tenant does not exist") from None
    except ServiceError as exc:
        raise Unavailable(f"Unable to retrieve data for tenant {tenant}: {exc.reason}") from None


async def owned_xnames(request: web.Request, tenant: str) -> FrozenSet[str]:
    """The tenant's xnames for component endpoints (TAPMS 404 is an invalid tenant)."""
    try:
        return await ctx(request).tapms.tenant_xnames(tenant)
    except TenantNotFound:
        raise InvalidTenant(f"Data not found for tenant {tenant}") from None
    except ServiceError as exc:
        raise Unavailable(f"Unable to retrieve data for tenant {tenant}: {exc.reason}") from None


async def check_owned(request: web.Request, tenant: Optional[str], ids: Iterable[str]) -> None:
    """404 for the first ID (in order) the tenant does not own (D17)."""
    if not tenant:
        return
    owned = await owned_xnames(request, tenant)
    for component_id in ids:
        if component_id not in owned:
            raise NotFound(f"Component '{component_id}' does not exist")
