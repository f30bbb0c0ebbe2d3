"""HTTPS served by bos-server itself (`--tls-cert/--tls-key`), verified by the CLI and the reporter
with their CA-bundle settings; auth on, so the CLI's 401/403 lines are checked here too."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import redis as redis_lib
import requests

from bos_sim.stack import BIN, ApiServer, RedisServer
from tests.cli.conftest import run_cli
from tests.reporter.conftest import XNAME, Node, booted_node
from tests.support.auth import Issuer, Tls, auth_server_args, bearer, make_tls

DB = 8


@dataclass
class TlsStack:
    server: ApiServer
    tls: Tls
    issuer: Issuer
    where: Path

    def token_file(self, name: str, token: str) -> str:
        path = self.where / f"{name}.token"
        path.write_text(token + "\n")
        return str(path)

    def cli(self, token: "str | None", *argv: str, ca: bool = True):  # type: ignore[no-untyped-def]
        args = ["--url", self.server.url]
        args += ["--ca-bundle", str(self.tls.ca)] if ca else []
        args += ["--token-file", self.token_file("cli", token)] if token else []
        return run_cli([*args, *argv])


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[TlsStack]:
    where = tmp_path_factory.mktemp("tls")
    issuer = Issuer()
    tls = make_tls(where / "pki")
    redis_url = redis_server.url.rsplit("/", 1)[0] + f"/{DB}"
    redis_lib.Redis.from_url(redis_url).flushdb()
    jwks = issuer.write_jwks(where / "jwks.json")
    server = ApiServer(where / "api", redis_url, extra_args=auth_server_args(jwks, tls), ca_file=tls.ca)
    yield TlsStack(server, tls, issuer, where)
    assert server.stop() == 0, server.log_tail()


@pytest.fixture(autouse=True)
def no_cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BOS_URL", "BOS_TOKEN_FILE", "BOS_TENANT", "BOS_CA_BUNDLE", "BOS_TIMEOUT", "BOS_FORMAT"):
        monkeypatch.delenv(name, raising=False)


def test_the_server_speaks_https_only(tls_stack: TlsStack) -> None:
    assert tls_stack.server.url.startswith("https://")
    assert requests.get(tls_stack.server.url + "/v2/healthz", verify=str(tls_stack.tls.ca), timeout=10).ok
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_stack.server.url + "/v2/healthz", timeout=10)  # not a public CA
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(tls_stack.server.url.replace("https:", "http:") + "/v2/healthz", timeout=10)


def test_the_cli_verifies_with_its_ca_bundle(tls_stack: TlsStack, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(make_tls(tmp_path / "other-pki").ca))  # --ca-bundle must win
    done = tls_stack.cli(tls_stack.issuer.admin(), "--format", "json", "components", "list")
    assert done.code == 0, done.err
    refused = tls_stack.cli(tls_stack.issuer.admin(), "components", "list", ca=False)
    assert refused.code == 3 and "TLS error" in refused.err and "--ca-bundle" in refused.err


def test_the_cli_says_which_role_is_missing_on_one_line(tls_stack: TlsStack) -> None:
    done = tls_stack.cli(tls_stack.issuer.read_only(), "options", "update", "--default-retry-policy", "0")
    assert done.code == 1
    assert done.err == ("bos: error: Forbidden: PATCH /v2/options needs the role admin; the token of "
                        "'viewer-victor' has role(s): read-only (missing role: admin; use a token that has it: "
                        "--token-file / BOS_TOKEN_FILE) (HTTP 403)\n")
    anonymous = tls_stack.cli(None, "components", "list")
    assert anonymous.code == 1
    assert anonymous.err == ("bos: error: Unauthorized: GET /v2/components needs a bearer token with the role admin, "
                             "tenant-admin or read-only (check --token-file / BOS_TOKEN_FILE) (HTTP 401)\n")
    expired = tls_stack.cli(tls_stack.issuer.admin(lifetime=-120), "components", "list")
    assert expired.err == ("bos: error: Unauthorized: The token has expired "
                           "(check --token-file / BOS_TOKEN_FILE) (HTTP 401)\n")


def report_once(tls_stack: TlsStack, node: Node, ca: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "bos-reporter"), "--once", *node.args(f"{tls_stack.server.url}/v2")],
                          env=node.env(BOS_REPORTER_CA_BUNDLE=str(ca)), capture_output=True, text=True, timeout=60)


def test_the_reporter_verifies_with_its_ca_bundle_and_reports_with_a_node_token(tls_stack: TlsStack,
                                                                                tmp_path: Path) -> None:
    admin = {"headers": bearer(tls_stack.issuer.admin()), "verify": str(tls_stack.tls.ca), "timeout": 10}
    assert requests.put(f"{tls_stack.server.url}/v2/components/{XNAME}", json={"enabled": False}, **admin).ok
    node = booted_node(tmp_path / "node", "6c1d2e4f-5d3b-4b72-8e8f-1b3f8d0a2c22")
    node.token_file.write_text(tls_stack.issuer.node(XNAME) + "\n")
    wrong_ca = make_tls(tmp_path / "other-pki").ca
    refused = report_once(tls_stack, node, wrong_ca)
    assert refused.returncode != 0 and "TLS error" in refused.stderr, refused.stderr
    done = report_once(tls_stack, node, tls_stack.tls.ca)
    assert done.returncode == 0, done.stderr
    state = requests.get(f"{tls_stack.server.url}/v2/components/{XNAME}", **admin).json()["actual_state"]
    assert state["bss_token"] == "6c1d2e4f-5d3b-4b72-8e8f-1b3f8d0a2c22"
