"""Connection settings and error paths: URL forms, token, tenant, CA bundle, unreachable and odd servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from bos_cli.config import Settings, resolve
from bos_cli.http import Client
from bos_sim.stack import ApiServer, free_port
from tests.support.client import Api

from .conftest import NODES, TENANT, CliStack, put_template, run_cli

BOS = str(Path(sys.executable).parent / "bos")


# -- URL forms -----------------------------------------------------------------------------------

def test_gateway_prefix_and_a_pasted_v2_suffix_both_work(api: Api) -> None:
    put_template(api, "compute")
    for url in (f"{api.base}/apis/bos", f"{api.base}/apis/bos/", f"{api.base}/v2", api.base + "/"):
        result = run_cli(["--url", url, "sessiontemplates", "list", "--format", "json"])
        assert result.code == 0, (url, result.err)
        assert [t["name"] for t in result.json()] == ["compute"]


def test_url_and_format_come_from_the_environment(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOS_URL", api.base + "/apis/bos")
    monkeypatch.setenv("BOS_FORMAT", "json")
    result = run_cli(["version"])
    assert result.code == 0, result.err
    assert result.json()["links"][0]["href"] == f"{api.base}/apis/bos/"


def test_flags_after_the_command_override_flags_before_it(api: Api) -> None:
    result = run_cli(["--url", "http://127.0.0.1:1", "--format", "table", "version", "--url", api.base,
                      "--format", "json"])
    assert result.code == 0, result.err
    assert result.json()["major"] == "2"


# -- tenant ---------------------------------------------------------------------------------------

def test_tenant_flag_and_env_scope_what_the_api_returns(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    created = run_cli(["--url", api.base, "--tenant", TENANT, "sessiontemplates", "create", "mine",
                       "--path", "s3://boot-images/x/manifest.json", "--node-list", NODES[0], "--format", "json"])
    assert created.code == 0, created.err
    assert created.json()["tenant"] == TENANT
    put_template(api, "shared")
    admin_view = run_cli(["--url", api.base, "sessiontemplates", "list", "--format", "json"]).json()
    assert sorted(t["name"] for t in admin_view) == ["mine", "shared"]
    monkeypatch.setenv("BOS_TENANT", TENANT)
    tenant_view = run_cli(["--url", api.base, "sessiontemplates", "list", "--format", "json"]).json()
    assert [t["name"] for t in tenant_view] == ["mine"]
    missing = run_cli(["--url", api.base, "sessiontemplates", "describe", "shared"])
    assert missing.err.strip() == (f"bos: error: The resource was not found: Session template for tenant "
                                   f"'{TENANT}' 'shared' does not exist (HTTP 404)")


def test_unknown_tenant_is_one_line(api: Api) -> None:
    result = run_cli(["--url", api.base, "--tenant", "nobody", "sessiontemplates", "create", "t",
                      "--path", "s3://b/m.json", "--node-list", NODES[0]])
    assert result.code == 1
    assert result.err == "bos: error: Invalid tenant: The provided tenant does not exist (HTTP 400)\n"


# -- a stand-in gateway that records headers and answers what a test says ----------------------

Canned = Dict[str, Tuple[int, str, str]]  # path -> (status, content type, body)


class Gateway:
    def __init__(self, canned: Canned) -> None:
        self.canned = canned
        self.seen: List[Tuple[str, Dict[str, str]]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                gateway.seen.append((self.path, dict(self.headers)))
                status, ctype, body = gateway.canned.get(self.path.split("?")[0], (404, "text/plain", "no"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


VERSION = json.dumps({"major": "2", "minor": "50", "patch": "0", "links": []})


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway({
        "/apis/bos/v2/version": (200, "application/json", VERSION),
        "/apis/bos/v2/sessions": (502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        "/apis/bos/v2/components": (401, "application/problem+json",
                                    json.dumps({"type": "about:blank", "title": "Unauthorized", "status": 401,
                                                "detail": "token expired"})),
        "/apis/bos/v2/options": (200, "text/plain", "not json"),
    })
    yield gw
    gw.close()


def test_bearer_token_from_a_raw_file_and_tenant_header_are_sent(gateway: Gateway, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("abc.def.ghi\n")
    result = run_cli(["--url", gateway.url + "/apis/bos", "--token-file", str(token), "--tenant", "blue", "version"])
    assert result.code == 0, result.err
    path, headers = gateway.seen[-1]
    assert path == "/apis/bos/v2/version"
    assert headers["Authorization"] == "Bearer abc.def.ghi"
    assert headers["Cray-Tenant-Name"] == "blue"


def test_cray_json_token_file_from_the_environment(gateway: Gateway, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "cray-token.json"
    token.write_text(json.dumps({"access_token": "jwt-from-cray", "token_type": "bearer"}))
    monkeypatch.setenv("BOS_TOKEN_FILE", str(token))
    assert run_cli(["--url", gateway.url + "/apis/bos", "version"]).code == 0
    assert gateway.seen[-1][1]["Authorization"] == "Bearer jwt-from-cray"


def test_no_token_no_authorization_header(gateway: Gateway) -> None:
    assert run_cli(["--url", gateway.url + "/apis/bos", "version"]).code == 0
    assert "Authorization" not in gateway.seen[-1][1]


def test_unreadable_token_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(["--token-file", str(tmp_path / "absent"), "version"])
    assert result.code == 2
    assert result.err.startswith("bos: error: cannot read token file")


def test_gateway_html_error_is_one_line_naming_the_url(gateway: Gateway) -> None:
    result = run_cli(["--url", gateway.url + "/apis/bos", "sessions", "list"])
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert result.err.startswith("bos: error: Bad Gateway: 502 Bad Gateway from ")
    assert f"{gateway.url}/apis/bos/v2/sessions" in result.err and "(HTTP 502)" in result.err


def test_unauthorized_problem_hints_at_the_token(gateway: Gateway) -> None:
    result = run_cli(["--url", gateway.url + "/apis/bos", "components", "list"])
    assert result.code == 1
    assert result.err.strip() == ("bos: error: Unauthorized: token expired "
                                  "(check --token-file / BOS_TOKEN_FILE) (HTTP 401)")


def test_a_non_json_success_is_reported_not_crashed_on(gateway: Gateway) -> None:
    result = run_cli(["--url", gateway.url + "/apis/bos", "options", "list"])
    assert result.code == 1
    assert "did not answer with JSON" in result.err


# -- unreachable, TLS, CA bundle ---------------------------------------------------------------

def test_connection_refused_names_the_url_tried() -> None:
    port = free_port()
    result = run_cli(["--url", f"http://127.0.0.1:{port}", "sessions", "list"])
    assert result.code == 3
    assert result.err == (f"bos: error: cannot connect to BOS at http://127.0.0.1:{port}/v2/sessions: "
                          "Connection refused\n")


def test_https_to_a_plain_http_server_is_a_tls_error_mentioning_the_ca_bundle(api: Api) -> None:
    https = api.base.replace("http://", "https://")
    result = run_cli(["--url", https, "version"])
    assert result.code == 3
    assert result.err.startswith(f"bos: error: TLS error talking to {https}/v2/version")
    assert "--ca-bundle" in result.err


def test_ca_bundle_from_flag_or_env_is_used_for_verification(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    from_flag = resolve(url=None, token_file=None, tenant=None, ca_bundle=str(bundle), timeout=None, env={})
    assert Client(from_flag).http.verify == str(bundle)
    from_env = resolve(url=None, token_file=None, tenant=None, ca_bundle=None, timeout=None,
                       env={"BOS_CA_BUNDLE": str(bundle), "BOS_URL": "https://gw/apis/bos/v2/"})
    assert from_env == Settings(url="https://gw/apis/bos", ca_bundle=str(bundle))
    assert Client(from_env).http.verify == str(bundle)


def test_defaults() -> None:
    settings = resolve(url=None, token_file=None, tenant=None, ca_bundle=None, timeout=None, env={})
    assert settings == Settings(url="http://localhost:9000", token=None, tenant=None, ca_bundle=None, timeout=30.0)


def test_api_without_redis_unhealthy_and_503_problem(cli_stack: CliStack, tmp_path: Path) -> None:
    server = ApiServer(tmp_path / "api", f"redis://127.0.0.1:{free_port()}/0")
    try:
        health = run_cli(["--url", server.url, "healthz"])
        assert health.code == 1
        assert health.out.split() == ["API", "ok", "Database", "not_available"]
        listing = run_cli(["--url", server.url, "sessions", "list"])
        assert listing.code == 1
        assert listing.err.startswith("bos: error: Unable to connect to the Redis database: ")
        assert listing.err.rstrip().endswith("(HTTP 503)") and listing.err.count("\n") == 1
    finally:
        server.stop()


# -- the installed script: exit codes seen by shells ---------------------------------------------

def _script(*argv: str, url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOS_")}
    env["BOS_URL"] = url
    return subprocess.run([BOS, *argv], capture_output=True, text=True, env=env, timeout=60)


def test_script_exit_codes(api: Api) -> None:
    ok = _script("sessions", "list", "--format", "json", url=api.base)
    assert (ok.returncode, json.loads(ok.stdout)) == (0, [])
    refused = _script("sessions", "describe", "nope", url=api.base)
    assert refused.returncode == 1
    assert refused.stderr == "bos: error: The resource was not found: Session 'nope' does not exist (HTTP 404)\n"
    usage = _script("sessions", "create", "--operation", "boot", url=api.base)
    assert usage.returncode == 2 and "--template-name" in usage.stderr
    down = _script("version", url=f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 3 and "cannot connect to BOS at http://127.0.0.1:" in down.stderr
    helped = _script("--help", url=api.base)
    assert helped.returncode == 0 and "BOS_TOKEN_FILE" in helped.stdout
