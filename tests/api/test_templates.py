"""Session templates: PUT/GET/list/PATCH/DELETE, validation and the template-template
(api.md §2.5, §2.8, §3.9, §4.1-§4.3; D2, D13, D14, D20).

Tests on the shared `api` server (no S3, no IMS) use a manifest path without an IMS
image ID, so validation never waits for IMS. Tests that need real artifacts and IMS
records use `sim_api` (tests/api/conftest.py).
"""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, List, Optional

import pytest

from bos_server.store import keys
from tests.api.conftest import (IMAGE, IMAGE_ARM, IMAGE_NO_ARCH, IMAGE_NO_INITRD, MISSING_IMAGE,
                                extra_manifest_url, manifest_url)
from tests.support.client import Api, assert_problem

BAD = "Bad Request"
NOT_FOUND = "The resource was not found"
CREATE = "The session template could not be created: "
PATCH = "The session template could not be patched: "
FLAT = "s3://boot-images/manifest.json"  # no IMS image ID in the key: IMS is never called
HW = "node_groups, node_list, node_roles_groups"  # D14: sorted, comma-separated
BOOT_SET = {"path": FLAT, "type": "s3", "node_list": ["x3000c0s19b1n0"]}


def put(api: Api, name: str, body: Any, tenant: Optional[str] = None):
    return api.put(f"/v2/sessiontemplates/{name}", json=body, tenant=tenant)


def put_ok(api: Api, name: str, body: Dict[str, Any]) -> Dict[str, Any]:
    resp = put(api, name, body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def patch_ok(api: Api, name: str, body: Dict[str, Any]) -> Dict[str, Any]:
    resp = api.patch(f"/v2/sessiontemplates/{name}", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def boot_sets(**sets: Dict[str, Any]) -> Dict[str, Any]:
    return {"boot_sets": {name: {**BOOT_SET, **fields} for name, fields in sets.items()}}


def valid(api: Api, name: str = "tpl") -> str:
    resp = api.get(f"/v2/sessiontemplatesvalid/{name}")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body, str), body
    return body


def store_raw(redis_client, name: str, template: Dict[str, Any]) -> None:
    """A template as an older release or an import may have stored it, bypassing §4.1."""
    redis_client.set(keys.template(None, name), json.dumps({"name": name, "tenant": None, **template}))


# -- PUT (§3.9, §4.1) --

def test_put_stores_and_returns_the_sanitised_template(api: Api) -> None:
    body = {"description": "Compute nodes", "enable_cfs": False, "cfs": {"configuration": "compute-23.4.0"},
            "boot_sets": {"compute": {
                "path": FLAT, "type": "s3", "etag": "1cc4eef4f407bd8a62d7d66ee4b9e9c8",
                "kernel_parameters": "console=ttyS0,115200 quiet", "node_roles_groups": ["Compute", "Application_UAN"],
                "node_groups": ["blue"], "node_list": ["x3000c0s19b1n0"], "rootfs_provider": "sbps",
                "rootfs_provider_passthrough": "sbps:v1:iqn.2023-06.csm.iscsi:_sbps-hsn._tcp.my-system:300",
                "cfs": {"configuration": "compute-override"}}}}
    stored = put_ok(api, "compute-23.4", body)
    expected = {"name": "compute-23.4", "tenant": None, **body}
    expected["boot_sets"]["compute"]["arch"] = "X86"
    assert stored == expected
    assert api.get("/v2/sessiontemplates/compute-23.4").json() == expected


def test_put_does_not_insert_enable_cfs_or_description(api: Api) -> None:
    assert put_ok(api, "tpl", boot_sets(b1={})) == {"name": "tpl", "tenant": None,
                                                    "boot_sets": {"b1": {**BOOT_SET, "arch": "X86"}}}


@pytest.mark.parametrize("arch", ["X86", "ARM", "Other", "Unknown"])
def test_put_keeps_a_given_arch(api: Api, arch: str) -> None:
    assert put_ok(api, "tpl", boot_sets(b1={"arch": arch}))["boot_sets"]["b1"]["arch"] == arch


@pytest.mark.parametrize("arch", ["x86", "arm", "", None, "aarch64"])
def test_put_rejects_an_unknown_arch(api: Api, arch: Optional[str]) -> None:
    assert_problem(put(api, "tpl", boot_sets(b1={"arch": arch})), 400, BAD)


@pytest.mark.parametrize("cfs", [{}, {"configuration": ""}])
def test_put_removes_empty_cfs_at_both_levels(api: Api, cfs: Dict[str, Any]) -> None:
    stored = put_ok(api, "tpl", {"cfs": cfs, **boot_sets(b1={"cfs": cfs}, b2={"cfs": {"configuration": "keep"}})})
    assert "cfs" not in stored
    assert "cfs" not in stored["boot_sets"]["b1"]
    assert stored["boot_sets"]["b2"]["cfs"] == {"configuration": "keep"}
    assert api.get("/v2/sessiontemplates/tpl").json() == stored


def test_put_canonicalises_node_list_entries(api: Api) -> None:
    node_list = ["x03000c0s019b1n0", "X3000C0S19B1N1", "x3000c0s19b1n0", "Login-Node", "x0001c00s00b00n00",
                 "x03000c0s019b1n0p0"]
    stored = put_ok(api, "tpl", boot_sets(b1={"node_list": node_list}))
    assert stored["boot_sets"]["b1"]["node_list"] == [
        "x3000c0s19b1n0", "x3000c0s19b1n1", "x3000c0s19b1n0", "login-node", "x1c0s0b0n0", "x3000c0s19b1n0p0"]


def test_put_does_not_canonicalise_groups_or_roles(api: Api) -> None:
    stored = put_ok(api, "tpl", boot_sets(b1={"node_groups": ["Blue"], "node_roles_groups": ["Compute"]}))
    assert (stored["boot_sets"]["b1"]["node_groups"], stored["boot_sets"]["b1"]["node_roles_groups"]) == (["Blue"], ["Compute"])


def test_put_boot_set_name_must_match_its_key(api: Api) -> None:
    resp = put(api, "tpl", boot_sets(b1={"name": "b2"}))
    assert_problem(resp, 400, BAD, CREATE + "boot_sets key (b1) does not match 'name' field of corresponding "
                                            "boot set (b2)")
    assert_problem(api.get("/v2/sessiontemplates/tpl"), 404, NOT_FOUND)


def test_put_boot_set_name_equal_to_its_key_is_accepted_and_never_stored(api: Api) -> None:
    stored = put_ok(api, "tpl", boot_sets(b1={"name": "b1"}))
    assert "name" not in stored["boot_sets"]["b1"]
    assert "name" not in api.get("/v2/sessiontemplates/tpl").json()["boot_sets"]["b1"]


def test_d14_put_without_hardware_specifier_fields(api: Api) -> None:
    resp = put(api, "tpl", {"boot_sets": {"b1": {"path": FLAT, "type": "s3"}}})
    assert_problem(resp, 400, BAD, CREATE + f"Boot set b1: No hardware specifier fields ({HW})")


@pytest.mark.parametrize("field", ["node_list", "node_groups", "node_roles_groups"])
def test_put_with_an_empty_hardware_specifier_list_is_a_400(api: Api, field: str) -> None:
    body = {"boot_sets": {"b1": {"path": FLAT, "type": "s3", field: []}}}
    assert_problem(put(api, "tpl", body), 400, BAD)  # arrays have minItems 1 (§2.8)


@pytest.mark.parametrize("field", ["node_list", "node_groups", "node_roles_groups"])
def test_put_one_hardware_specifier_is_enough(api: Api, field: str) -> None:
    body = {"boot_sets": {"b1": {"path": FLAT, "type": "s3", field: ["x3000c0s19b1n0"]}}}
    assert put(api, "tpl", body).status_code == 200


def test_put_reports_the_first_failing_boot_set_in_map_order(api: Api) -> None:
    body = {"boot_sets": {"a": BOOT_SET, "z": {"path": FLAT, "type": "s3"},
                          "m": {**BOOT_SET, "name": "other"}}}
    assert_problem(put(api, "tpl", body), 400, BAD, CREATE + f"Boot set z: No hardware specifier fields ({HW})")


def test_put_with_nids_in_node_list_and_reject_nids_is_a_400(api: Api) -> None:
    assert api.patch("/v2/options", json={"reject_nids": True}).status_code == 200
    resp = put(api, "tpl", boot_sets(b1={"node_list": ["x3000c0s19b1n0", "nid000001"]}))
    assert_problem(resp, 400, BAD, CREATE + "Boot set b1: Has NID in 'node_list'")


def test_put_with_nids_in_node_list_without_reject_nids_is_stored(api: Api) -> None:
    stored = put_ok(api, "tpl", boot_sets(b1={"node_list": ["nid000001"]}))
    assert stored["boot_sets"]["b1"]["node_list"] == ["nid000001"]


@pytest.mark.parametrize("body,reason", [
    ({}, "Missing required 'boot_sets' field"),
    ({"description": "d"}, "Missing required 'boot_sets' field"),
    ({"boot_sets": []}, "'boot_sets' field has invalid type"),
    ({"boot_sets": "b1"}, "'boot_sets' field has invalid type"),
    ({"boot_sets": None}, "'boot_sets' field has invalid type"),
    ({"boot_sets": {}}, "Session templates must contain at least one boot set"),
])
def test_put_boot_sets_field_errors(api: Api, body: Dict[str, Any], reason: str) -> None:
    assert_problem(put(api, "tpl", body), 400, BAD, CREATE + reason)


def test_d13_put_accepts_and_ignores_read_only_name_tenant_and_links(api: Api) -> None:
    body = {"name": "other", "tenant": "someone", "links": [{"href": "http://x/", "rel": "self"}],
            "description": "d", **boot_sets(b1={})}
    stored = put_ok(api, "tpl", body)
    assert stored == {"name": "tpl", "tenant": None, "description": "d",
                      "boot_sets": {"b1": {**BOOT_SET, "arch": "X86"}}}
    assert [t["name"] for t in api.get("/v2/sessiontemplates").json()] == ["tpl"]


def test_d13_a_template_as_returned_by_get_can_be_put_back_unchanged(api: Api) -> None:
    stored = put_ok(api, "tpl", {"cfs": {"configuration": "c"}, **boot_sets(b1={"cfs": {"configuration": "o"}})})
    assert put_ok(api, "tpl", api.get("/v2/sessiontemplates/tpl").json()) == stored


@pytest.mark.parametrize("body", [
    {"bogus": 1, **boot_sets(b1={})},
    boot_sets(b1={"bogus": 1}),
    {"cfs": {"configuration": "c", "bogus": 1}, **boot_sets(b1={})},
    boot_sets(b1={"cfs": {"bogus": "x"}}),
    {"description": "", **boot_sets(b1={})},
    {"enable_cfs": "yes", **boot_sets(b1={})},
    {"enable_cfs": None, **boot_sets(b1={})},
    {"boot_sets": {"-bad-key": BOOT_SET}},
    {"boot_sets": {"b1": {"type": "s3", "node_list": ["x1"]}}},
    {"boot_sets": {"b1": {"path": FLAT, "node_list": ["x1"]}}},
    boot_sets(b1={"path": ""}),
    boot_sets(b1={"type": ""}),
    boot_sets(b1={"node_list": ["x1", ""]}),
    boot_sets(b1={"node_list": "x1"}),
    boot_sets(b1={"rootfs_provider": ""}),
    boot_sets(b1={"kernel_parameters": "k" * 4097}),
    boot_sets(b1={"name": "-bad-"}),
    {"boot_sets": {f"b{i}": BOOT_SET for i in range(128)}},
    [],
])
def test_put_rejects_schema_violations_and_stores_nothing(api: Api, body: Any) -> None:
    assert_problem(put(api, "tpl", body), 400, BAD)
    assert api.get("/v2/sessiontemplates").json() == []


def test_put_silently_replaces_an_existing_template(api: Api) -> None:
    put_ok(api, "tpl", {"description": "first", **boot_sets(b1={}, b2={})})
    second = put_ok(api, "tpl", boot_sets(b3={}))
    assert second == {"name": "tpl", "tenant": None, "boot_sets": {"b3": {**BOOT_SET, "arch": "X86"}}}
    assert api.get("/v2/sessiontemplates/tpl").json() == second


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("name", ["-bad", "bad-", "b%20d", "a" * 128])
def test_bad_template_name_in_path_is_a_400(api: Api, method: str, name: str) -> None:
    body = boot_sets(b1={}) if method in ("PUT", "PATCH") else None
    assert_problem(api.request(method, f"/v2/sessiontemplates/{name}", json=body), 400, BAD)


def test_bad_template_name_in_the_validate_path_is_a_400(api: Api) -> None:
    assert_problem(api.get("/v2/sessiontemplatesvalid/-bad"), 400, BAD)


# -- GET, list, DELETE --

def test_d20_list_is_sorted_by_name(api: Api) -> None:
    assert api.get("/v2/sessiontemplates").json() == []
    for name in ["b", "A", "a.2", "a", "0"]:
        put_ok(api, name, boot_sets(b1={}))
    assert [t["name"] for t in api.get("/v2/sessiontemplates").json()] == ["0", "A", "a", "a.2", "b"]


def test_list_returns_full_records(api: Api) -> None:
    stored = put_ok(api, "tpl", {"description": "d", **boot_sets(b1={})})
    assert api.get("/v2/sessiontemplates").json() == [stored]


def test_get_unknown_template_is_a_404(api: Api) -> None:
    assert_problem(api.get("/v2/sessiontemplates/nope"), 404, NOT_FOUND, "Session template 'nope' does not exist")


def test_by_name_access_with_a_tenant_header_does_not_see_untenanted_templates(api: Api) -> None:
    put_ok(api, "tpl", boot_sets(b1={}))
    detail = "Session template for tenant 'blue' 'tpl' does not exist"
    assert_problem(api.get("/v2/sessiontemplates/tpl", tenant="blue"), 404, NOT_FOUND, detail)
    assert_problem(api.patch("/v2/sessiontemplates/tpl", json={"description": "x"}, tenant="blue"), 404, NOT_FOUND,
                   detail)
    assert_problem(api.delete("/v2/sessiontemplates/tpl", tenant="blue"), 404, NOT_FOUND, detail)
    assert_problem(api.get("/v2/sessiontemplatesvalid/tpl", tenant="blue"), 404, NOT_FOUND, detail)
    assert api.get("/v2/sessiontemplates", tenant="blue").json() == []
    assert api.get("/v2/sessiontemplates/tpl").status_code == 200


def test_delete_template(api: Api) -> None:
    put_ok(api, "tpl", boot_sets(b1={}))
    put_ok(api, "keep", boot_sets(b1={}))
    resp = api.delete("/v2/sessiontemplates/tpl")
    assert resp.status_code == 204 and resp.content == b""
    assert_problem(api.get("/v2/sessiontemplates/tpl"), 404, NOT_FOUND, "Session template 'tpl' does not exist")
    assert_problem(api.delete("/v2/sessiontemplates/tpl"), 404, NOT_FOUND, "Session template 'tpl' does not exist")
    assert [t["name"] for t in api.get("/v2/sessiontemplates").json()] == ["keep"]


def test_delete_template_does_not_check_sessions_using_it(api: Api) -> None:
    put_ok(api, "tpl", boot_sets(b1={}))
    assert api.post("/v2/sessions", json={"name": "s1", "operation": "shutdown", "template_name": "tpl"}).status_code == 201
    assert api.delete("/v2/sessiontemplates/tpl").status_code == 204
    assert api.get("/v2/sessions/s1").status_code == 200


# -- PATCH (§2.5, §4.1) --

@pytest.fixture
def stored(api: Api) -> Dict[str, Any]:
    return put_ok(api, "tpl", {
        "description": "d", "enable_cfs": True, "cfs": {"configuration": "c1"},
        "boot_sets": {"b1": {**BOOT_SET, "kernel_parameters": "quiet", "cfs": {"configuration": "bc1"}},
                      "b2": {**BOOT_SET, "node_groups": ["blue"]}}})


def test_patch_merges_cfs_boot_sets_and_replaces_scalars(api: Api, stored: Dict[str, Any]) -> None:
    result = patch_ok(api, "tpl", {
        "description": "new", "enable_cfs": False, "cfs": {"configuration": "c2"},
        "boot_sets": {"b1": {"node_list": ["X03000C0S019B1N1"], "cfs": {"configuration": "bc2"}, "arch": "ARM"},
                      "b3": {"path": FLAT, "type": "s3", "node_roles_groups": ["Compute"]}}})
    expected = {
        "name": "tpl", "tenant": None, "description": "new", "enable_cfs": False, "cfs": {"configuration": "c2"},
        "boot_sets": {
            "b1": {**BOOT_SET, "node_list": ["x3000c0s19b1n1"], "kernel_parameters": "quiet",
                   "cfs": {"configuration": "bc2"}, "arch": "ARM"},
            "b2": stored["boot_sets"]["b2"],
            "b3": {"path": FLAT, "type": "s3", "node_roles_groups": ["Compute"], "arch": "X86"}}}
    assert result == expected
    assert api.get("/v2/sessiontemplates/tpl").json() == expected


def test_patch_never_removes_boot_sets(api: Api, stored: Dict[str, Any]) -> None:
    result = patch_ok(api, "tpl", {"boot_sets": {"b2": {"kernel_parameters": "k"}}})
    assert set(result["boot_sets"]) == {"b1", "b2"}
    assert result["boot_sets"]["b1"] == stored["boot_sets"]["b1"]
    assert result["boot_sets"]["b2"] == {**stored["boot_sets"]["b2"], "kernel_parameters": "k"}


def test_patch_with_empty_cfs_keeps_the_configuration(api: Api, stored: Dict[str, Any]) -> None:
    result = patch_ok(api, "tpl", {"cfs": {}, "boot_sets": {"b1": {"cfs": {}}}})
    assert result == stored


def test_patch_with_empty_configuration_removes_cfs_at_both_levels(api: Api, stored: Dict[str, Any]) -> None:
    result = patch_ok(api, "tpl", {"cfs": {"configuration": ""}, "boot_sets": {"b1": {"cfs": {"configuration": ""}}}})
    assert "cfs" not in result and "cfs" not in result["boot_sets"]["b1"]
    assert api.get("/v2/sessiontemplates/tpl").json() == result


def test_patch_adds_cfs_to_a_boot_set_without_one(api: Api, stored: Dict[str, Any]) -> None:
    result = patch_ok(api, "tpl", {"boot_sets": {"b2": {"cfs": {"configuration": "bc9"}}}})
    assert result["boot_sets"]["b2"]["cfs"] == {"configuration": "bc9"}


def test_patch_with_an_empty_body_changes_nothing(api: Api, stored: Dict[str, Any]) -> None:
    assert patch_ok(api, "tpl", {}) == stored


def test_d13_patch_ignores_read_only_fields(api: Api, stored: Dict[str, Any]) -> None:
    assert patch_ok(api, "tpl", {"name": "x", "tenant": "t", "links": []}) == stored


def test_patch_of_a_missing_template_is_a_404_before_body_validation(api: Api) -> None:
    assert_problem(api.patch("/v2/sessiontemplates/nope", json={"bogus": 1}), 404, NOT_FOUND,
                   "Session template 'nope' does not exist")
    assert_problem(api.patch("/v2/sessiontemplates/nope", json={"description": "x"}), 404, NOT_FOUND,
                   "Session template 'nope' does not exist")


@pytest.mark.parametrize("body", [
    {"bogus": 1}, {"boot_sets": {}}, {"boot_sets": {"b1": {"bogus": 1}}}, {"boot_sets": {"-x": {"path": FLAT}}},
    {"description": ""}, {"cfs": None}, {"boot_sets": {"b1": {"node_list": []}}}, {"boot_sets": None}, [],
])
def test_patch_rejects_schema_violations_and_changes_nothing(api: Api, stored: Dict[str, Any], body: Any) -> None:
    assert_problem(api.patch("/v2/sessiontemplates/tpl", json=body), 400, BAD)
    assert api.get("/v2/sessiontemplates/tpl").json() == stored


def test_patch_revalidates_the_merged_template(api: Api, stored: Dict[str, Any]) -> None:
    resp = api.patch("/v2/sessiontemplates/tpl", json={"boot_sets": {"b9": {"node_list": ["x1"]}}})
    body = assert_problem(resp, 400, BAD)
    assert body["detail"].startswith(PATCH) and "path" in body["detail"], body
    assert api.get("/v2/sessiontemplates/tpl").json() == stored


def test_patch_boot_set_name_mismatch_uses_the_patch_prefix(api: Api, stored: Dict[str, Any]) -> None:
    resp = api.patch("/v2/sessiontemplates/tpl", json={"boot_sets": {"b1": {"name": "b2"}}})
    assert_problem(resp, 400, BAD, PATCH + "boot_sets key (b1) does not match 'name' field of corresponding "
                                           "boot set (b2)")


def test_patch_revalidates_unchanged_parts_against_current_options(api: Api) -> None:
    put_ok(api, "tpl", boot_sets(b1={"node_list": ["nid000001"]}))
    assert api.patch("/v2/options", json={"reject_nids": True}).status_code == 200
    resp = api.patch("/v2/sessiontemplates/tpl", json={"description": "only the description"})
    assert_problem(resp, 400, BAD, PATCH + "Boot set b1: Has NID in 'node_list'")
    assert "description" not in api.get("/v2/sessiontemplates/tpl").json()


def test_patch_new_boot_set_without_hardware_specifier(api: Api, stored: Dict[str, Any]) -> None:
    resp = api.patch("/v2/sessiontemplates/tpl", json={"boot_sets": {"b3": {"path": FLAT, "type": "s3"}}})
    assert_problem(resp, 400, BAD, PATCH + f"Boot set b3: No hardware specifier fields ({HW})")


def test_d2_concurrent_patches_of_different_boot_sets_all_survive(api: Api, stored: Dict[str, Any]) -> None:
    statuses: List[int] = []

    def worker(i: int) -> None:
        body = {"boot_sets": {f"n{i}": {"path": FLAT, "type": "s3", "node_list": [f"x{i}"]}}}
        statuses.append(Api(api.base).patch("/v2/sessiontemplates/tpl", json=body).status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 10
    assert set(api.get("/v2/sessiontemplates/tpl").json()["boot_sets"]) == {"b1", "b2"} | {f"n{i}" for i in range(10)}


# -- GET /v2/sessiontemplatesvalid/{id} (§3.9, §4.2) --

def test_validate_missing_template_is_a_404(api: Api) -> None:
    assert_problem(api.get("/v2/sessiontemplatesvalid/nope"), 404, NOT_FOUND, "Session template 'nope' does not exist")


def test_validate_without_s3_returns_the_artifact_error_as_a_string(api: Api) -> None:
    put_ok(api, "tpl", boot_sets(b1={}))
    message = valid(api)
    assert message.startswith("Session template: 'tpl' boot set: 'b1': Can't find boot artifacts. Error: "), message


def test_validate_with_reject_nids_reports_nids_before_artifacts(api: Api) -> None:
    put_ok(api, "tpl", boot_sets(b1={}, b2={"node_list": ["nid000001"]}))
    put_ok(api, "tpl2", boot_sets(b2={"node_list": ["nid000001"]}, b1={}))
    assert api.patch("/v2/options", json={"reject_nids": True}).status_code == 200
    # b1 is checked first and fails on artifacts (no S3): the first error wins
    assert valid(api).startswith("Session template: 'tpl' boot set: 'b1': Can't find boot artifacts.")
    assert valid(api, "tpl2") == "Session template: 'tpl2' boot set: 'b2': Has NID in 'node_list'"


def test_d14_validate_reports_hardware_problems_of_legacy_templates(api: Api, redis_client) -> None:
    store_raw(redis_client, "empty-lists", {"boot_sets": {"b1": {"path": FLAT, "type": "s3", "node_list": [],
                                                                  "node_groups": []}}})
    store_raw(redis_client, "no-fields", {"boot_sets": {"b1": {"path": FLAT, "type": "s3"}}})
    store_raw(redis_client, "no-boot-sets", {"boot_sets": {}})
    assert valid(api, "empty-lists") == f"Session template: 'empty-lists' boot set: 'b1': No non-empty hardware specifier fields ({HW})"
    assert valid(api, "no-fields") == f"Session template: 'no-fields' boot set: 'b1': No hardware specifier fields ({HW})"
    assert valid(api, "no-boot-sets") == "Session template 'no-boot-sets' requires at least 1 boot set."


def test_d14_session_create_reports_hardware_problems_of_legacy_templates(api: Api, redis_client) -> None:
    store_raw(redis_client, "legacy", {"boot_sets": {"b1": {"path": FLAT, "type": "s3", "node_roles_groups": []}}})
    resp = api.post("/v2/sessions", json={"operation": "shutdown", "template_name": "legacy"})
    assert_problem(resp, 400, BAD, "Session template fails check: Session template: 'legacy' boot set: 'b1': "
                                   f"No non-empty hardware specifier fields ({HW})")


# -- validation against the simulator's S3 and IMS --

def image_set(image: str = IMAGE, **fields: Any) -> Dict[str, Any]:
    return {"path": manifest_url(image), "type": "s3", "node_list": ["x1000c0s0b0n0"], **fields}


def test_validate_a_good_template_is_valid(sim_api: Api) -> None:
    put_ok(sim_api, "tpl", {"boot_sets": {"b1": image_set(), "b2": image_set(IMAGE_NO_ARCH, arch="Unknown")}})
    assert valid(sim_api) == "Valid"


def test_validate_joins_warnings_with_semicolons(sim_api: Api) -> None:
    put_ok(sim_api, "tpl", {"boot_sets": {
        "b1": image_set(rootfs_provider="cpss3", node_list=["nid000001"]),
        "b2": image_set(IMAGE_NO_INITRD),
        "b3": {**image_set(), "path": extra_manifest_url("flat")},
        "b4": image_set(arch="Other")}})
    p = "Session template: 'tpl' boot set: "
    assert valid(sim_api) == "; ".join([
        p + "'b1': Unsupported rootfs_provider ('cpss3') will cause boot/reboot sessions to fail",
        p + "'b1': Has NID in 'node_list'",
        p + f"'b2': {manifest_url(IMAGE_NO_INITRD)} doesn't contain a initrd",
        p + "'b3': Boot artifact S3 URL 's3://boot-images/flat-manifest.json' doesn't follow convention for IMS images",
        p + "'b4': Can't validate boot image arch: Boot set arch set to 'Other'",
    ])


def test_validate_missing_ims_image_is_a_warning_unless_ims_images_must_exist(sim_api: Api) -> None:
    put_ok(sim_api, "tpl", {"boot_sets": {"b1": {**image_set(), "path": extra_manifest_url("missing-image")}}})
    message = f"Session template: 'tpl' boot set: 'b1': IMS image id '{MISSING_IMAGE}' does not exist in IMS"
    assert valid(sim_api) == message
    assert sim_api.patch("/v2/options", json={"ims_images_must_exist": True}).status_code == 200
    assert valid(sim_api) == message  # now an error, with the same text


def test_validate_uninspectable_initrd_is_a_warning(sim_api: Api) -> None:
    url = extra_manifest_url("gone-initrd")
    put_ok(sim_api, "tpl", {"boot_sets": {"b1": {**image_set(), "path": url}}})
    first, second = valid(sim_api).split("; ")
    assert first.startswith(f"Session template: 'tpl' boot set: 'b1': Unable to check initrd in {url}. Warning: ")
    # the manifest key looks like `<image id>/...`, so IMS is asked about image `goneinitrd`
    assert second == "Session template: 'tpl' boot set: 'b1': IMS image id 'goneinitrd' does not exist in IMS"


@pytest.mark.parametrize("manifest,error", [
    ("not-json", "Can't find boot artifacts. Error: "),
    ("list", "Can't find boot artifacts. Error: "),
    ("no-kernel", "Can't find kernel in {url}. Error: "),
    ("gone-kernel", "Can't find kernel in {url}. Error: "),
    ("two-kernels", "Can't find kernel in {url}. Error: "),
    ("huge", "Can't find boot artifacts. Error: "),
])
def test_validate_artifact_errors(sim_api: Api, manifest: str, error: str) -> None:
    url = extra_manifest_url(manifest)
    put_ok(sim_api, "tpl", {"boot_sets": {"b1": {**image_set(), "path": url}}})  # never fatal on PUT
    message = valid(sim_api)
    assert message.startswith("Session template: 'tpl' boot set: 'b1': " + error.format(url=url)), message


def test_validate_missing_manifest_object(sim_api: Api) -> None:
    put_ok(sim_api, "tpl", {"boot_sets": {"b1": {**image_set(), "path": "s3://boot-images/nosuch/manifest.json"}}})
    assert valid(sim_api).startswith("Session template: 'tpl' boot set: 'b1': Can't find boot artifacts. Error: ")


def test_put_rejects_a_boot_set_arch_that_does_not_match_the_ims_image(sim_api: Api) -> None:
    resp = put(sim_api, "tpl", {"boot_sets": {"b1": image_set(IMAGE, arch="ARM")}})
    assert_problem(resp, 400, BAD, CREATE + "Boot set b1: Boot set arch 'ARM' means IMS image arch should be "
                                            "'aarch64', but actual IMS image arch is 'x86_64'")
    resp = put(sim_api, "tpl", {"boot_sets": {"b1": image_set(IMAGE_ARM)}})  # arch defaults to X86
    assert_problem(resp, 400, BAD, CREATE + "Boot set b1: Boot set arch 'X86' means IMS image arch should be "
                                            "'x86_64', but actual IMS image arch is 'aarch64'")
    resp = put(sim_api, "tpl", {"boot_sets": {"b1": image_set(IMAGE_NO_ARCH, arch="ARM")}})
    assert_problem(resp, 400, BAD, CREATE + "Boot set b1: Boot set arch 'ARM' means IMS image arch should be "
                                            "'aarch64', but actual IMS image arch is 'x86_64'")


@pytest.mark.parametrize("image,arch", [(IMAGE, "X86"), (IMAGE, "Unknown"), (IMAGE_ARM, "ARM"), (IMAGE_NO_ARCH, "X86"),
                                        (IMAGE_ARM, "Other")])
def test_put_accepts_matching_arches(sim_api: Api, image: str, arch: str) -> None:
    put_ok(sim_api, "tpl", {"boot_sets": {"b1": image_set(image, arch=arch)}})


def test_put_with_a_missing_ims_image_fails_only_with_ims_images_must_exist(sim_api: Api) -> None:
    body = {"boot_sets": {"b1": {**image_set(), "path": extra_manifest_url("missing-image")}}}
    put_ok(sim_api, "tpl", body)
    assert sim_api.patch("/v2/options", json={"ims_images_must_exist": True}).status_code == 200
    assert_problem(put(sim_api, "tpl2", body), 400, BAD,
                   CREATE + f"Boot set b1: IMS image id '{MISSING_IMAGE}' does not exist in IMS")
    assert_problem(sim_api.patch("/v2/sessiontemplates/tpl", json={"description": "d"}), 400, BAD,
                   PATCH + f"Boot set b1: IMS image id '{MISSING_IMAGE}' does not exist in IMS")


def test_put_with_an_ims_error_fails_only_with_ims_errors_fatal(sim_api: Api, sim_stack) -> None:
    sim_stack.sim.add_service_fault("ims", status=400)  # a non-404 failure that is not retried
    put_ok(sim_api, "tpl", {"boot_sets": {"b1": image_set()}})
    assert valid(sim_api).startswith("Session template: 'tpl' boot set: 'b1': Can't validate boot image arch: ")
    assert sim_api.patch("/v2/options", json={"ims_errors_fatal": True}).status_code == 200
    body = assert_problem(put(sim_api, "tpl2", {"boot_sets": {"b1": image_set()}}), 400, BAD)
    assert body["detail"].startswith(CREATE + "Boot set b1: Can't validate boot image arch: "), body


def test_put_never_fails_on_artifact_problems(sim_api: Api) -> None:
    for name in ["not-json", "no-kernel", "gone-kernel"]:
        put_ok(sim_api, name, {"boot_sets": {"b1": {**image_set(), "path": extra_manifest_url(name)}}})
    put_ok(sim_api, "missing", {"boot_sets": {"b1": {**image_set(), "path": "s3://boot-images/nosuch/manifest.json"}}})


# -- GET /v2/sessiontemplatetemplate --

TEMPLATE_TEMPLATE = {
    "boot_sets": {"name_your_boot_set": {
        "type": "s3", "etag": "boot-image-s3-etag", "kernel_parameters": "your-kernel-parameters",
        "cfs": {"configuration": "bootset-specific-cfs-override"},
        "node_list": ["xname1", "xname2", "xname3"],
        "path": "s3://boot-images/boot-image-ims-id/manifest.json",
        "rootfs_provider": "sbps",
        "rootfs_provider_passthrough": "sbps:v1:iqn.2023-06.csm.iscsi:_sbps-hsn._tcp.my-system.my-site-domain:300"}},
    "cfs": {"configuration": "default-sessiontemplate-cfs-config"},
    "enable_cfs": True,
}


@pytest.mark.parametrize("prefix", ["", "/apis/bos"])
def test_template_template_returns_the_exact_static_example(api: Api, prefix: str) -> None:
    resp = Api(api.base, prefix).get("/v2/sessiontemplatetemplate")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == TEMPLATE_TEMPLATE


def test_template_template_ignores_the_tenant_header_and_storage(api: Api) -> None:
    assert api.get("/v2/sessiontemplatetemplate", tenant="t" * 200).json() == TEMPLATE_TEMPLATE
    assert api.get("/v2/sessiontemplates").json() == []
