"""The v1 compatibility API (v1.md §2, §3): checklist rows 1-28 and 34 of v1.md §6.

Real HTTP, real Redis, the simulator's S3/IMS for template validation. The agent
(operators) does not run here: status trees are written through the API, as BOA did.
"""

from __future__ import annotations

from typing import Any, Dict

import pytest
import requests

from tests.api.conftest import IMAGE, manifest_url
from tests.support.client import Api, assert_problem

N1, N2 = "x3000c0s19b1n0", "x3000c0s19b2n0"
T1 = {"name": "t1", "enable_cfs": True, "cfs": {"configuration": "c1"},
      "boot_sets": {"compute": {"path": manifest_url(IMAGE), "type": "s3", "node_list": [N1, N2],
                                "rootfs_provider": "sbps", "rootfs_provider_passthrough": "sbps:v1:x"}}}
TENANCY = ("Multi-tenancy not supported",
           "BOS v1 endpoints do not support multi-tenancy and a tenant was specified in the header")


@pytest.fixture
def api(sim_api: Api) -> Api:
    resp = sim_api.post("/v1/sessiontemplate", json=T1)
    assert resp.status_code == 201, resp.text
    return sim_api


def new_session(api: Api, **body: Any) -> str:
    resp = api.post("/v1/session", json={"operation": "boot", "templateName": "t1", **body})
    assert resp.status_code == 201, resp.text
    return resp.json()["links"][0]["href"].rsplit("/", 1)[1]


def boot_set_body(nodes=(N1, N2), phases=("boot",)) -> Dict[str, Any]:
    return {"phases": [{"name": p, "categories": [{"name": "not_started", "node_list": list(nodes)}]}
                       for p in phases]}


# -- §2.1 version and health (rows 1-4) --

def test_row1_v1_version_links(api: Api) -> None:
    body = api.get("/v1").json()
    assert body["major"] == "2"
    assert body["links"] == [{"href": f"{api.base}/", "rel": "self"}, {"href": f"{api.base}/v1", "rel": "versions"}]
    assert api.get("/v1/version").json() == body


def test_row2_gateway_prefix_in_links(api: Api) -> None:
    body = api.get("/apis/bos/v1/version").json()
    assert body["links"][0]["href"] == f"{api.base}/apis/bos/"
    assert body["links"][1]["href"] == f"{api.base}/apis/bos/v1"


def test_row3_root_lists_two_identical_versions(api: Api) -> None:
    body = api.get("/").json()
    assert len(body) == 2 and body[0] == body[1]
    assert body[0]["links"] == [{"href": f"{api.base}/", "rel": "self"}]


def test_row4_healthz(api: Api) -> None:
    resp = api.get("/v1/healthz")
    assert resp.status_code == 200 and resp.json() == {"dbStatus": "ok", "apiStatus": "ok"}


# -- tenancy (row 5) --

@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/session"), ("POST", "/v1/session"), ("GET", "/v1/sessiontemplate"),
    ("GET", "/v1/sessiontemplate/t1"), ("DELETE", "/v1/sessiontemplate/t1"),
    ("GET", "/v1/session/x"), ("DELETE", "/v1/session/x"), ("GET", "/v1/session/x/status"),
    ("GET", "/v1/session/x/status/compute"), ("GET", "/v1/session/x/status/compute/boot/failed")])
def test_row5_tenant_header_rejected(api: Api, method: str, path: str) -> None:
    body = {"operation": "boot", "templateName": "t1"} if method == "POST" else None
    assert_problem(api.request(method, path, json=body, tenant="a"), 400, *TENANCY)


def test_static_endpoints_ignore_the_tenant_header(api: Api) -> None:
    for path in ("/v1", "/v1/version", "/v1/healthz", "/v1/sessiontemplatetemplate"):
        assert api.get(path, tenant="a").status_code == 200, path
    assert api.get("/apis/bos/v1/sessiontemplate/t1", tenant="").status_code == 200  # empty = no tenant


# -- §2.2 templates (rows 6-11) --

def test_row6_v1_only_fields_dropped_ordinals_kept(api: Api) -> None:
    body = {"name": "t2", "cfs_url": "u", "partition": "p1", "cfs": {"configuration": "c", "branch": "b"},
            "boot_sets": {"bs": {"path": manifest_url(IMAGE), "type": "s3", "node_list": [N1],
                                 "boot_ordinal": 1, "network": "NMN"}}}
    resp = api.post("/v1/sessiontemplate", json=body)
    assert resp.status_code == 201 and resp.json() == "t2"
    stored = api.get("/v2/sessiontemplates/t2").json()
    assert stored == {"name": "t2", "tenant": None, "cfs": {"configuration": "c"},
                      "boot_sets": {"bs": {"path": manifest_url(IMAGE), "type": "s3", "node_list": [N1],
                                           "boot_ordinal": 1, "arch": "X86"}}}
    assert api.get("/v1/sessiontemplate/t2").json() == stored


@pytest.mark.parametrize("change", [
    lambda b: b.pop("name"), lambda b: b.update(templateUrl="u"), lambda b: b.update(tenant="a"),
    lambda b: b["boot_sets"]["compute"].update(network="HSN"),
    lambda b: b["boot_sets"]["compute"].update(boot_ordinal=-1),
    lambda b: b["boot_sets"]["compute"].update(node_list=[]),
    lambda b: b["boot_sets"]["compute"].update(arch="X86"),
    lambda b: b["boot_sets"]["compute"].update(cfs={"configuration": "x"})])
def test_row7_bad_template_bodies(api: Api, change) -> None:
    body = {**T1, "name": "t3", "boot_sets": {"compute": dict(T1["boot_sets"]["compute"])}}
    change(body)
    assert_problem(api.post("/v1/sessiontemplate", json=body), 400, "Bad Request")
    assert api.get("/v1/sessiontemplate/t3").status_code == 404


def test_template_without_hardware_is_refused_like_v2_v2(api: Api) -> None:
    body = {"name": "t4", "boot_sets": {"bs": {"path": manifest_url(IMAGE), "type": "s3"}}}
    assert_problem(api.post("/v1/sessiontemplate", json=body), 400, "The session template could not be created.")


def test_row8_xnames_canonicalised(api: Api) -> None:
    body = {"name": "t5", "boot_sets": {"bs": {"path": manifest_url(IMAGE), "type": "s3",
                                               "node_list": ["X03000C0S019B1N0"]}}}
    assert api.post("/v1/sessiontemplate", json=body).status_code == 201
    assert api.get("/v1/sessiontemplate/t5").json()["boot_sets"]["bs"]["node_list"] == [N1]


def test_row9_v2_template_read_through_v1(api: Api) -> None:
    v2 = {"boot_sets": {"b": {"path": manifest_url(IMAGE), "type": "s3", "node_list": [N1]}}}
    stored = api.put("/v2/sessiontemplates/v2t", json=v2).json()
    assert api.get("/v1/sessiontemplate/v2t").json() == stored


def test_row10_tenant_templates_listed_but_not_readable(api: Api) -> None:
    v2 = {"boot_sets": {"b": {"path": manifest_url(IMAGE), "type": "s3", "node_list": ["x1000c0s0b0n0"]}}}
    assert api.put("/v2/sessiontemplates/tt", json=v2, tenant="vcluster-blue").status_code == 200
    listed = {(t["tenant"], t["name"]) for t in api.get("/v1/sessiontemplate").json()}
    assert ("vcluster-blue", "tt") in listed and (None, "t1") in listed
    assert_problem(api.get("/v1/sessiontemplate/tt"), 404, "Session template not found.",
                   "Session template tt could not be found")


def test_row11_delete_twice(api: Api) -> None:
    resp = api.delete("/v1/sessiontemplate/t1")
    assert resp.status_code == 204 and resp.content == b""
    assert_problem(api.delete("/v1/sessiontemplate/t1"), 404, "Session template not found.",
                   "Session template t1 could not be found")


def test_template_template_is_static_v3(api: Api) -> None:
    body = api.get("/v1/sessiontemplatetemplate").json()
    bs = body["boot_sets"]["name_your_boot_set"]
    assert bs["rootfs_provider"] == "sbps" and body["cfs"] == {"configuration": "desired-cfs-config"}


# -- §2.3 sessions (rows 12-17, 34) --

def test_row12_create_echoes_operation_and_links(api: Api) -> None:
    resp = api.post("/v1/session", json={"operation": "Boot", "templateName": "t1"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    sid = body["links"][0]["href"].rsplit("/", 1)[1]
    assert body == {"operation": "Boot", "templateName": "t1", "job": f"boa-{sid}", "links": [
        {"rel": "session", "href": f"/v1/session/{sid}", "jobId": f"boa-{sid}", "type": "GET"},
        {"rel": "status", "href": f"/v1/session/{sid}/status", "type": "GET"}]}


def test_row13_template_uuid_and_limit(api: Api) -> None:
    resp = api.post("/v1/session", json={"operation": "boot", "templateUuid": "t1", "limit": N1})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["templateName"] == "t1" and body["limit"] == N1 and "templateUuid" not in body


@pytest.mark.parametrize("body", [
    {"operation": "reset", "templateName": "t1"}, {"operation": "Configure2", "templateName": "t1"},
    {"operation": "boot", "templateName": "t1", "job": "boa-x"},
    {"operation": "boot", "templateName": "t1", "links": []}, {"operation": "boot"},
    {"operation": "boot", "templateName": ""}, {"operation": "boot", "templateName": "t1", "limit": 5},
    {"operation": "boot", "templateName": "t1", "extra": 1}, {"templateName": "t1"}, [], "boot",
    {"operation": "boot", "templateName": "t1", "limit": "x" * 524289}])
def test_row14_bad_session_bodies(api: Api, body: Any) -> None:
    assert_problem(api.post("/v1/session", json=body), 400, "Bad Request")


def test_session_body_not_json(api: Api) -> None:
    resp = api.post("/v1/session", data=b"{nope", headers={"Content-Type": "application/json"})
    assert_problem(resp, 400, "Bad Request", "Post must be in JSON format")


def test_row15_unknown_template(api: Api) -> None:
    assert_problem(api.post("/v1/session", json={"operation": "boot", "templateName": "nope"}), 404,
                   "Not Found", "Session Template ID invalid: nope")


def test_row16_list_has_v1_ids_only(api: Api) -> None:
    ids = sorted(new_session(api) for _ in range(3))
    v2 = api.post("/v2/sessions", json={"operation": "shutdown", "template_name": "t1"})
    assert v2.status_code == 201, v2.text
    assert api.get("/v1/session").json() == ids
    assert not {s["name"] for s in api.get("/v2/sessions").json()} & set(ids)


def test_row17_describe_just_after_create(api: Api) -> None:
    sid = new_session(api, operation="Reboot")
    body = api.get(f"/v1/session/{sid}").json()
    assert body["complete"] is False and body["in_progress"] is True and body["stop_time"] is None
    assert body["start_time"].endswith("Z") and body["error_count"] == 0
    assert body["operation"] == "Reboot" and body["job"] == f"boa-{sid}"
    assert body["status_link"] == f"/v1/session/{sid}/status" and body["templateName"] == "t1"


def test_describe_missing_session(api: Api) -> None:
    assert_problem(api.get("/v1/session/nope"), 404, "Not Found", "Session nope not found")


def test_row34_delete_twice(api: Api) -> None:
    sid = new_session(api)
    resp = api.delete(f"/v1/session/{sid}")
    assert resp.status_code == 204 and resp.content == b""
    assert_problem(api.delete(f"/v1/session/{sid}"), 404, "Not Found", f"Sesssion: {sid} not found")
    assert api.get(f"/v1/session/{sid}/status").status_code == 404
    assert sid not in api.get("/v1/session").json()


# -- §2.4 status tree (rows 18-28) --

def test_row19_20_session_status_post_conflict_and_patch_first_wins(api: Api) -> None:
    sid = new_session(api)
    assert_problem(api.post(f"/v1/session/{sid}/status", json={}), 409,
                   "The resource to be created already exists", f"Status for session {sid} already exists")
    first = api.patch(f"/v1/session/{sid}/status", json={"stop_time": "A"})
    second = api.patch(f"/v1/session/{sid}/status", json={"stop_time": "B", "complete": False})
    assert first.status_code == second.status_code == 200
    meta = second.json()["metadata"]
    assert meta["stop_time"] == "A" and meta["complete"] is True and meta["in_progress"] is False
    assert api.get(f"/v1/session/{sid}").json()["stop_time"] == "A"


def test_row21_status_post_needs_a_session_v7(api: Api) -> None:
    assert_problem(api.post("/v1/session/nope/status/bsX", json=boot_set_body()), 404, "Not Found",
                   "Session nope not found")
    assert_problem(api.post("/v1/session/nope/status", json={}), 404, "Not Found", "Session nope not found")


def test_row22_to_26_boot_set_updates(api: Api) -> None:
    sid = new_session(api)
    base = f"/v1/session/{sid}/status/bsX"
    created = api.post(base, json=boot_set_body())
    assert created.status_code == 200, created.text
    assert created.json()["metadata"]["start_time"]
    assert [c["name"] for c in created.json()["phases"][0]["categories"]] == \
        ["not_started", "succeeded", "failed", "excluded", "in_progress"]
    assert api.get(f"/v1/session/{sid}/status").json()["boot_sets"] == ["bsX"]  # V5
    change = {"update_type": "NodeChangeList", "phase": "boot",
              "data": {"phase": "boot", "source": "not_started", "destination": "in_progress", "node_list": [N1]}}
    resp = api.patch(base, json=[change])
    assert resp.status_code == 204 and resp.content == b""
    phase = api.get(f"{base}/boot").json()
    assert phase["metadata"]["in_progress"] is True and phase["metadata"]["complete"] is False
    # row 23: errors merge by union over every message (L17)
    assert api.patch(base, json=[{"update_type": "NodeErrorsList", "phase": "boot", "data": {"a": [N1]}},
                                 {"update_type": "NodeErrorsList", "phase": "BOOT",
                                  "data": {"a": [N2], "b": [N1]}}]).status_code == 204
    assert api.get(f"{base}/boot").json()["errors"] == {"a": [N1, N2], "b": [N1]}
    # row 24: boot-set metadata
    assert api.patch(base, json=[{"update_type": "GenericMetadata", "phase": "boot_set",
                                  "data": {"stop_time": "S"}}]).status_code == 204
    assert api.get(base).json()["metadata"]["stop_time"] == "S"
    # row 25: a phase this boot set lacks; nothing of the batch is applied
    bad = [change, {"update_type": "GenericMetadata", "phase": "shutdown", "data": {}}]
    assert_problem(api.patch(base, json=bad), 400, "Bad Request", "Phase 'shutdown' is not found.")
    # row 26: case-insensitive phase and category
    assert api.get(f"{base}/BOOT/Not_Started").json() == {"name": "not_started", "node_list": [N2]}
    # failed nodes count everywhere
    api.patch(base, json=[{"update_type": "NodeChangeList", "phase": "boot", "data": {
        "phase": "boot", "source": "in_progress", "destination": "failed", "node_list": [N1]}}])
    assert api.get(base).json()["metadata"]["error_count"] == 1
    assert api.get(f"/v1/session/{sid}/status").json()["metadata"]["error_count"] == 1
    assert api.get(f"/v1/session/{sid}").json()["error_count"] == 1


def test_row27_unknown_category_phase_boot_set(api: Api) -> None:
    sid = new_session(api)
    base = f"/v1/session/{sid}/status"
    api.post(f"{base}/bsX", json=boot_set_body())
    assert_problem(api.get(f"{base}/bsX/boot/bogus"), 404, "Not Found", "Category 'bogus' is not found.")
    assert_problem(api.get(f"{base}/bsX/configure"), 404, "Not Found", "Phase 'configure' is not found.")
    assert_problem(api.get(f"{base}/nobs/boot"), 404, "Not Found",
                   f"Status for boot set nobs in session {sid} not found")
    assert_problem(api.get(f"{base}/nobs"), 404, "Not Found", f"Status for boot set nobs in session {sid} not found")


def test_row28_delete_boot_set_twice_and_conflict(api: Api) -> None:
    sid = new_session(api)
    base = f"/v1/session/{sid}/status/bsX"
    assert api.post(base, json=boot_set_body()).status_code == 200
    assert_problem(api.post(base, json=boot_set_body()), 409, "The resource to be created already exists",
                   "Status for boot set bsX already exists")
    assert api.delete(base).status_code == 204
    assert_problem(api.delete(base), 404, "Not Found")
    assert api.delete(f"/v1/session/{sid}/status").status_code == 204
    assert_problem(api.delete(f"/v1/session/{sid}/status"), 404, "Not Found", f"Status for session {sid} not found")


@pytest.mark.parametrize("items", [
    [{"update_type": "NodeChangeList", "phase": "boot", "data": {"phase": "boot"}}],
    [{"update_type": "NodeChangeList", "phase": "boot", "data": {
        "phase": "boot", "source": "nope", "destination": "failed", "node_list": []}}],
    [{"update_type": "Bogus", "phase": "boot", "data": {}}],
    [{"update_type": "NodeErrorsList", "phase": "boot"}],
    [{"update_type": "NodeErrorsList", "phase": "boot", "data": {"a": "x"}}],
    [{"update_type": "GenericMetadata", "phase": "boot", "data": {"extra": 1}}], [7], {"a": 1}])
def test_bad_patch_items_are_400(api: Api, items: Any) -> None:
    sid = new_session(api)
    api.post(f"/v1/session/{sid}/status/bsX", json=boot_set_body())
    assert_problem(api.patch(f"/v1/session/{sid}/status/bsX", json=items), 400, "Bad Request")


def test_wrong_method_is_405(api: Api) -> None:
    assert api.put("/v1/session", json={}).status_code == 405
    assert api.patch("/v1/sessiontemplate/t1", json={}).status_code == 405


def test_ten_thousand_sessions_listed(api: Api, sim_stack) -> None:
    """L14: listing works with 10,000 sessions (records written straight to Redis for speed)."""
    from bos_server.store import keys
    redis = sim_stack.redis_client
    pipe = redis.pipeline(transaction=False)
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(10000)]
    for sid in ids:
        pipe.set(keys.v1_session(sid), b'{"id": "%s"}' % sid.encode())
        pipe.zadd(keys.V1_SESSIONS, {sid: 0})
    pipe.execute()
    resp = requests.get(api.url("/v1/session"), timeout=60)
    assert resp.status_code == 200 and resp.json()[:10000] == ids


def test_row4_store_down_is_503(tmp_path) -> None:
    """v1.md §2.1 and §1.1: the healthz body, and problem+json 503 on data paths, with Redis gone."""
    from bos_sim.stack import ApiServer, free_port
    server = ApiServer(tmp_path / "api", f"redis://127.0.0.1:{free_port()}/0")
    try:
        health = requests.get(f"{server.url}/v1/healthz", timeout=10)
        assert health.status_code == 503
        assert health.json() == {"dbStatus": "Failed to read from cluster", "apiStatus": "Not Ready"}
        assert requests.get(f"{server.url}/v1", timeout=5).status_code == 200
        for path in ("/v1/session", "/v1/sessiontemplate", "/v1/session/x/status"):
            assert_problem(requests.get(server.url + path, timeout=10), 503, "Unable to connect to the Redis database")
    finally:
        assert server.stop() == 0
