"""Opt-in authentication and authorization (docs/auth.md; spec README item 8).

Off unless a JWKS URL or file is configured: then every request but health,
version and the OpenAPI document needs a bearer JWT, and the policy table
(policy.py) decides what each role may do. `build` wires the pieces.

The token machinery (PyJWT, cryptography: ≈10 MiB per API worker) is imported only
when auth is on, by `build_verifier` (issue 13: API memory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from . import audit
from .config import AuthSettings, TlsSettings

if TYPE_CHECKING:
    from .tokens import Verifier


def build_verifier(settings: AuthSettings) -> "Verifier":
    from .keys import KeyRing, KeyRings, file_loader, url_loader
    from .tokens import Verifier
    rings = [KeyRing(url_loader(url), settings.jwks_lifespan) for url in settings.jwks_urls]
    rings += [KeyRing(file_loader(path), settings.jwks_lifespan, watch_file=path) for path in settings.jwks_files]
    return Verifier(settings, rings[0] if len(rings) == 1 else KeyRings(rings))


async def flush_audit(_app: Any) -> None:
    """An application cleanup: workers leave with os._exit, so atexit would not write the last lines."""
    audit.TRAIL.flush()


def build_middleware(settings: AuthSettings) -> Optional[Any]:
    """The auth middleware, or None when auth is off (today's behaviour, unchanged)."""
    if not settings.enabled:
        return None
    from .middleware import make_middleware
    return make_middleware(build_verifier(settings))


__all__ = ["AuthSettings", "TlsSettings", "build_middleware", "build_verifier", "flush_audit"]
