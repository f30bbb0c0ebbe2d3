"""Auth and TLS settings from flags and environment (docs/auth.md; spec README item 8).

Authentication is off unless a key source is configured (`--auth-jwks-url` or
`--auth-jwks-file`): without one, the server behaves exactly as the reference
does and ignores the `Authorization` header.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Optional

DEFAULT_LEEWAY = 30.0     # seconds of clock skew tolerated on exp/nbf/iat
MAX_LEEWAY = 300.0        # a larger skew is a broken clock, not a tolerance
DEFAULT_JWKS_LIFESPAN = 300.0
DEFAULT_TOKEN_CACHE = 16384


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name) or default


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
    jwks_url: Optional[str] = None
    jwks_file: Optional[str] = None
    issuer: Optional[str] = None
    audience: Optional[str] = None
    leeway: float = DEFAULT_LEEWAY
    jwks_lifespan: float = DEFAULT_JWKS_LIFESPAN
    token_cache: int = DEFAULT_TOKEN_CACHE
    claims: ClaimNames = ClaimNames()

    @property
    def enabled(self) -> bool:
        return bool(self.jwks_url or self.jwks_file)


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
                       help="JWKS URL of the token issuer, e.g. Keycloak's .../protocol/openid-connect/certs "
                            "(BOS_AUTH_JWKS_URL)")
    group.add_argument("--auth-jwks-file", default=_env("BOS_AUTH_JWKS_FILE") or None,
                       help="JWKS file (JSON), re-read when it changes (BOS_AUTH_JWKS_FILE)")
    group.add_argument("--auth-issuer", default=_env("BOS_AUTH_ISSUER") or None,
                       help="required `iss` claim (BOS_AUTH_ISSUER)")
    group.add_argument("--auth-audience", default=_env("BOS_AUTH_AUDIENCE") or None,
                       help="required `aud` claim (BOS_AUTH_AUDIENCE)")
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
    if args.auth_jwks_url and args.auth_jwks_file:
        parser.error("give --auth-jwks-url or --auth-jwks-file, not both")
    if not 0 <= args.auth_leeway <= MAX_LEEWAY:
        parser.error(f"--auth-leeway must be between 0 and {MAX_LEEWAY:g} seconds")
    if args.auth_jwks_lifespan <= 0:
        parser.error("--auth-jwks-lifespan must be positive")
    if args.auth_token_cache < 0:
        parser.error("--auth-token-cache must not be negative")
    if args.auth_jwks_file and not os.path.isfile(args.auth_jwks_file):
        parser.error(f"--auth-jwks-file {args.auth_jwks_file}: no such file")
    if args.tls_key and not args.tls_cert:
        parser.error("--tls-key needs --tls-cert")
    claims = ClaimNames(args.auth_roles_claim, args.auth_tenant_claim, args.auth_admin_role,
                        args.auth_tenant_admin_role, args.auth_read_only_role)
    auth = AuthSettings(args.auth_jwks_url, args.auth_jwks_file, args.auth_issuer, args.auth_audience,
                        args.auth_leeway, args.auth_jwks_lifespan, args.auth_token_cache, claims)
    return auth, TlsSettings(args.tls_cert, args.tls_key)
