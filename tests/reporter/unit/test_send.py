"""reporter.md §6 response handling, §4 TLS (R7), §5 timeouts, R8 (one retry policy)."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from bos_reporter.send import classify, new_session, send_report

from .conftest import StubBos, problem

XNAME = "x3000c0s19b1n0"
CONFLICT = problem(409, "Actual state can not be updated.",
                   "BOS is currently changing the state of the node, and the actual state can not be "
                   "accurately recorded")


def report(stub: StubBos, tmp_path: Path, bearer: str = "bearer-1") -> "object":
    return send_report(new_session(), stub.url, XNAME, "tok-1", bearer, str(tmp_path / "ca.pem"))


def test_2xx_is_success_with_the_spec_message(stub: StubBos, tmp_path: Path) -> None:
    outcome = report(stub, tmp_path)
    assert outcome.ok and outcome.level == logging.INFO
    assert outcome.message == f"Updated the actual_state record for BOS component '{XNAME}'."


def test_the_request_is_one_patch_with_bearer_json_and_the_token(stub: StubBos, tmp_path: Path) -> None:
    report(stub, tmp_path, bearer="secret")
    [request] = stub.requests
    assert request.method == "PATCH"
    assert request.path == f"/v2/components/{XNAME}"
    assert request.headers["Authorization"] == "Bearer secret"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Prefer"] == "return=minimal"  # our API answers 204 (api.md §3.4 extension)
    assert request.json() == {"id": XNAME, "actual_state": {"bss_token": "tok-1"}}


def test_204_without_body_is_success(stub: StubBos, tmp_path: Path) -> None:
    stub.reply((204, b""))
    assert report(stub, tmp_path).ok


def test_404_warns_that_bos_has_no_record(stub: StubBos, tmp_path: Path) -> None:
    stub.reply(problem(404, "Not Found", "Component not found"))
    outcome = report(stub, tmp_path)
    assert not outcome.ok and outcome.level == logging.WARNING and not outcome.refresh_token
    assert outcome.message == f"BOS has no record of component '{XNAME}'; nothing to report."


def test_409_reports_the_problem_detail_and_retries(stub: StubBos, tmp_path: Path) -> None:
    stub.reply(CONFLICT)
    outcome = report(stub, tmp_path)
    assert not outcome.ok and outcome.level == logging.WARNING
    assert "Actual state can not be updated." in outcome.message
    assert "BOS is currently changing the state of the node" in outcome.message


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_ask_for_a_fresh_token(stub: StubBos, tmp_path: Path, status: int) -> None:
    stub.reply((status, b'{"message": "token expired"}'))
    outcome = report(stub, tmp_path)
    assert not outcome.ok and outcome.refresh_token and outcome.level == logging.WARNING
    assert str(status) in outcome.message


@pytest.mark.parametrize("status", [400, 418, 500, 502, 503])
def test_other_statuses_warn_with_status_and_one_line_body(stub: StubBos, tmp_path: Path, status: int) -> None:
    stub.reply((status, b"<html>\n  <body>upstream\n  broke</body>\n</html>\n"))
    outcome = report(stub, tmp_path)
    assert not outcome.ok and not outcome.refresh_token and outcome.level == logging.WARNING
    assert outcome.message == f"BOS answered {status}: <html> <body>upstream broke</body> </html>"


def test_redirect_is_not_followed(stub: StubBos, tmp_path: Path) -> None:
    stub.reply((302, b""))
    outcome = report(stub, tmp_path)
    assert not outcome.ok and "302" in outcome.message
    assert len(stub.requests) == 1  # no follow-up GET: the reporter sends nothing but its PATCH


def test_r8_connection_refused_is_one_warning_with_the_real_cause(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = send_report(new_session(), f"http://127.0.0.1:{port}/v2", XNAME, "t", "b", "/none")
    assert not outcome.ok and outcome.level == logging.WARNING
    assert "Connection refused" in outcome.message
    assert "Max retries" not in outcome.message


def test_read_timeout_is_a_warning(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v2"
        outcome = send_report(new_session(), url, XNAME, "t", "b", "/none", timeout=(3.0, 0.3))
    assert not outcome.ok and outcome.level == logging.WARNING
    assert "timed out" in outcome.message


@pytest.mark.parametrize("status, ok, refresh", [
    (200, True, False), (201, True, False), (204, True, False), (299, True, False),
    (301, False, False), (400, False, False), (401, False, True), (403, False, True),
    (404, False, False), (409, False, False), (429, False, False), (500, False, False), (503, False, False),
])
def test_classification_table(status: int, ok: bool, refresh: bool) -> None:
    outcome = classify(status, b"", XNAME)
    assert (outcome.ok, outcome.refresh_token) == (ok, refresh)


# --- TLS: the configured CA bundle, whatever the environment says (R7) ------------------------

def make_cert(directory: Path, name: str) -> Tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path, Path]:
    """A server certificate and key, and an unrelated certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    directory = tmp_path_factory.mktemp("certs")
    cert, key = make_cert(directory, "server")
    other, _ = make_cert(directory, "other")
    return cert, key, other


@pytest.fixture
def tls_stub(certs: Tuple[Path, Path, Path]) -> Iterator[Tuple[StubBos, Path, Path]]:
    """A StubBos behind TLS with its own self-signed certificate, plus an unrelated certificate."""
    cert, key, other = certs
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server = StubBos(tls=context)
    yield server, cert, other
    server.close()


def test_r7_configured_bundle_is_used_even_if_requests_ca_bundle_is_set(
        tls_stub: Tuple[StubBos, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    server, cert, other = tls_stub
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other))
    outcome = send_report(new_session(), server.url, XNAME, "t", "b", str(cert))
    assert outcome.ok, outcome.message


def test_r7_requests_ca_bundle_cannot_rescue_a_wrong_configured_bundle(
        tls_stub: Tuple[StubBos, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    server, cert, other = tls_stub
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    outcome = send_report(new_session(), server.url, XNAME, "t", "b", str(other))
    assert not outcome.ok and outcome.level == logging.WARNING
    assert "TLS error" in outcome.message and "certificate verify failed" in outcome.message
    assert server.requests == []


def test_missing_ca_bundle_is_an_error_and_nothing_is_sent(
        tls_stub: Tuple[StubBos, Path, Path], tmp_path: Path) -> None:
    server, _cert, _other = tls_stub
    outcome = send_report(new_session(), server.url, XNAME, "t", "b", str(tmp_path / "absent.pem"))
    assert not outcome.ok and outcome.level == logging.ERROR and "absent.pem" in outcome.message
    assert server.requests == []
