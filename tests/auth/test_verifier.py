"""The auth pieces without a server: token verification, the caches, claims -> roles, settings."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, Callable, List

import jwt
import pytest
from jwt import PyJWK

from bos_server.auth.config import AuthSettings, ClaimNames
from bos_server.auth.keys import MIN_REFRESH, KeyRing, KeyRings, KeysUnavailable, file_loader
from bos_server.auth.principal import ADMIN, NODE, READ_ONLY, TENANT_ADMIN, node_xname, principal_of
from bos_server.auth.tokens import InvalidToken, Verifier
from bos_server.config import ServerSettings
from tests.support.auth import AUDIENCE, ISSUER, Issuer, b64, ec_key, node_subject, rsa_key, tampered, unsigned

SETTINGS = AuthSettings(jwks_files=("unused",), issuers=(ISSUER,), audiences=(AUDIENCE,))


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingLoader:
    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.calls = 0
        self.fail = False

    def __call__(self) -> List[PyJWK]:
        self.calls += 1
        if self.fail:
            raise KeysUnavailable("issuer down")
        return [PyJWK.from_dict(jwk) for jwk in self.issuer.jwks()["keys"]]


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer([rsa_key(), ec_key(), rsa_key("rsa-ps", "PS256")])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def verifier(issuer: Issuer, settings: AuthSettings = SETTINGS, clock: Callable[[], float] = Clock()) -> Verifier:
    return Verifier(settings, KeyRing(CountingLoader(issuer), 300.0, clock=Clock()), clock=clock)


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1", "rsa-ps"])
def test_rsa_ec_and_pss_tokens_verify(issuer: Issuer, kid: str) -> None:
    principal = run(verifier(issuer).principal(issuer.token("alice", ["admin"], kid=kid)))
    assert (principal.subject, principal.roles) == ("alice", frozenset({ADMIN}))


def hs256_with_public_key(issuer: Issuer) -> str:
    """The classic algorithm confusion: HMAC keyed with the RSA public key's PEM."""
    from cryptography.hazmat.primitives import serialization
    pem = issuer.key("rsa-1").private.public_key().public_bytes(serialization.Encoding.PEM,
                                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    head = b64(json.dumps({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}).encode())
    body = b64(json.dumps(issuer.claims("mallory", ["admin"])).encode())
    signature = b64(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{signature}"


def rs256_under_the_ec_kid(issuer: Issuer) -> str:
    return jwt.encode(issuer.claims("mallory", ["admin"]), issuer.key("rsa-1").private, algorithm="RS256",
                      headers={"kid": "ec-1"})


@pytest.mark.parametrize("make, message", [
    (lambda i: unsigned(i.claims("mallory", ["admin"])), "algorithm 'none' is not accepted"),
    (hs256_with_public_key, "algorithm 'HS256' is not accepted"),
    (rs256_under_the_ec_kid, "does not match its key"),
    (lambda i: tampered(i.token("bob", ["read-only"]), realm_access={"roles": ["admin"]}), "signature is not valid"),
    (lambda i: Issuer([rsa_key("rsa-1")]).token("bob", ["admin"]), "signature is not valid"),  # same kid, other key
    (lambda i: i.token("bob", ["admin"], lifetime=-31), "has expired"),
    (lambda i: i.token("bob", ["admin"], iss="https://evil.test"), "was not issued by"),
    (lambda i: i.token("bob", ["admin"], aud="other"), "not meant for audience"),
    (lambda i: i.sign({k: v for k, v in i.claims("bob").items() if k != "exp"}), "no 'exp' claim"),
    (lambda i: i.sign({k: v for k, v in i.claims("bob").items() if k != "sub"}), "no 'sub' claim"),
    (lambda i: i.token("bob", ["admin"], nbf=i.claims("bob")["iat"] + 600), "not valid yet"),
    (lambda i: "not-a-jwt", "not a valid JWT"),
])
def test_bad_tokens_are_refused_with_a_reason(issuer: Issuer, make: Callable[[Issuer], str], message: str) -> None:
    with pytest.raises(InvalidToken, match=message):
        run(verifier(issuer).principal(make(issuer)))


def test_clock_skew_within_the_leeway_is_tolerated(issuer: Issuer) -> None:
    assert run(verifier(issuer).principal(issuer.token("bob", ["admin"], lifetime=-10))).subject == "bob"


def test_unknown_key_id_is_refused(issuer: Issuer) -> None:
    stranger = Issuer([rsa_key("rsa-unknown")])
    with pytest.raises(InvalidToken, match="unknown key"):
        run(verifier(issuer).principal(stranger.token("bob", ["admin"])))


def test_a_verified_token_is_served_from_the_cache_until_it_expires(issuer: Issuer) -> None:
    clock = Clock(0)
    check = verifier(issuer, clock=clock)
    token = issuer.token("carol", ["read-only"])
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    clock.now = exp - 100
    run(check.principal(token))
    check.keys = KeyRing(lambda: [], 300.0)  # no key would verify it now: only the cache can answer
    assert run(check.principal(token)).subject == "carol"
    clock.now = exp + SETTINGS.leeway + 1
    with pytest.raises(KeysUnavailable):
        run(check.principal(token))


def test_the_token_cache_is_bounded(issuer: Issuer) -> None:
    check = verifier(issuer, AuthSettings(jwks_files=("x",), issuers=(ISSUER,), audiences=(AUDIENCE,), token_cache=2))
    tokens = [issuer.token(f"user{i}", ["admin"]) for i in range(3)]
    for token in tokens:
        run(check.principal(token))
    assert list(check.cache) == tokens[1:]
    off = verifier(issuer, AuthSettings(jwks_files=("x",), issuers=(ISSUER,), audiences=(AUDIENCE,), token_cache=0))
    run(off.principal(tokens[0]))
    assert off.cache == {}


# -- the key ring -----------------------------------------------------------------------------

def test_keys_are_fetched_once_and_refreshed_after_their_lifespan(issuer: Issuer) -> None:
    loader, clock = CountingLoader(issuer), Clock()
    ring = KeyRing(loader, 300.0, clock=clock)

    async def look_ups() -> None:
        for _ in range(50):
            assert await ring.key_for("rsa-1") is not None
    run(look_ups())
    assert loader.calls == 1
    clock.now += 301
    run(ring.key_for("rsa-1"))
    assert loader.calls == 2


def test_unknown_key_ids_refetch_at_most_once_per_interval(issuer: Issuer) -> None:
    loader, clock = CountingLoader(issuer), Clock()
    ring = KeyRing(loader, 300.0, clock=clock)

    async def unknown(count: int) -> None:
        for i in range(count):
            assert await ring.key_for(f"made-up-{i}") is None
    run(unknown(20))
    assert loader.calls == 1
    clock.now += MIN_REFRESH
    rotated = rsa_key("rsa-rotated")
    issuer.keys.append(rotated)
    try:
        assert run(ring.key_for("rsa-rotated")) is not None  # key rotation is picked up
    finally:
        issuer.keys.remove(rotated)
    assert loader.calls == 2


def test_a_failed_refresh_keeps_the_known_keys_and_no_keys_at_all_is_unavailable(issuer: Issuer) -> None:
    loader, clock = CountingLoader(issuer), Clock()
    ring = KeyRing(loader, 300.0, clock=clock)
    run(ring.key_for("rsa-1"))
    loader.fail, clock.now = True, clock.now + 301
    assert run(ring.key_for("rsa-1")) is not None
    empty = KeyRing(loader, 300.0, clock=Clock())
    with pytest.raises(KeysUnavailable):
        run(empty.key_for("rsa-1"))


def test_concurrent_look_ups_share_one_fetch(issuer: Issuer) -> None:
    loader = CountingLoader(issuer)
    ring = KeyRing(loader, 300.0)

    async def many() -> None:
        await asyncio.gather(*(ring.key_for("ec-1") for _ in range(20)))
    run(many())
    assert loader.calls == 1


def test_several_sources_are_searched_and_one_down_does_not_hide_the_others(issuer: Issuer) -> None:
    down, up = CountingLoader(issuer), CountingLoader(Issuer([rsa_key("spire-1")]))
    down.fail = True
    rings = KeyRings([KeyRing(down, 300.0, clock=Clock()), KeyRing(up, 300.0, clock=Clock())])
    assert run(rings.key_for("spire-1")) is not None
    assert run(rings.key_for("unknown")) is None
    up.fail = True
    with pytest.raises(KeysUnavailable):
        run(KeyRings([KeyRing(down, 300.0), KeyRing(up, 300.0)]).key_for("spire-1"))


def test_a_changed_jwks_file_is_reread(issuer: Issuer, tmp_path: Path) -> None:
    path = Issuer([rsa_key("old")]).write_jwks(tmp_path / "jwks.json")
    clock = Clock()
    ring = KeyRing(file_loader(str(path)), 300.0, watch_file=str(path), clock=clock)
    assert run(ring.key_for("old")) is not None
    Issuer([rsa_key("new")]).write_jwks(tmp_path / "jwks.json")
    clock.now += 1.5
    assert run(ring.key_for("new")) is not None


# -- claims -> principal ----------------------------------------------------------------------

def test_keycloak_roles_tenant_and_unrelated_roles() -> None:
    claims = {"sub": "u1", "realm_access": {"roles": ["offline_access", "tenant-admin", "read-only"]},
              "tenant": "vcluster-blue"}
    principal = principal_of(claims, ClaimNames())
    assert principal.roles == {TENANT_ADMIN, READ_ONLY} and principal.tenant == "vcluster-blue"


def test_claim_names_and_role_names_are_configurable() -> None:
    names = ClaimNames(roles="resource_access.bos.roles", tenant="org.tenant", admin="bos-admin")
    claims = {"sub": "u2", "resource_access": {"bos": {"roles": ["bos-admin"]}}, "org": {"tenant": "t"},
              "realm_access": {"roles": ["admin"]}}
    principal = principal_of(claims, names)
    assert principal.roles == {ADMIN} and principal.tenant == "t"
    assert principal_of({"sub": "u3", "scope": "openid read-only"}, ClaimNames(roles="scope")).roles == {READ_ONLY}


@pytest.mark.parametrize("subject, xname", [
    (node_subject("x1000c0s0b0n0"), "x1000c0s0b0n0"),
    ("spiffe://shasta/x3000c0s19b1n0", "x3000c0s19b1n0"),
    ("spiffe://shasta/compute/workload/bos-reporter", None),
    ("spiffe://x1000c0s0b0n0/compute", None),           # the trust domain is not a path segment
    ("spiffe://shasta/s0/workload", None),              # the whole system is not a node
    ("x1000c0s0b0n0", None),                            # not a SPIFFE ID
    ("https://shasta/compute/x1000c0s0b0n0", None),
])
def test_a_node_is_a_spiffe_id_naming_an_xname(subject: str, xname: "str | None") -> None:
    assert node_xname(subject) == xname
    assert (NODE in principal_of({"sub": subject}, ClaimNames()).roles) == (xname is not None)


# -- settings ---------------------------------------------------------------------------------

def test_auth_is_off_by_default_and_on_with_a_jwks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BOS_AUTH_JWKS_URL", "BOS_AUTH_JWKS_FILE", "BOS_TLS_CERT"):
        monkeypatch.delenv(name, raising=False)
    assert not ServerSettings.parse([]).auth.enabled
    monkeypatch.setenv("BOS_AUTH_JWKS_URL", "https://keycloak.test/certs")
    monkeypatch.setenv("BOS_AUTH_AUDIENCE", "bos")
    settings = ServerSettings.parse([])
    assert settings.auth.enabled and settings.auth.audiences == ("bos",)
    both = ServerSettings.parse(["--auth-jwks-url", "https://kc/certs, https://spire/keys", "--auth-issuer", "a,b"])
    assert both.auth.jwks_urls == ("https://kc/certs", "https://spire/keys") and both.auth.issuers == ("a", "b")


@pytest.mark.parametrize("argv", [
    ["--auth-jwks-url", "file:///etc/jwks.json"],
    ["--auth-jwks-file", "/nonexistent/jwks.json"],
    ["--auth-jwks-url", "https://a/certs", "--auth-leeway", "3600"],
    ["--auth-jwks-url", "https://a/certs", "--auth-leeway", "-1"],
    ["--tls-key", "/etc/hosts"],
])
def test_nonsensical_auth_settings_are_usage_errors(argv: List[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOS_AUTH_JWKS_URL", raising=False)
    with pytest.raises(SystemExit) as exited:
        ServerSettings.parse(argv)
    assert exited.value.code == 2
