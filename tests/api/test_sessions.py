"""Sessions: create, list, bulk delete, single record, extended status (api.md §2.7, §2.9,
§3.6-§3.8; D2, D9, D10, D20).

Sessions here use operation `shutdown` unless a test is about boot artifacts: shutdown
needs no S3 or IMS (§4.2), so the shared API server (no S3, no IMS) can create them.
Tenant-scoped behaviour that needs TAPMS lives in test_tenancy.py.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

import pytest

from tests.api.conftest import IMAGE, IMAGE_NO_INITRD, MISSING_IMAGE, extra_manifest_url, manifest_url
from tests.support.client import Api, assert_problem

BAD = "Bad Request"
NOT_FOUND = "The resource was not found"
EXISTS = "The resource to be created already exists"
WIRE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
# A manifest path without an IMS image ID: validation never calls IMS (§4.2 "doesn't follow convention").
BOOT_SET = {"path": "s3://boot-images/manifest.json", "type": "s3", "node_list": ["x3000c0s19b1n0"]}


# -- helpers --

def put_template(api: Api, name: str = "tpl", tenant: Optional[str] = None, **boot_set: Any) -> Dict[str, Any]:
    resp = api.put(f"/v2/sessiontemplates/{name}", json={"boot_sets": {"b1": {**BOOT_SET, **boot_set}}},
                   tenant=tenant)
    assert resp.status_code == 200, resp.text
    return resp.json()


def create(api: Api, tenant: Optional[str] = None, **body: Any) -> Dict[str, Any]:
    body = {"operation": "shutdown", "template_name": "tpl", **body}
    resp = api.post("/v2/sessions", json=body, tenant=tenant)
    assert resp.status_code == 201, resp.text
    return resp.json()


def set_status(api: Api, name: str, **status: Any) -> Dict[str, Any]:
    resp = api.patch(f"/v2/sessions/{name}", json={"status": status})
    assert resp.status_code == 200, resp.text
    return resp.json()


def put_components(api: Api, records: List[Dict[str, Any]]) -> None:
    resp = api.put("/v2/components", json=records)
    assert resp.status_code == 200, resp.text


def patch_components(api: Api, records: List[Dict[str, Any]]) -> None:
    resp = api.patch("/v2/components", json=records)
    assert resp.status_code == 200, resp.text


def ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def names(resp) -> List[str]:
    assert resp.status_code == 200, resp.text
    return [s["name"] for s in resp.json()]


@pytest.fixture
def tpl(api: Api) -> Api:
    """The API with the untenanted template `tpl` (one boot set `b1`)."""
    put_template(api)
    return api


# -- POST /v2/sessions (§3.6.1) --

def test_create_returns_the_record_with_nulls_defaults_and_a_uuid4_name(tpl: Api) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    resp = tpl.post("/v2/sessions", json={"operation": "shutdown", "template_name": "tpl"})
    assert resp.status_code == 201, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    record = resp.json()
    assert uuid.UUID(record["name"]).version == 4
    assert str(uuid.UUID(record["name"])) == record["name"]
    start = record["status"].pop("start_time")
    assert WIRE_TIME.match(start), start
    started = datetime.strptime(start, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    assert before - timedelta(seconds=1) <= started <= datetime.now(timezone.utc) + timedelta(seconds=1)  # D9: UTC
    assert record == {"name": record["name"], "tenant": None, "operation": "shutdown", "template_name": "tpl",
                      "limit": "", "stage": False, "components": "", "include_disabled": False,
                      "status": {"end_time": None, "status": "pending", "error": None}}
    stored = tpl.get(f"/v2/sessions/{record['name']}").json()
    assert stored["status"].pop("start_time") == start
    assert stored == record


def test_create_keeps_given_name_limit_stage_and_include_disabled(tpl: Api) -> None:
    record = create(tpl, name="s.1_a-b", operation="shutdown", limit="x1,&compute,!x2", stage=True,
                    include_disabled=True)
    assert record["name"] == "s.1_a-b"
    assert (record["limit"], record["stage"], record["include_disabled"]) == ("x1,&compute,!x2", True, True)
    assert tpl.get("/v2/sessions/s.1_a-b").json() == record


@pytest.mark.parametrize("limit", [None, ""])
def test_create_stores_null_or_empty_limit_as_empty_string(tpl: Api, limit: Optional[str]) -> None:
    assert create(tpl, limit=limit)["limit"] == ""


def test_create_generates_a_new_name_each_time(tpl: Api) -> None:
    assert create(tpl)["name"] != create(tpl)["name"]


@pytest.mark.parametrize("body", [
    {"operation": "shutdown", "template_name": "tpl", "tenant": "t"},          # read-only in Session, unknown here
    {"operation": "shutdown", "template_name": "tpl", "components": "x1"},
    {"operation": "shutdown", "template_name": "tpl", "status": {"status": "pending"}},
    {"operation": "shutdown", "template_name": "tpl", "bogus": 1},
    {"operation": "shutdown", "template_name": "tpl", "name": "-starts-with-dash"},
    {"operation": "shutdown", "template_name": "tpl", "name": "ends-with-dot."},
    {"operation": "shutdown", "template_name": "tpl", "name": "has space"},
    {"operation": "shutdown", "template_name": "tpl", "name": "a" * 128},
    {"operation": "shutdown", "template_name": "tpl", "name": ""},
    {"operation": "poweroff", "template_name": "tpl"},
    {"operation": "Boot", "template_name": "tpl"},
    {"operation": None, "template_name": "tpl"},
    {"operation": "shutdown", "template_name": None},
    {"operation": "shutdown", "template_name": "tpl", "name": None},
    {"operation": "shutdown", "template_name": "tpl", "stage": None},
    {"operation": "shutdown", "template_name": "tpl", "include_disabled": None},
    {"operation": "shutdown", "template_name": "tpl", "stage": "true"},
    {"operation": "shutdown", "template_name": "tpl", "limit": 5},
    {"operation": "shutdown", "template_name": "tpl", "limit": "x" * 524289},
    {"operation": "shutdown", "template_name": "bad/name"},
    {"template_name": "tpl"},
    {"operation": "shutdown"},
    [],
])
def test_create_rejects_invalid_bodies(tpl: Api, body: Any) -> None:
    body_err = assert_problem(tpl.post("/v2/sessions", json=body), 400, BAD)
    assert not body_err["detail"].startswith("Session Template Name invalid")
    assert tpl.get("/v2/sessions").json() == []


def test_create_rejects_malformed_json(tpl: Api) -> None:
    resp = tpl.post("/v2/sessions", data=b'{"operation": ', headers={"Content-Type": "application/json"})
    assert_problem(resp, 400, BAD)


def test_create_validates_the_body_before_looking_up_the_template(api: Api) -> None:
    body = assert_problem(api.post("/v2/sessions", json={"operation": "nope", "template_name": "missing"}), 400, BAD)
    assert "operation" in body["detail"]


@pytest.mark.parametrize("extra", [{}, {"limit": None}, {"limit": ""}])
def test_session_limit_required_rejects_a_missing_null_or_empty_limit(tpl: Api, extra: Dict[str, Any]) -> None:
    assert tpl.patch("/v2/options", json={"session_limit_required": True}).status_code == 200
    resp = tpl.post("/v2/sessions", json={"operation": "shutdown", "template_name": "tpl", **extra})
    assert_problem(resp, 400, BAD, "session_limit_required option is set, but this session has no limit specified")
    assert create(tpl, limit="*")["limit"] == "*"


def test_session_limit_required_is_checked_before_the_template_lookup(api: Api) -> None:
    assert api.patch("/v2/options", json={"session_limit_required": True}).status_code == 200
    resp = api.post("/v2/sessions", json={"operation": "shutdown", "template_name": "missing"})
    assert_problem(resp, 400, BAD, "session_limit_required option is set, but this session has no limit specified")


@pytest.mark.parametrize("limit", ["nid000001", "x1,nid000002", "&nid1", "!nid1", "x1,&!nid1", "compute,!&nidfoo"])
def test_reject_nids_rejects_limit_items_that_look_like_nids(tpl: Api, limit: str) -> None:
    assert tpl.patch("/v2/options", json={"reject_nids": True}).status_code == 200
    resp = tpl.post("/v2/sessions", json={"operation": "shutdown", "template_name": "tpl", "limit": limit})
    assert_problem(resp, 400, BAD, f"reject_nids: session limit appears to contain NIDs: {limit}")


@pytest.mark.parametrize("limit", ["x1nid", "Nid1", "NID1", "compute,&x1,!x2", "*", "a-nid"])
def test_reject_nids_accepts_limit_items_that_do_not_start_with_nid(tpl: Api, limit: str) -> None:
    assert tpl.patch("/v2/options", json={"reject_nids": True}).status_code == 200
    assert create(tpl, limit=limit)["limit"] == limit


def test_nid_limits_are_accepted_without_reject_nids(tpl: Api) -> None:
    assert create(tpl, limit="nid000001,&nid2")["limit"] == "nid000001,&nid2"


def test_reject_nids_is_checked_before_the_template_lookup(api: Api) -> None:
    assert api.patch("/v2/options", json={"reject_nids": True}).status_code == 200
    resp = api.post("/v2/sessions", json={"operation": "shutdown", "template_name": "missing", "limit": "nid1"})
    assert_problem(resp, 400, BAD, "reject_nids: session limit appears to contain NIDs: nid1")


def test_missing_template_is_a_400_not_a_404(api: Api) -> None:
    resp = api.post("/v2/sessions", json={"operation": "shutdown", "template_name": "nope"})
    assert_problem(resp, 400, BAD, "Session Template Name invalid: nope")
    assert api.get("/v2/sessions").json() == []


def test_no_session_is_created_from_a_template_deleted_after_an_earlier_create(tpl: Api) -> None:
    """The server keeps the templates it read; the create script refuses a stale one (session_create.py)."""
    create(tpl)
    assert tpl.delete("/v2/sessiontemplates/tpl").status_code == 204
    resp = tpl.post("/v2/sessions", json={"operation": "shutdown", "template_name": "tpl"})
    assert_problem(resp, 400, BAD, "Session Template Name invalid: tpl")
    assert len(tpl.get("/v2/sessions").json()) == 1


def test_a_create_checks_the_template_as_changed_after_an_earlier_create(tpl: Api) -> None:
    create(tpl)
    assert tpl.put("/v2/sessiontemplates/tpl", json={"boot_sets": {"b1": {**BOOT_SET, "node_list": ["nid000001"]}}}
                   ).status_code == 200
    assert tpl.patch("/v2/options", json={"reject_nids": True}).status_code == 200
    resp = tpl.post("/v2/sessions", json={"operation": "shutdown", "template_name": "tpl"})
    assert_problem(resp, 400, BAD, "Session template fails check: Session template: 'tpl' boot set: 'b1': "
                                   "Has NID in 'node_list'")
    assert len(tpl.get("/v2/sessions").json()) == 1


def test_template_lookup_uses_the_untenanted_namespace_without_header(tpl: Api) -> None:
    resp = tpl.post("/v2/sessions", json={"operation": "shutdown", "template_name": "tpl"}, tenant="")
    assert resp.status_code == 201, resp.text  # an empty header means "no tenant"
    assert resp.json()["tenant"] is None


def test_template_check_failure_reports_the_first_failing_boot_set(api: Api) -> None:
    body = {"boot_sets": {"b1": BOOT_SET, "b2": {**BOOT_SET, "node_list": ["nid000001"]},
                          "b3": {**BOOT_SET, "node_list": ["nid000002"]}}}
    assert api.put("/v2/sessiontemplates/tpl", json=body).status_code == 200  # NIDs only warned here
    assert api.patch("/v2/options", json={"reject_nids": True}).status_code == 200
    resp = api.post("/v2/sessions", json={"operation": "shutdown", "template_name": "tpl"})
    assert_problem(resp, 400, BAD, "Session template fails check: Session template: 'tpl' boot set: 'b2': "
                                   "Has NID in 'node_list'")
    assert api.get("/v2/sessions").json() == []


def test_template_check_warnings_do_not_block_creation(api: Api) -> None:
    put_template(api, node_list=["nid000001"], rootfs_provider="cpss3")
    assert create(api)["status"]["status"] == "pending"


@pytest.mark.parametrize("operation", ["boot", "reboot"])
def test_boot_and_reboot_fail_the_check_when_s3_is_not_configured(tpl: Api, operation: str) -> None:
    resp = tpl.post("/v2/sessions", json={"operation": operation, "template_name": "tpl"})
    body = assert_problem(resp, 400, BAD)
    prefix = "Session template fails check: Session template: 'tpl' boot set: 'b1': Can't find boot artifacts. Error: "
    assert body["detail"].startswith(prefix), body["detail"]
    assert len(body["detail"]) > len(prefix)


def test_boot_with_a_non_s3_boot_set_type_fails_the_artifact_check(api: Api) -> None:
    put_template(api, type="http")
    body = assert_problem(api.post("/v2/sessions", json={"operation": "boot", "template_name": "tpl"}), 400, BAD)
    assert body["detail"].startswith("Session template fails check: Session template: 'tpl' boot set: 'b1': "
                                     "Can't find boot artifacts. Error: ")


def test_shutdown_needs_no_boot_artifacts(api: Api) -> None:
    put_template(api, type="http", path="nowhere")
    assert create(api)["operation"] == "shutdown"


def test_duplicate_name_is_a_409_and_keeps_the_original(tpl: Api) -> None:
    original = create(tpl, name="dup", limit="x1")
    resp = tpl.post("/v2/sessions", json={"name": "dup", "operation": "shutdown", "template_name": "tpl", "limit": "x2"})
    assert_problem(resp, 409, EXISTS, "Session 'dup' already exists")
    assert tpl.get("/v2/sessions/dup").json() == original


def test_d2_concurrent_creates_of_one_name_give_exactly_one_201(tpl: Api) -> None:
    statuses: List[int] = []
    body = {"name": "race", "operation": "shutdown", "template_name": "tpl"}

    def worker() -> None:
        statuses.append(Api(tpl.base).post("/v2/sessions", json=body).status_code)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] + [409] * 11
    assert names(tpl.get("/v2/sessions")) == ["race"]


# -- GET /v2/sessions (§3.6.2) --

def test_d20_list_is_sorted_by_name(tpl: Api) -> None:
    for name in ["b", "a-2", "C", "a", "a.1", "0z"]:
        create(tpl, name=name)
    assert names(tpl.get("/v2/sessions")) == ["0z", "C", "a", "a-2", "a.1", "b"]


def test_list_is_empty_without_sessions(api: Api) -> None:
    resp = api.get("/v2/sessions")
    assert resp.status_code == 200 and resp.json() == []


@pytest.fixture
def lifecycle(tpl: Api) -> Api:
    """Sessions p (pending), r (running), c1 and c2 (complete)."""
    for name in ["p", "r", "c1", "c2"]:
        create(tpl, name=name)
    set_status(tpl, "r", status="running")
    set_status(tpl, "c1", status="complete", end_time=ago(0))
    set_status(tpl, "c2", status="complete", end_time=ago(0))
    return tpl


@pytest.mark.parametrize("status,expected", [("pending", ["p"]), ("running", ["r"]), ("complete", ["c1", "c2"])])
def test_list_filters_by_status(lifecycle: Api, status: str, expected: List[str]) -> None:
    assert names(lifecycle.get("/v2/sessions", params={"status": status})) == expected


@pytest.mark.parametrize("status", ["done", "", "Running"])
def test_list_rejects_an_unknown_status(lifecycle: Api, status: str) -> None:
    assert_problem(lifecycle.get("/v2/sessions", params={"status": status}), 400, BAD)


@pytest.fixture
def aged(tpl: Api) -> Api:
    """Sessions started 10 days, 2 hours and 10 minutes ago, one in RFC 3339 form, one without start_time."""
    create(tpl, name="ten-days")
    set_status(tpl, "ten-days", start_time=ago(10 * 86400))
    create(tpl, name="two-hours")
    set_status(tpl, "two-hours", start_time=ago(2 * 3600))
    create(tpl, name="ten-minutes")
    set_status(tpl, "ten-minutes", start_time=ago(600))
    create(tpl, name="offset")  # D9: 3 hours ago written with a +05:00 offset and a fraction
    moment = datetime.now(timezone(timedelta(hours=5))) - timedelta(hours=3)
    set_status(tpl, "offset", start_time=moment.isoformat(timespec="milliseconds"))
    create(tpl, name="no-start")
    set_status(tpl, "no-start", start_time="")
    return tpl


@pytest.mark.parametrize("params,expected", [
    ({}, ["no-start", "offset", "ten-days", "ten-minutes", "two-hours"]),
    ({"min_age": "1d"}, ["ten-days"]),
    ({"min_age": "1H"}, ["offset", "ten-days", "two-hours"]),
    ({"max_age": "1h"}, ["ten-minutes"]),
    ({"max_age": "150m"}, ["ten-minutes", "two-hours"]),
    ({"min_age": "1h", "max_age": "1d"}, ["offset", "two-hours"]),
    ({"min_age": "0"}, ["offset", "ten-days", "ten-minutes", "two-hours"]),
    ({"max_age": "2w"}, ["offset", "ten-days", "ten-minutes", "two-hours"]),
    ({"max_age": "0m"}, []),
    ({"min_age": "2d", "max_age": "1d"}, []),
])
def test_list_age_filters_compare_start_time(aged: Api, params: Dict[str, str], expected: List[str]) -> None:
    assert names(aged.get("/v2/sessions", params=params)) == expected


def test_list_age_and_status_filters_are_anded(aged: Api) -> None:
    set_status(aged, "ten-days", status="complete")
    set_status(aged, "ten-minutes", status="complete")
    assert names(aged.get("/v2/sessions", params={"status": "complete", "min_age": "1h"})) == ["ten-days"]
    assert names(aged.get("/v2/sessions", params={"status": "pending", "min_age": "1h"})) == ["offset", "two-hours"]


@pytest.mark.parametrize("param", ["min_age", "max_age"])
@pytest.mark.parametrize("value", ["1.5h", "10s", "07d", "1d2h", "", "-1d", "123456789m", "d"])
def test_list_rejects_an_unparseable_age(tpl: Api, param: str, value: str) -> None:
    body = assert_problem(tpl.get("/v2/sessions", params={param: value}), 400, BAD)
    assert body["detail"].startswith("Error parsing age field: "), body


# -- DELETE /v2/sessions (§3.6.3, D10) --

def test_d10_bulk_delete_without_status_deletes_only_complete(lifecycle: Api) -> None:
    resp = lifecycle.delete("/v2/sessions")
    assert resp.status_code == 204 and resp.content == b""
    assert names(lifecycle.get("/v2/sessions")) == ["p", "r"]


@pytest.mark.parametrize("status,left", [("pending", ["c1", "c2", "r"]), ("running", ["c1", "c2", "p"]),
                                         ("complete", ["p", "r"])])
def test_bulk_delete_with_status_deletes_that_status(lifecycle: Api, status: str, left: List[str]) -> None:
    assert lifecycle.delete("/v2/sessions", params={"status": status}).status_code == 204
    assert names(lifecycle.get("/v2/sessions")) == left


def test_bulk_delete_with_min_age_deletes_only_old_complete_sessions(lifecycle: Api) -> None:
    set_status(lifecycle, "c1", start_time=ago(8 * 86400))
    set_status(lifecycle, "p", start_time=ago(8 * 86400))
    assert lifecycle.delete("/v2/sessions", params={"status": "complete", "min_age": "7d"}).status_code == 204
    assert names(lifecycle.get("/v2/sessions")) == ["c2", "p", "r"]
    assert lifecycle.delete("/v2/sessions", params={"min_age": "7d"}).status_code == 204  # default: complete only
    assert names(lifecycle.get("/v2/sessions")) == ["c2", "p", "r"]
    assert lifecycle.delete("/v2/sessions", params={"max_age": "1d"}).status_code == 204
    assert names(lifecycle.get("/v2/sessions")) == ["p", "r"]


def test_bulk_delete_with_nothing_matching_is_a_204(lifecycle: Api) -> None:
    assert lifecycle.delete("/v2/sessions", params={"min_age": "30d"}).status_code == 204
    assert names(lifecycle.get("/v2/sessions")) == ["c1", "c2", "p", "r"]


@pytest.mark.parametrize("value", ["1.5h", "07d", "x"])
def test_bulk_delete_rejects_an_unparseable_age_and_deletes_nothing(lifecycle: Api, value: str) -> None:
    body = assert_problem(lifecycle.delete("/v2/sessions", params={"min_age": value}), 400, BAD)
    assert body["detail"].startswith("Error parsing age field: ")
    assert names(lifecycle.get("/v2/sessions")) == ["c1", "c2", "p", "r"]


def test_bulk_delete_with_an_unknown_tenant_header_deletes_nothing_untenanted(lifecycle: Api) -> None:
    assert lifecycle.delete("/v2/sessions", tenant="other").status_code == 204
    assert names(lifecycle.get("/v2/sessions")) == ["c1", "c2", "p", "r"]


def _saved_status_with_error(api: Api, name: str) -> None:
    """Session `name` complete, with a saved extended status whose error_summary names `old`."""
    put_components(api, [{"id": "x1", "session": name, "error": "old"}])
    create(api, name=name)
    assert api.post(f"/v2/sessions/{name}/status").status_code == 200
    set_status(api, name, status="complete", end_time=ago(0))
    assert "old" in api.get(f"/v2/sessions/{name}/status").json()["error_summary"]
    patch_components(api, [{"id": "x1", "error": ""}])


def _recreated_status(api: Api, name: str) -> Dict[str, Any]:
    create(api, name=name)
    set_status(api, name, status="complete", end_time=ago(0))
    return api.get(f"/v2/sessions/{name}/status").json()


def test_d10_bulk_delete_also_deletes_saved_extended_statuses(tpl: Api) -> None:
    _saved_status_with_error(tpl, "s1")
    assert tpl.delete("/v2/sessions").status_code == 204
    assert _recreated_status(tpl, "s1")["error_summary"] == {}  # live, not the stale saved one


# -- single session (§3.7) --

def test_get_unknown_session_is_a_404(api: Api) -> None:
    assert_problem(api.get("/v2/sessions/nope"), 404, NOT_FOUND, "Session 'nope' does not exist")


def test_get_unknown_session_with_tenant_header_names_the_tenant(tpl: Api) -> None:
    create(tpl, name="s1")  # untenanted: invisible to a tenant's by-name access
    assert_problem(tpl.get("/v2/sessions/s1", tenant="blue"), 404, NOT_FOUND,
                   "Session for tenant 'blue' 's1' does not exist")
    assert_problem(tpl.patch("/v2/sessions/s1", json={"components": "x"}, tenant="blue"), 404, NOT_FOUND,
                   "Session for tenant 'blue' 's1' does not exist")
    assert_problem(tpl.delete("/v2/sessions/s1", tenant="blue"), 404, NOT_FOUND,
                   "Session for tenant 'blue' 's1' does not exist")
    assert_problem(tpl.get("/v2/sessions/s1/status", tenant="blue"), 404, NOT_FOUND,
                   "Session for tenant 'blue' 's1' does not exist")
    assert_problem(tpl.post("/v2/sessions/s1/status", tenant="blue"), 404, NOT_FOUND,
                   "Session for tenant 'blue' 's1' does not exist")
    assert tpl.get("/v2/sessions/s1").status_code == 200


@pytest.mark.parametrize("method,suffix", [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/status"),
                                           ("POST", "/status")])
@pytest.mark.parametrize("name", ["-bad", "bad.", "b%20d", "a" * 128])
def test_bad_session_name_in_path_is_a_400_not_a_404(api: Api, method: str, suffix: str, name: str) -> None:
    resp = api.request(method, f"/v2/sessions/{name}{suffix}", json={} if method == "PATCH" else None)
    assert_problem(resp, 400, BAD)


@pytest.mark.parametrize("method,suffix", [("PATCH", ""), ("DELETE", ""), ("GET", "/status"), ("POST", "/status")])
def test_unknown_session_is_a_404_for_every_method(api: Api, method: str, suffix: str) -> None:
    resp = api.request(method, f"/v2/sessions/nope{suffix}", json={"components": ""} if method == "PATCH" else None)
    assert_problem(resp, 404, NOT_FOUND, "Session 'nope' does not exist")


def test_patch_merges_status_shallowly_and_changes_nothing_else(tpl: Api) -> None:
    original = create(tpl, name="s1", limit="x1", stage=True)
    resp = tpl.patch("/v2/sessions/s1", json={"status": {"status": "running"}})
    assert resp.status_code == 200, resp.text
    expected = {**original, "status": {**original["status"], "status": "running"}}
    assert resp.json() == expected
    resp = tpl.patch("/v2/sessions/s1", json={"status": {"status": "complete", "end_time": "2025-01-13T15:04:05",
                                                         "error": "boom"}})
    expected["status"].update(status="complete", end_time="2025-01-13T15:04:05", error="boom")
    assert resp.json() == expected
    assert tpl.get("/v2/sessions/s1").json() == expected


def test_patch_replaces_components_and_accepts_null_end_time_and_error(tpl: Api) -> None:
    original = create(tpl, name="s1")
    assert tpl.patch("/v2/sessions/s1", json={"components": "x1,x2"}).json()["components"] == "x1,x2"
    body = tpl.patch("/v2/sessions/s1", json={"components": "x3", "status": {"end_time": None, "error": None}}).json()
    assert body == {**original, "components": "x3"}
    assert tpl.patch("/v2/sessions/s1", json={}).json() == body


@pytest.mark.parametrize("patch", [
    {"name": "other"}, {"operation": "boot"}, {"template_name": "t2"}, {"limit": "x1"}, {"stage": True},
    {"include_disabled": True}, {"tenant": "blue"}, {"bogus": 1},
    {"status": {"bogus": 1}}, {"status": {"status": "done"}}, {"status": {"start_time": None}},
    {"status": {"status": None}}, {"status": None}, {"components": None}, {"components": 5},
])
def test_patch_rejects_unknown_or_invalid_properties_and_changes_nothing(tpl: Api, patch: Dict[str, Any]) -> None:
    original = create(tpl, name="s1")
    assert_problem(tpl.patch("/v2/sessions/s1", json=patch), 400, BAD)
    assert tpl.get("/v2/sessions/s1").json() == original


def test_d2_concurrent_patches_of_different_fields_all_survive(tpl: Api) -> None:
    create(tpl, name="s1")
    bodies = ([{"components": f"x{i}"} for i in range(6)] + [{"status": {"status": "running"}}]
              + [{"status": {"error": f"e{i}"}} for i in range(6)] + [{"status": {"end_time": "2025-01-13T00:00:00"}}])

    def worker(body: Dict[str, Any]) -> None:
        assert Api(tpl.base).patch("/v2/sessions/s1", json=body).status_code == 200

    threads = [threading.Thread(target=worker, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    record = tpl.get("/v2/sessions/s1").json()
    assert record["components"].startswith("x")
    assert (record["status"]["status"], record["status"]["end_time"]) == ("running", "2025-01-13T00:00:00")
    assert record["status"]["error"].startswith("e")


def test_delete_single_session(tpl: Api) -> None:
    create(tpl, name="s1")
    create(tpl, name="s2")
    resp = tpl.delete("/v2/sessions/s1")
    assert resp.status_code == 204 and resp.content == b""
    assert_problem(tpl.get("/v2/sessions/s1"), 404, NOT_FOUND, "Session 's1' does not exist")
    assert_problem(tpl.delete("/v2/sessions/s1"), 404, NOT_FOUND, "Session 's1' does not exist")
    assert names(tpl.get("/v2/sessions")) == ["s2"]


def test_delete_single_session_also_deletes_its_saved_extended_status(tpl: Api) -> None:
    _saved_status_with_error(tpl, "s1")
    assert tpl.delete("/v2/sessions/s1").status_code == 204
    assert _recreated_status(tpl, "s1")["error_summary"] == {}


def test_deleted_session_name_can_be_created_again(tpl: Api) -> None:
    create(tpl, name="s1", limit="a")
    assert tpl.delete("/v2/sessions/s1").status_code == 204
    assert create(tpl, name="s1", limit="b")["limit"] == "b"


def test_session_routes_are_served_under_apis_bos(tpl: Api) -> None:
    gateway = Api(tpl.base, prefix="/apis/bos")
    assert gateway.post("/v2/sessions", json={"name": "g1", "operation": "shutdown",
                                              "template_name": "tpl"}).status_code == 201
    assert names(gateway.get("/v2/sessions")) == ["g1"]
    assert gateway.get("/v2/sessions/g1/status").status_code == 200


# -- extended status (§2.9, §3.8) --

def _status(api: Api, name: str = "s1") -> Dict[str, Any]:
    resp = api.get(f"/v2/sessions/{name}/status")
    assert resp.status_code == 200, resp.text
    return resp.json()


def without_duration(status: Dict[str, Any]) -> Dict[str, Any]:
    """A running session's status with the duration left out: it counts to now, so two reads a
    second apart differ there and nowhere else."""
    return {**status, "timing": {**status["timing"], "duration": None}}


def setup_members(api: Api, records: List[Dict[str, Any]]) -> None:
    """Create components; `status` as given (PUT with enabled=true forces on_hold, so a PATCH restores it)."""
    put_components(api, records)
    patch_components(api, [{"id": r["id"], "status": r.get("status", {"phase": "", "status_override": ""})}
                           for r in records])


def member(cid: str, session: str = "s1", *, enabled: bool = True, phase: str = "", override: str = "",
           error: str = "", staged: str = "") -> Dict[str, Any]:
    return {"id": cid, "session": session, "enabled": enabled, "error": error,
            "status": {"phase": phase, "status_override": override},
            "staged_state": {"session": staged}}


def test_extended_status_counts_phases_outcomes_and_rounds_percentages(tpl: Api) -> None:
    create(tpl, name="s1")
    setup_members(tpl, [
        member("n1", phase="powering_on"),                              # counted powering_on
        member("n2", phase="powering_on", override="on_hold"),          # on hold: no phase
        member("n3", phase="powering_off", enabled=False),              # disabled: no phase
        member("n4", phase="configuring"),                              # counted configuring
        member("n5"),                                                   # stable: successful
        member("n6", phase="configuring", override="failed", enabled=False),  # failed
        member("n7", enabled=False),                                    # stable though disabled
        member("o1", session="other", staged="s1"),                     # staged only (S)
        member("o2", session="other", phase="powering_on"),             # another session: ignored
        member("o3", session="", phase="configuring"),
    ])
    # C = n1..n7 (7), S = o1 (1), M = 8
    status = _status(tpl)
    assert status["status"] == "pending"
    assert status["managed_components_count"] == 8
    assert status["phases"] == {"percent_complete": 37.5, "percent_powering_on": 12.5,
                                "percent_powering_off": 0.0, "percent_configuring": 12.5}
    assert status["percent_successful"] == 25.0
    assert status["percent_failed"] == 12.5
    assert status["percent_staged"] == 12.5
    assert status["error_summary"] == {}
    assert set(status) == {"status", "managed_components_count", "phases", "percent_successful",
                           "percent_failed", "percent_staged", "error_summary", "timing"}


def test_extended_status_percentages_are_rounded_to_two_decimals(tpl: Api) -> None:
    create(tpl, name="s1")
    setup_members(tpl, [member("a1"), member("a2"), member("a3", phase="powering_off"),
                        member("a4", phase="powering_off"), member("a5", phase="powering_on"),
                        member("a6", override="failed"), member("a7", staged="s1", session="")])
    status = _status(tpl)  # M = 6 + 1 = 7
    assert status["managed_components_count"] == 7
    assert status["phases"] == {"percent_complete": 42.86, "percent_powering_on": 14.29,
                                "percent_powering_off": 28.57, "percent_configuring": 0.0}
    assert (status["percent_successful"], status["percent_failed"], status["percent_staged"]) == (28.57, 14.29, 14.29)


def test_extended_status_counts_a_component_in_both_c_and_s_twice(tpl: Api) -> None:
    create(tpl, name="s1")
    setup_members(tpl, [member("a1", staged="s1")])
    status = _status(tpl)
    assert status["managed_components_count"] == 2
    assert (status["percent_successful"], status["percent_staged"]) == (50.0, 50.0)


def test_extended_status_of_a_session_without_components_is_all_zero(tpl: Api) -> None:
    create(tpl, name="s1")
    status = _status(tpl)
    assert status["managed_components_count"] == 0
    assert status["phases"] == {"percent_complete": 0.0, "percent_powering_on": 0.0,
                                "percent_powering_off": 0.0, "percent_configuring": 0.0}
    assert (status["percent_successful"], status["percent_failed"], status["percent_staged"]) == (0.0, 0.0, 0.0)
    assert status["error_summary"] == {}


def test_d20_error_summary_lists_the_ten_smallest_ids_and_marks_truncation(tpl: Api) -> None:
    create(tpl, name="s1")
    many = [f"x{n}" for n in (12, 3, 7, 1, 10, 11, 2, 5, 9, 4, 8, 6)]  # 12 IDs, lexically: x1, x10, x11, x12, x2...
    ten = [f"y{n:02d}" for n in range(10, 0, -1)]
    records = ([member(c, error="power failed") for c in many] + [member(c, error="cfs failed") for c in ten]
               + [member("z1", error="single"), member("z2"), member("w1", session="other", error="power failed")])
    setup_members(tpl, records)
    summary = _status(tpl)["error_summary"]
    assert summary == {
        "power failed": {"count": 12, "list": "x1,x10,x11,x12,x2,x3,x4,x5,x6,x7..."},
        "cfs failed": {"count": 10, "list": ",".join(sorted(ten))},
        "single": {"count": 1, "list": "z1"},
    }


def test_error_summary_counts_disabled_and_on_hold_members_too(tpl: Api) -> None:
    create(tpl, name="s1")
    setup_members(tpl, [member("a", error="e", enabled=False), member("b", error="e", override="on_hold"),
                        member("c", error="e", staged="s1", session="")])  # only staged: not in C
    assert _status(tpl)["error_summary"] == {"e": {"count": 2, "list": "a,b"}}


@pytest.mark.parametrize("start,end,duration", [
    ("2025-01-13T15:04:05", "2025-01-13T15:16:39", "0:12:34"),
    ("2025-01-12T13:01:01", "2025-01-13T15:04:05", "1 day, 2:03:04"),
    ("2025-01-10T00:00:00", "2025-01-13T00:00:05", "3 days, 0:00:05"),
    ("2025-01-13T00:00:00", "2025-01-13T00:00:00", "0:00:00"),
    ("2025-01-13T00:00:01", "2025-01-13T00:00:00", "-1 day, 23:59:59"),
    ("2025-01-13T00:00:00Z", "2025-01-13T02:00:00+01:00", "1:00:00"),      # D9: offsets
    ("2025-01-13T00:00:00.750Z", "2025-01-13T00:00:10.250Z", "0:00:10"),  # whole seconds
])
def test_extended_status_timing_duration_of_an_ended_session(tpl: Api, start: str, end: str, duration: str) -> None:
    create(tpl, name="s1")
    set_status(tpl, "s1", start_time=start, end_time=end, status="complete")
    assert _status(tpl)["timing"] == {"start_time": start, "end_time": end, "duration": duration}


def test_extended_status_timing_of_a_running_session_counts_to_now(tpl: Api) -> None:
    create(tpl, name="s1")
    start = ago(90061)  # 1 day, 1:01:01
    set_status(tpl, "s1", start_time=start, status="running")
    timing = _status(tpl)["timing"]
    assert (timing["start_time"], timing["end_time"]) == (start, None)
    match = re.fullmatch(r"1 day, 1:01:(\d\d)", timing["duration"])
    assert match and 1 <= int(match.group(1)) <= 5, timing


def test_post_status_saves_and_get_returns_live_status_until_complete(tpl: Api) -> None:
    create(tpl, name="s1")
    setup_members(tpl, [member("a1", phase="powering_on"), member("a2")])
    resp = tpl.post("/v2/sessions/s1/status")
    assert resp.status_code == 200, resp.text
    saved = resp.json()
    assert saved["percent_successful"] == 50.0
    assert without_duration(saved) == without_duration(_status(tpl))  # live: its duration counts on
    patch_components(tpl, [{"id": "a1", "status": {"phase": ""}}])
    assert _status(tpl)["percent_successful"] == 100.0  # not complete: live
    set_status(tpl, "s1", status="complete", end_time="2099-01-01T00:00:00")
    assert _status(tpl) == saved  # complete with a saved status: the saved one, verbatim


def test_get_status_of_a_complete_session_without_saved_status_is_live(tpl: Api) -> None:
    create(tpl, name="s1")
    setup_members(tpl, [member("a1", override="failed")])
    set_status(tpl, "s1", status="complete", end_time=ago(0))
    status = _status(tpl)
    assert status["status"] == "complete"
    assert status["percent_failed"] == 100.0


def test_post_status_replaces_the_previously_saved_one(tpl: Api) -> None:
    create(tpl, name="s1")
    setup_members(tpl, [member("a1", phase="configuring")])
    set_status(tpl, "s1", status="complete", end_time=ago(0))
    assert tpl.post("/v2/sessions/s1/status").json()["percent_successful"] == 0.0
    patch_components(tpl, [{"id": "a1", "status": {"phase": ""}}])
    assert _status(tpl)["percent_successful"] == 0.0  # still the saved one
    second = tpl.post("/v2/sessions/s1/status").json()
    assert second["percent_successful"] == 100.0
    assert _status(tpl) == second


# -- boot/reboot validation against the simulator's S3 and IMS (§3.6.1 step 6, §4.2) --

def image_boot_set(path: str) -> Dict[str, Any]:
    return {"path": path, "type": "s3", "node_list": ["x1000c0s0b0n0"]}


@pytest.mark.parametrize("operation", ["boot", "reboot", "shutdown"])
def test_sessions_are_created_when_artifacts_and_image_check_out(sim_api: Api, operation: str) -> None:
    resp = sim_api.put("/v2/sessiontemplates/tpl", json={"boot_sets": {"b1": image_boot_set(manifest_url(IMAGE))}})
    assert resp.status_code == 200, resp.text
    assert create(sim_api, operation=operation)["operation"] == operation


@pytest.mark.parametrize("operation", ["boot", "reboot"])
def test_boot_set_check_failures_name_the_failing_boot_set(sim_api: Api, operation: str) -> None:
    body = {"boot_sets": {"b1": image_boot_set(manifest_url(IMAGE)),
                          "b2": image_boot_set(extra_manifest_url("no-kernel")),
                          "b3": image_boot_set(extra_manifest_url("not-json"))}}
    assert sim_api.put("/v2/sessiontemplates/tpl", json=body).status_code == 200  # artifacts never fatal on PUT
    resp = sim_api.post("/v2/sessions", json={"operation": operation, "template_name": "tpl"})
    detail = assert_problem(resp, 400, BAD)["detail"]
    prefix = ("Session template fails check: Session template: 'tpl' boot set: 'b2': "
              f"Can't find kernel in {extra_manifest_url('no-kernel')}. Error: ")
    assert detail.startswith(prefix), detail
    assert create(sim_api, operation="shutdown")["operation"] == "shutdown"  # shutdown reads no artifacts


def test_boot_with_warnings_only_is_created(sim_api: Api) -> None:
    body = {"boot_sets": {"b1": {**image_boot_set(manifest_url(IMAGE_NO_INITRD)), "rootfs_provider": "cpss3"},
                          "b2": image_boot_set(extra_manifest_url("flat"))}}
    assert sim_api.put("/v2/sessiontemplates/tpl", json=body).status_code == 200
    assert create(sim_api, operation="boot")["status"]["status"] == "pending"


def test_boot_with_a_missing_ims_image_fails_only_with_ims_images_must_exist(sim_api: Api) -> None:
    body = {"boot_sets": {"b1": image_boot_set(extra_manifest_url("missing-image"))}}
    assert sim_api.put("/v2/sessiontemplates/tpl", json=body).status_code == 200
    create(sim_api, operation="reboot")
    assert sim_api.patch("/v2/options", json={"ims_images_must_exist": True}).status_code == 200
    resp = sim_api.post("/v2/sessions", json={"operation": "boot", "template_name": "tpl"})
    assert_problem(resp, 400, BAD, "Session template fails check: Session template: 'tpl' boot set: 'b1': "
                                   f"IMS image id '{MISSING_IMAGE}' does not exist in IMS")
    create(sim_api, operation="shutdown")


# -- GET answers sessions as stored (issue 13: API memory) --

def test_get_and_list_answer_the_stored_json_as_it_is_stored(tpl: Api, redis_client) -> None:
    """A session naming 100,000 components holds a ~1.5 MB string: GET /v2/sessions/{id} and the
    operators' listings answer the stored bytes, never decoded and encoded again (orjson reserves
    12 bytes per character for it, responses.respond_stored). Stored with other spacing here,
    so an answer encoded again (compact) would differ."""
    from bos_server.store import keys
    record = create(tpl, name="stored-as-is")
    spaced = json.dumps({**record, "components": ",".join(f"x{n}c0s0b0n0" for n in range(3000))}, indent=1).encode()
    redis_client.set(keys.session(None, "stored-as-is"), spaced)
    resp = tpl.get("/v2/sessions/stored-as-is")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert resp.content == spaced
    for params in ({}, {"status": "pending"}):
        listed = tpl.get("/v2/sessions", params=params)
        assert listed.status_code == 200 and listed.content == b"[" + spaced + b"]"
    assert tpl.get("/v2/sessions", params={"status": "complete"}).content == b"[]"
    aged = tpl.get("/v2/sessions", params={"max_age": "1d"})  # an age filter decodes the records
    assert aged.status_code == 200 and aged.json() == [json.loads(spaced)]
    assert_problem(tpl.get("/v2/sessions/no-such-session"), 404, NOT_FOUND, "Session 'no-such-session' does not exist")
