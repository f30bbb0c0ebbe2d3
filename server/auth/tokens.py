"""Bearer token verification (PyJWT) with a cache of verified tokens.

Only asymmetric algorithms are accepted, and only the family of the key the
token names: `alg: none` and HMAC (`HS256` signed with a public key) are
refused before any key is used. `exp` and `sub` are required; `iss` and `aud`
are checked when configured; clock skew is bounded by the leeway.

A verified token is remembered (keyed by the raw token) until it expires, so a
reporter or CLI that reuses its token costs one dictionary look-up instead of
a signature check; the cache is bounded and drops its oldest entries first.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Tuple

import jwt
from jwt import PyJWK

from .config import AuthSettings
from .keys import KeyRing, KeyRings, KeysUnavailable
from .principal import Principal, principal_of

ALGORITHMS_BY_KEY_TYPE = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}
ALGORITHMS = frozenset(alg for algs in ALGORITHMS_BY_KEY_TYPE.values() for alg in algs)
MAX_TOKEN_LENGTH = 16384


class InvalidToken(Exception):
    """401: the message is the problem detail and the `error_description`."""


class Verifier:
    def __init__(self, settings: AuthSettings, keys: "KeyRing | KeyRings",
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.keys = keys
        self.clock = clock
        self.cache: Dict[str, Tuple[Principal, float]] = {}

    async def principal(self, token: str) -> Principal:
        """The caller a token speaks for; raises InvalidToken or KeysUnavailable."""
        cached = self.cache.get(token)
        if cached is not None:
            if self.clock() <= cached[1]:
                return cached[0]
            del self.cache[token]
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken(f"The token is longer than {MAX_TOKEN_LENGTH} characters")
        claims = await self.verify(token)
        principal = principal_of(claims, self.settings.claims)
        self._remember(token, principal, float(claims["exp"]) + self.settings.leeway)
        return principal

    async def verify(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise InvalidToken(f"The token is not a valid JWT: {exc}") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise InvalidToken(f"The token's algorithm {str(alg)[:20]!r} is not accepted "
                               f"(one of {', '.join(sorted(ALGORITHMS))})")
        key = await self.keys.key_for(kid if isinstance(kid, str) else None)
        if key is None:
            raise InvalidToken(f"The token was signed with an unknown key (kid {str(kid)[:64]!r})")
        if alg not in _algorithms_for(key):
            raise InvalidToken(f"The token's algorithm {alg} does not match its key")
        settings = self.settings
        try:
            return jwt.decode(token, key.key, algorithms=[alg], audience=list(settings.audiences) or None,
                              issuer=list(settings.issuers) or None, leeway=settings.leeway,
                              options={"require": ["exp", "sub"], "verify_aud": bool(settings.audiences)})
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The token has expired") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("The token's signature is not valid") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken(f"The token was not issued by {' or '.join(settings.issuers)}") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken(f"The token is not meant for audience {' or '.join(settings.audiences)}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"The token has no '{exc.claim}' claim") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("The token is not valid yet") from None
        except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
            raise InvalidToken(f"The token is not valid: {exc}") from None

    def _remember(self, token: str, principal: Principal, until: float) -> None:
        limit = self.settings.token_cache
        if limit <= 0:
            return
        while len(self.cache) >= limit:
            self.cache.pop(next(iter(self.cache)))  # oldest first (dicts keep insertion order)
        self.cache[token] = (principal, until)


def _algorithms_for(key: PyJWK) -> Tuple[str, ...]:
    """The algorithms a key may verify: its declared `alg`, its curve's, or its RSA family."""
    family = ALGORITHMS_BY_KEY_TYPE.get(key.key_type or "", ())
    declared = key._jwk_data.get("alg") if isinstance(key._jwk_data, dict) else None
    if declared or key.key_type in ("EC", "OKP"):
        return (key.algorithm_name,) if key.algorithm_name in family else ()
    return family


__all__ = ["InvalidToken", "KeysUnavailable", "Verifier", "ALGORITHMS"]
