"""Version documents, health, routing and the OpenAPI document (api.md §1.1, §3.1, D6, D16)."""

from __future__ import annotations

import requests

from tests.support.client import Api, assert_problem


def test_root_lists_both_versions_with_a_self_link_v1_2_1(api: Api) -> None:
    body = api.get("/").json()
    version = {"major": "2", "minor": "50", "patch": "0", "links": [{"href": f"{api.base}/", "rel": "self"}]}
    assert body == [version, version]


def test_v2_and_version_links_follow_the_prefix_used_d16(api: Api) -> None:
    plain = api.get("/v2").json()
    assert plain["links"] == [{"href": f"{api.base}/", "rel": "self"},
                              {"href": f"{api.base}/v2", "rel": "versions"}]
    prefixed = api.get("/apis/bos/v2/version").json()
    assert prefixed["links"] == [{"href": f"{api.base}/apis/bos/", "rel": "self"},
                                 {"href": f"{api.base}/apis/bos/v2", "rel": "versions"}]


def test_forwarded_headers_build_the_link_base_d16(api: Api) -> None:
    body = api.get("/apis/bos/v2", headers={"X-Forwarded-Proto": "https",
                                            "X-Forwarded-Host": "api-gw-service-nmn.local"}).json()
    assert body["links"][0]["href"] == "https://api-gw-service-nmn.local/apis/bos/"


def test_healthz_reports_ok_when_redis_answers(api: Api) -> None:
    resp = api.get("/v2/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"dbStatus": "ok", "apiStatus": "ok"}


def test_every_path_is_served_under_the_gateway_prefix_and_with_a_trailing_slash(api: Api) -> None:
    for path in ("/v2/options", "/apis/bos/v2/options", "/v2/options/", "/apis/bos/v2/options/",
                 "/apis/bos", "/apis/bos/"):
        assert api.get(path).status_code == 200, path


def test_unknown_path_is_a_not_found_problem(api: Api) -> None:
    assert_problem(api.get("/v2/nothing-here"), 404, "Not Found")


def test_wrong_method_is_405_with_an_allow_header(api: Api) -> None:
    resp = api.post("/v2/components", json=[])
    assert_problem(resp, 405, "Method Not Allowed")
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "PUT", "PATCH"}


def test_openapi_document_is_derived_from_the_shared_schema(api: Api) -> None:
    doc = api.get("/v2/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert schemas["V2Options"]["properties"]["max_component_batch_size"]["maximum"] == 131071
    assert schemas["V2BootSet"]["required"] == ["path", "type"]
    assert "/v2/sessions/{session_id}/status" in doc["paths"]
    assert set(doc["paths"]["/v2/components"]) == {"get", "put", "patch"}


def test_authorization_header_is_ignored(api: Api) -> None:
    resp = api.get("/v2/options", headers={"Authorization": "Bearer not-checked"})
    assert resp.status_code == 200


def test_version_needs_no_redis(api_server, redis_client) -> None:
    # The liveness targets answer even while the data endpoints would fail.
    resp = requests.get(f"{api_server.url}/v2/version", timeout=5)
    assert resp.status_code == 200
