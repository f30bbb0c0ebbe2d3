"""Hostile input gets a 400 problem+json, never a 500 or a text/plain answer (api.md §1.4, §5).

Each case was a 500 (or a text/plain 400 from aiohttp's own HTTP parser) before:
deeply nested JSON, lone surrogates, non-UTF-8 header bytes, absurd numbers, and
requests the HTTP parser itself refuses (request line over 1 MiB, 5,000 headers).
"""

from __future__ import annotations

import json
import socket
from typing import Dict, Tuple

import pytest

from tests.support.client import Api, assert_problem

BAD = "Bad Request"
BODY_ENDPOINTS = [
    ("PATCH", "/v2/components"),
    ("PUT", "/v2/components"),
    ("PATCH", "/v2/components/x1"),
    ("PUT", "/v2/components/x1"),
    ("POST", "/v2/sessions"),
    ("PUT", "/v2/sessiontemplates/t1"),
    ("PATCH", "/v2/options"),
    ("POST", "/v2/applystaged"),
]


def raw_request(api: Api, payload: bytes, timeout: float = 30) -> Tuple[int, Dict[str, str], bytes]:
    """Send bytes as they are (clients refuse to send most of what is tested here)."""
    host, port = api.base.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(payload)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                length = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def assert_raw_problem(status: int, headers: Dict[str, str], body: bytes, expected: int = 400) -> dict:
    assert status == expected, (status, body[:300])
    assert headers["content-type"].startswith("application/problem+json"), (headers, body[:300])
    problem = json.loads(body)
    assert problem["status"] == expected and problem["type"] == "about:blank", problem
    return problem


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("method,path", BODY_ENDPOINTS)
@pytest.mark.parametrize("depth", [1025, 100_000])
def test_deeply_nested_json_is_a_bad_request(api: Api, method: str, path: str, depth: int) -> None:
    resp = api.request(method, path, data=nested(depth), headers={"Content-Type": "application/json"})
    body = assert_problem(resp, 400, BAD)
    assert "nest" in body["detail"], body


@pytest.mark.parametrize("depth", [200, 300, 1000])
def test_nesting_inside_a_free_form_field_is_never_a_500(api: Api, depth: int) -> None:
    """Nesting orjson can parse but not write back (> 255 levels) must not reach the store."""
    body = b'{"boot_sets": {"b1": {"path": "s3://b/m", "type": "s3", "node_list": ["x1"], "extra": ' + \
        nested(depth) + b"}}}"
    resp = api.put("/v2/sessiontemplates/t1", data=body, headers={"Content-Type": "application/json"})
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        assert_problem(resp, 400, BAD)


@pytest.mark.parametrize("text", ['"\\ud800"', '"a\\udfffb"', '"\\ud800\\u0041"'])
def test_lone_surrogates_are_a_bad_request(api: Api, text: str) -> None:
    assert api.put("/v2/components/x1", json={"enabled": False}).status_code == 200
    before = api.get("/v2/components/x1").json()
    for method, path, template in [("PATCH", "/v2/components/x1", '{"error": %s}'),
                                   ("PATCH", "/v2/components", '[{"id": "x1", "error": %s}]'),
                                   ("PUT", "/v2/components/x2", '{"error": %s}'),
                                   ("PATCH", "/v2/options", '{"logging_level": %s}')]:
        resp = api.request(method, path, data=(template % text).encode(), headers={"Content-Type": "application/json"})
        body = assert_problem(resp, 400, BAD)
        assert "surrogate" in body["detail"], body
    assert api.get("/v2/components/x1").json() == before  # nothing half-written
    assert api.get("/v2/components/x2").status_code == 404


@pytest.mark.parametrize("value", [b"\xff\xfe", b"t\xc3", b"caf\xe9", b"a\x01b"])
def test_undecodable_or_control_bytes_in_the_tenant_header_are_a_bad_request(api: Api, value: bytes) -> None:
    for line in (b"GET /v2/sessions HTTP/1.1", b"GET /v2/components HTTP/1.1"):
        status, headers, body = raw_request(api, line + b"\r\nHost: x\r\nConnection: close\r\nCray-Tenant-Name: "
                                            + value + b"\r\n\r\n")
        problem = assert_raw_problem(status, headers, body)
        assert problem["title"] == BAD and "Cray-Tenant-Name" in problem["detail"], problem


@pytest.mark.parametrize("digits", [17, 309, 400, 5000])
def test_absurd_actual_state_older_than_is_a_bad_request(api: Api, digits: int) -> None:
    resp = api.get("/v2/components", params={"actual_state_older_than": "9" * digits + "s"})
    body = assert_problem(resp, 400, BAD)
    assert "actual_state_older_than" in body["detail"], body


def test_the_longest_allowed_actual_state_older_than_still_works(api: Api) -> None:
    assert api.get("/v2/components", params={"actual_state_older_than": "9" * 15 + "w"}).json() == []


def test_a_request_line_over_1_mib_is_a_problem_not_text(api: Api) -> None:
    line = b"GET /v2/components?ids=" + b"x" * (1024 * 1024 + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    problem = assert_raw_problem(*raw_request(api, line))
    assert problem["title"] == BAD and problem["detail"], problem


def test_five_thousand_headers_are_a_problem_not_text(api: Api) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % n for n in range(5000))
    problem = assert_raw_problem(*raw_request(api, b"GET /v2/healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"))
    assert problem["title"] == BAD and problem["detail"], problem


def test_garbage_instead_of_http_is_a_problem_not_text(api: Api) -> None:
    problem = assert_raw_problem(*raw_request(api, b"\x16\x03\x01\x02\x00garbage\r\n\r\n"))
    assert problem["title"] == BAD, problem


def test_the_server_still_serves_after_all_of_this(api: Api) -> None:
    assert api.get("/v2/healthz").status_code == 200
