"""Token checks over real HTTP: 401 problem+json with WWW-Authenticate, open endpoints, JWKS URL, auth off."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from bos_sim.stack import ApiServer, RedisServer
from tests.reporter.conftest import eventually
from tests.support.auth import AUDIENCE, ISSUER, Issuer, bearer, rsa_key, tampered, unsigned
from tests.support.client import Api, assert_problem

from .conftest import AuthStack


@pytest.mark.parametrize("path", ["/", "/v2", "/v2/version", "/v2/healthz", "/v2/openapi.json",
                                  "/apis/bos/v2/healthz", "/apis/bos/"])
def test_health_version_and_openapi_stay_open(auth_stack: AuthStack, path: str) -> None:
    assert auth_stack.client(None).get(path).status_code == 200
    assert auth_stack.client("garbage").get(path).status_code == 200  # a bad token on an open path is ignored


BAD_TOKENS = {
    "alg none": lambda i: unsigned(i.claims("mallory", ["admin"])),
    "tampered": lambda i: tampered(i.read_only(), realm_access={"roles": ["admin"]}),
    "expired": lambda i: i.admin(lifetime=-120),
    "wrong issuer": lambda i: i.token("bob", ["admin"], iss="https://evil.test/realms/x"),
    "wrong audience": lambda i: i.token("bob", ["admin"], aud="cray-cfs"),
    "unknown key": lambda i: Issuer([rsa_key("rsa-elsewhere")]).admin(),
    "not a JWT": lambda i: "abc.def",
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_tokens_are_401_problems_with_a_bearer_challenge(auth_stack: AuthStack, admin: Api, case: str) -> None:
    client = auth_stack.client(BAD_TOKENS[case](auth_stack.issuer))
    resp = client.patch("/v2/options", json={"default_retry_policy": 0})
    body = assert_problem(resp, 401, "Unauthorized")
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="bos", error="invalid_token", error_description="'), challenge
    assert body["detail"]
    assert admin.get("/v2/options").json()["default_retry_policy"] != 0


def test_no_token_is_401_naming_the_roles_that_would_do(auth_stack: AuthStack, admin: Api) -> None:
    for client in (auth_stack.client(None), Api(auth_stack.url)):
        client.http.headers["Authorization"] = "Basic YWRtaW46YWRtaW4="  # not a bearer token
        resp = client.get("/v2/components")
        body = assert_problem(resp, 401, "Unauthorized")
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="bos"'
        assert body["detail"] == ("GET /v2/components needs a bearer token with the role admin, tenant-admin "
                                  "or read-only")


def test_rsa_and_ec_tokens_and_small_clock_skew_are_accepted(auth_stack: AuthStack, admin: Api) -> None:
    issuer = auth_stack.issuer
    for token in (issuer.admin(kid="rsa-1"), issuer.admin(kid="ec-1"), issuer.admin(lifetime=-10)):
        assert auth_stack.client(token).get("/v2/components").status_code == 200
    lower = Api(auth_stack.url)
    lower.http.headers["Authorization"] = f"bearer {issuer.admin()}"  # the scheme is case-insensitive
    assert lower.get("/v2/components").status_code == 200


def test_with_auth_off_the_authorization_header_is_ignored(api: Api) -> None:
    """Spec README item 8: the default stays the reference's (the gateway authenticates)."""
    resp = api.patch("/v2/options", json={"polling_frequency": 7}, headers=bearer("not even a JWT"))
    assert resp.status_code == 200
    assert api.patch("/v2/options", json={"polling_frequency": 8}).status_code == 200


# -- a JWKS URL ---------------------------------------------------------------------------------

class JwksServer:
    """Serves an issuer's current JWKS on loopback and counts the fetches."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                outer.fetches += 1
                body = json.dumps(outer.issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/realms/shasta/protocol/openid-connect/certs"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer(Issuer([rsa_key("kc-1")]))
    yield server
    server.close()


SPIRE_ISSUER = "https://oidc-discovery.spire.test"
SPIRE = Issuer([rsa_key("spire-1")])


@pytest.fixture
def url_api(tmp_path: Path, redis_server: RedisServer, jwks_server: JwksServer) -> Iterator[ApiServer]:
    """Keycloak's keys from a URL, SPIRE's from a file: both issuers trusted."""
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/7"
    server = ApiServer(tmp_path / "api", redis_url, extra_args=[
        "--auth-jwks-url", jwks_server.url, "--auth-jwks-file", str(SPIRE.write_jwks(tmp_path / "spire.json")),
        "--auth-issuer", f"{ISSUER},{SPIRE_ISSUER}", "--auth-audience", AUDIENCE, "--auth-jwks-lifespan", "2"])
    yield server
    assert server.stop() == 0


def get(url: str, token: str) -> Callable[[], int]:
    return lambda: requests.get(url + "/v2/options", headers=bearer(token), timeout=10).status_code


def test_jwks_url_keys_are_cached_and_a_rotated_key_is_picked_up(url_api: ApiServer, jwks_server: JwksServer) -> None:
    issuer = jwks_server.issuer
    statuses = [get(url_api.url, issuer.admin(jti=str(i)))() for i in range(20)]  # 20 distinct tokens
    assert statuses == [200] * 20
    assert 1 <= jwks_server.fetches <= 2, jwks_server.fetches  # one fetch (two if the 2 s lifespan ran out)
    rotated = rsa_key("kc-2")
    issuer.keys.append(rotated)
    token = issuer.token("admin-2", ["admin"], kid="kc-2")
    eventually(lambda: get(url_api.url, token)() == 200, 15, "the rotated key to be accepted")


def test_keycloak_and_spire_tokens_are_both_trusted(url_api: ApiServer, jwks_server: JwksServer) -> None:
    admin = {"headers": bearer(jwks_server.issuer.admin()), "timeout": 10}
    xname = "x1000c0s0b0n0"
    assert requests.put(f"{url_api.url}/v2/components/{xname}", json={"enabled": False}, **admin).status_code == 200
    svid = SPIRE.node(xname, iss=SPIRE_ISSUER)
    report = {"id": xname, "actual_state": {"bss_token": "5b0c1f3e-4c2a-4a61-9d7e-0a2f7c9e1b11"}}
    resp = requests.patch(f"{url_api.url}/v2/components/{xname}", json=report, headers=bearer(svid), timeout=10)
    assert resp.status_code == 200, resp.text
    forged = SPIRE.node(xname, iss="https://elsewhere.test")
    resp = requests.patch(f"{url_api.url}/v2/components/{xname}", json=report, headers=bearer(forged), timeout=10)
    assert resp.status_code == 401
