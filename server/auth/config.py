"""Auth and TLS settings from flags and environment (docs/auth.md; spec README item 8).

Authentication is off unless a key source is configured (`--auth-jwks-url` or
`--auth-jwks-file`): without one, the server behaves exactly as the reference
does and ignores the `Authorization` header.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Optional, Tuple

DEFAULT_LEEWAY = 30.0     # seconds of clock skew tolerated on exp/nbf/iat
MAX_LEEWAY = 300.0        # a larger skew is a broken clock, not a tolerance
DEFAULT_JWKS_LIFESPAN = 300.0
DEFAULT_TOKEN_CACHE = 16384


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name) or default


def _list(value: Optional[str]) -> Tuple[str, ...]:
    """A comma-separated flag or variable (`a,b`), without empty items."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


@dataclass(frozen=True)
class ClaimNames:
    """Where roles, tenant and role names are found in a token (Keycloak defaults)."""

    roles: str = "realm_access.roles"
    tenant: str = "tenant"
    admin: str = "admin"
    tenant_admin: str = "tenant-admin"
    read_only: str = "read-only"


@dataclass(frozen=True)
class AuthSettings:
    """Several key sources and issuers may be trusted at once (Keycloak for people, SPIRE for nodes)."""

    jwks_urls: Tuple[str, ...] = ()
    jwks_files: Tuple[str, ...] = ()
    issuers: Tuple[str, ...] = ()
    audiences: Tuple[str, ...] = ()
    leeway: float = DEFAULT_LEEWAY
    jwks_lifespan: float = DEFAULT_JWKS_LIFESPAN
    token_cache: int = DEFAULT_TOKEN_CACHE
    claims: ClaimNames = ClaimNames()

    @property
    def enabled(self) -> bool:
        return bool(self.jwks_urls or self.jwks_files)


@dataclass(frozen=True)
class TlsSettings:
    cert: Optional[str] = None
    key: Optional[str] = None

    @property
    def enabled(self) -> bool:
        return bool(self.cert)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("authentication (off unless a JWKS is given; docs/auth.md)")
    group.add_argument("--auth-jwks-url", default=_env("BOS_AUTH_JWKS_URL") or None,
                       help="JWKS URL(s) of the token issuers, comma-separated, e.g. Keycloak's "
                            ".../protocol/openid-connect/certs and SPIRE's OIDC provider's /keys (BOS_AUTH_JWKS_URL)")
    group.add_argument("--auth-jwks-file", default=_env("BOS_AUTH_JWKS_FILE") or None,
                       help="JWKS file(s) (JSON), comma-separated, re-read when they change (BOS_AUTH_JWKS_FILE)")
    group.add_argument("--auth-issuer", default=_env("BOS_AUTH_ISSUER") or None,
                       help="accepted `iss` claim(s), comma-separated; unchecked when unset (BOS_AUTH_ISSUER)")
    group.add_argument("--auth-audience", default=_env("BOS_AUTH_AUDIENCE") or None,
                       help="accepted `aud` value(s), comma-separated; unchecked when unset (BOS_AUTH_AUDIENCE)")
    group.add_argument("--auth-leeway", type=float, default=float(_env("BOS_AUTH_LEEWAY", str(DEFAULT_LEEWAY))),
                       help=f"seconds of clock skew allowed, at most {MAX_LEEWAY:g} (BOS_AUTH_LEEWAY)")
    group.add_argument("--auth-jwks-lifespan", type=float,
                       default=float(_env("BOS_AUTH_JWKS_LIFESPAN", str(DEFAULT_JWKS_LIFESPAN))),
                       help="seconds the fetched keys are used before they are fetched again (BOS_AUTH_JWKS_LIFESPAN)")
    group.add_argument("--auth-token-cache", type=int,
                       default=int(_env("BOS_AUTH_TOKEN_CACHE", str(DEFAULT_TOKEN_CACHE))),
                       help="verified tokens remembered until they expire; 0 disables (BOS_AUTH_TOKEN_CACHE)")
    defaults = ClaimNames()
    group.add_argument("--auth-roles-claim", default=_env("BOS_AUTH_ROLES_CLAIM", defaults.roles),
                       help="dotted path of the roles list in a token (BOS_AUTH_ROLES_CLAIM)")
    group.add_argument("--auth-tenant-claim", default=_env("BOS_AUTH_TENANT_CLAIM", defaults.tenant),
                       help="claim naming a tenant admin's tenant (BOS_AUTH_TENANT_CLAIM)")
    group.add_argument("--auth-admin-role", default=_env("BOS_AUTH_ADMIN_ROLE", defaults.admin))
    group.add_argument("--auth-tenant-admin-role", default=_env("BOS_AUTH_TENANT_ADMIN_ROLE", defaults.tenant_admin))
    group.add_argument("--auth-read-only-role", default=_env("BOS_AUTH_READ_ONLY_ROLE", defaults.read_only))
    tls = parser.add_argument_group("TLS (serve HTTPS directly, for sites without a gateway)")
    tls.add_argument("--tls-cert", default=_env("BOS_TLS_CERT") or None,
                     help="PEM certificate chain (BOS_TLS_CERT)")
    tls.add_argument("--tls-key", default=_env("BOS_TLS_KEY") or None,
                     help="PEM private key; may be omitted when it is in the certificate file (BOS_TLS_KEY)")


def from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> "tuple[AuthSettings, TlsSettings]":
    """The settings; nonsensical combinations are usage errors (exit 2), never a silent default."""
    urls, files = _list(args.auth_jwks_url), _list(args.auth_jwks_file)
    for url in urls:
        if not url.startswith(("https://", "http://")):
            parser.error(f"--auth-jwks-url {url}: not an http(s) URL")
    if not 0 <= args.auth_leeway <= MAX_LEEWAY:
        parser.error(f"--auth-leeway must be between 0 and {MAX_LEEWAY:g} seconds")
    if args.auth_jwks_lifespan <= 0:
        parser.error("--auth-jwks-lifespan must be positive")
    if args.auth_token_cache < 0:
        parser.error("--auth-token-cache must not be negative")
    for path in files:
        if not os.path.isfile(path):
            parser.error(f"--auth-jwks-file {path}: no such file")
    if args.tls_key and not args.tls_cert:
        parser.error("--tls-key needs --tls-cert")
    claims = ClaimNames(args.auth_roles_claim, args.auth_tenant_claim, args.auth_admin_role,
                        args.auth_tenant_admin_role, args.auth_read_only_role)
    auth = AuthSettings(urls, files, _list(args.auth_issuer), _list(args.auth_audience), args.auth_leeway,
                        args.auth_jwks_lifespan, args.auth_token_cache, claims)
    return auth, TlsSettings(args.tls_cert, args.tls_key)
