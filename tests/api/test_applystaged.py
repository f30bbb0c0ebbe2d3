"""`POST /v2/applystaged` (api.md §2.10, §3.5; D18).

Boot and reboot sessions need a template whose artifacts check out, so these tests
run against the simulator-backed stack (`sim_api`, tests/api/conftest.py).
Tenant behaviour (ignored non-owned xnames, `tenant: <t>` in errors) is in test_tenancy.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import pytest

from bos_server.store import keys
from tests.api.conftest import IMAGE, manifest_url
from tests.support.client import Api, assert_problem

ARTIFACTS = {"kernel": "s3://boot-images/img/kernel", "kernel_parameters": "console=ttyS0 quiet",
             "initrd": "s3://boot-images/img/initrd"}
EMPTY = {"kernel": "", "kernel_parameters": "", "initrd": ""}
ZERO = {"power_on_attempts": 0, "power_off_graceful_attempts": 0, "power_off_forceful_attempts": 0}
OLD = "2025-01-01T00:00:00"


def apply(api: Api, xnames: List[str], tenant: Optional[str] = None) -> Dict[str, List[str]]:
    resp = api.post("/v2/applystaged", json={"xnames": xnames}, tenant=tenant)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.json()


def get(api: Api, cid: str) -> Dict[str, Any]:
    resp = api.get(f"/v2/components/{cid}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def put_components(api: Api, records: List[Dict[str, Any]]) -> None:
    resp = api.put("/v2/components", json=records)
    assert resp.status_code == 200, resp.text


def staged_component(cid: str, session: str, artifacts: Optional[Dict[str, str]] = None,
                     configuration: str = "compute-23.4.0", **fields: Any) -> Dict[str, Any]:
    """A component that has been staged by `session`, with a history to overwrite."""
    staged: Dict[str, Any] = {"session": session, "configuration": configuration}
    if artifacts is not None:
        staged["boot_artifacts"] = artifacts
    record = {
        "id": cid, "enabled": False, "error": "", "session": "older",
        "desired_state": {"boot_artifacts": {"kernel": "old-k", "kernel_parameters": "old-p", "initrd": "old-i"},
                          "configuration": "old-config", "bss_token": "old-token"},
        "actual_state": {"boot_artifacts": {"kernel": "act-k", "kernel_parameters": "act-p", "initrd": "act-i"},
                         "bss_token": "act-token"},
        "staged_state": staged,
        "last_action": {"action": "powering_on", "failed": True},
        "event_stats": {"power_on_attempts": 2, "power_off_graceful_attempts": 1, "power_off_forceful_attempts": 3},
        "status": {"phase": "", "status_override": ""},
    }
    record.update(fields)
    return record


def recent(timestamp: str) -> bool:
    moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return abs((datetime.now(timezone.utc) - moment).total_seconds()) < 10


@pytest.fixture
def staged(sim_api: Api) -> Api:
    """Sessions sboot (boot), sreboot (reboot) and sdown (shutdown) of template tpl."""
    body = {"boot_sets": {"b1": {"path": manifest_url(IMAGE), "type": "s3", "node_list": ["x1000c0s0b0n0"]}}}
    assert sim_api.put("/v2/sessiontemplates/tpl", json=body).status_code == 200
    for name, operation in [("sboot", "boot"), ("sreboot", "reboot"), ("sdown", "shutdown")]:
        resp = sim_api.post("/v2/sessions", json={"name": name, "operation": operation, "template_name": "tpl",
                                                  "stage": True})
        assert resp.status_code == 201, resp.text
    return sim_api


# -- success --

def test_boot_replaces_desired_state_and_enables_the_component(staged: Api) -> None:
    put_components(staged, [staged_component("x1", "sboot", ARTIFACTS, error="left alone")])
    before = get(staged, "x1")
    assert apply(staged, ["x1"]) == {"succeeded": ["x1"], "failed": [], "ignored": []}
    after = get(staged, "x1")
    desired = after["desired_state"]
    assert recent(desired.pop("last_updated"))
    assert desired == {"boot_artifacts": ARTIFACTS, "configuration": "compute-23.4.0"}  # replaced: no bss_token
    assert after["enabled"] is True
    assert after["session"] == "sboot"
    assert after["status"] == {"phase": "", "status_override": "on_hold", "status": "on_hold"}  # §2.4 step 3
    assert after["event_stats"] == ZERO  # §2.4 step 5
    assert after["last_action"]["action"] == "apply_staged"
    assert after["last_action"]["failed"] is True  # left as is
    assert recent(after["last_action"]["last_updated"])
    assert after["error"] == "left alone"
    # boot keeps the actual state (only its timestamp is refreshed, §2.4 step 2)
    assert {k: v for k, v in after["actual_state"].items() if k != "last_updated"} == \
        {k: v for k, v in before["actual_state"].items() if k != "last_updated"}
    assert {k: v for k, v in after["staged_state"].items() if k != "last_updated"} == \
        {"session": "sboot", "configuration": "compute-23.4.0", "boot_artifacts": ARTIFACTS}  # clear_stage off


def test_reboot_also_clears_the_actual_state(staged: Api) -> None:
    put_components(staged, [staged_component("x1", "sreboot", ARTIFACTS)])
    assert apply(staged, ["x1"]) == {"succeeded": ["x1"], "failed": [], "ignored": []}
    after = get(staged, "x1")
    actual = after["actual_state"]
    assert recent(actual.pop("last_updated"))
    assert actual == {"boot_artifacts": EMPTY, "bss_token": ""}
    assert {k: v for k, v in after["desired_state"].items() if k != "last_updated"} == \
        {"boot_artifacts": ARTIFACTS, "configuration": "compute-23.4.0"}
    assert (after["enabled"], after["session"], after["status"]["status_override"]) == (True, "sreboot", "on_hold")


@pytest.mark.parametrize("artifacts", [None, {}, EMPTY, {"kernel": ""}])
def test_shutdown_without_artifacts_desires_empty_boot_artifacts(staged: Api, artifacts: Optional[Dict[str, str]]) -> None:
    put_components(staged, [staged_component("x1", "sdown", artifacts, configuration="")])
    assert apply(staged, ["x1"]) == {"succeeded": ["x1"], "failed": [], "ignored": []}
    after = get(staged, "x1")
    assert after["desired_state"]["boot_artifacts"] in (EMPTY, artifacts)
    assert not any(after["desired_state"]["boot_artifacts"].values())
    assert after["desired_state"]["configuration"] == ""
    assert "bss_token" not in after["desired_state"]
    assert (after["enabled"], after["session"]) == (True, "sdown")


def test_missing_staged_configuration_becomes_empty(staged: Api) -> None:
    record = staged_component("x1", "sboot", ARTIFACTS)
    del record["staged_state"]["configuration"]
    put_components(staged, [record])
    assert apply(staged, ["x1"])["succeeded"] == ["x1"]
    assert get(staged, "x1")["desired_state"]["configuration"] == ""


def test_d18_last_action_is_created_when_absent(staged: Api) -> None:
    record = staged_component("x1", "sboot", ARTIFACTS)
    del record["last_action"]
    record2 = staged_component("x2", "sdown", ARTIFACTS)  # fails: the action is recorded too
    del record2["last_action"]
    put_components(staged, [record, record2])
    assert apply(staged, ["x1", "x2"]) == {"succeeded": ["x1"], "failed": ["x2"], "ignored": []}
    for cid in ("x1", "x2"):
        last_action = get(staged, cid)["last_action"]
        assert recent(last_action.pop("last_updated"))
        assert last_action == {"action": "apply_staged"}


def test_clear_stage_empties_the_staged_state_on_success_and_failure(staged: Api) -> None:
    assert staged.patch("/v2/options", json={"clear_stage": True}).status_code == 200
    put_components(staged, [staged_component("x1", "sboot", ARTIFACTS), staged_component("x2", "sdown", ARTIFACTS)])
    assert apply(staged, ["x1", "x2"]) == {"succeeded": ["x1"], "failed": ["x2"], "ignored": []}
    for cid in ("x1", "x2"):
        stage = get(staged, cid)["staged_state"]
        assert recent(stage.pop("last_updated"))
        assert stage == {"configuration": "", "boot_artifacts": EMPTY}
    assert staged.get("/v2/components", params={"staged_session": "sboot"}).json() == []
    assert get(staged, "x1")["desired_state"]["boot_artifacts"] == ARTIFACTS  # taken before clearing
    assert apply(staged, ["x1", "x2"]) == {"succeeded": [], "failed": [], "ignored": ["x1", "x2"]}


def test_without_clear_stage_the_component_can_be_applied_again(staged: Api) -> None:
    put_components(staged, [staged_component("x1", "sboot", ARTIFACTS)])
    assert apply(staged, ["x1"])["succeeded"] == ["x1"]
    assert apply(staged, ["x1"])["succeeded"] == ["x1"]
    assert [c["id"] for c in staged.get("/v2/components", params={"staged_session": "sboot"}).json()] == ["x1"]


# -- errors (§3.5 step 3, 5, 6) --

def _assert_failed(api: Api, cid: str, session: str, error: str, before: Dict[str, Any]) -> None:
    after = get(api, cid)
    assert after["error"] == error
    assert after["enabled"] is False
    assert after["session"] == session
    assert after["last_action"]["action"] == "apply_staged"
    assert after["status"] == before["status"]  # disabled: §2.4 step 3 does not put it on hold
    strip = lambda state: {k: v for k, v in state.items() if k != "last_updated"}  # noqa: E731
    assert strip(after["desired_state"]) == strip(before["desired_state"])  # unchanged
    assert strip(after["actual_state"]) == strip(before["actual_state"])


def test_shutdown_with_boot_artifacts_fails(staged: Api) -> None:
    put_components(staged, [staged_component("x1", "sdown", {"kernel": "", "kernel_parameters": "quiet",
                                                             "initrd": ""}, enabled=True)])
    before = get(staged, "x1")
    assert apply(staged, ["x1"]) == {"succeeded": [], "failed": ["x1"], "ignored": []}
    _assert_failed(staged, "x1", "sdown", "Staged operation is shutdown but boot artifacts have been specified "
                                          "(session: sdown, tenant: )", before)


@pytest.mark.parametrize("operation,session", [("boot", "sboot"), ("reboot", "sreboot")])
@pytest.mark.parametrize("artifacts", [
    None, {}, EMPTY,
    {"kernel": "k", "kernel_parameters": "p"},
    {"kernel": "k", "kernel_parameters": "p", "initrd": ""},
    {"kernel": "", "kernel_parameters": "p", "initrd": "i"},
    {"kernel": "k", "kernel_parameters": "", "initrd": "i"},
])
def test_d18_boot_and_reboot_need_all_three_artifacts(staged: Api, operation: str, session: str,
                                                       artifacts: Optional[Dict[str, str]]) -> None:
    put_components(staged, [staged_component("x1", session, artifacts)])
    before = get(staged, "x1")
    assert apply(staged, ["x1"]) == {"succeeded": [], "failed": ["x1"], "ignored": []}
    _assert_failed(staged, "x1", session, f"Staged operation is {operation} but some boot artifacts have not been "
                                          f"specified (session: {session}, tenant: )", before)


def test_a_deleted_staged_session_fails(staged: Api) -> None:
    put_components(staged, [staged_component("x1", "gone", ARTIFACTS, enabled=True)])
    before = get(staged, "x1")
    assert apply(staged, ["x1"]) == {"succeeded": [], "failed": ["x1"], "ignored": []}
    _assert_failed(staged, "x1", "gone", "Staged session no longer exists (session: gone, tenant: )", before)


def test_an_invalid_stored_operation_fails(staged: Api, sim_stack) -> None:
    session = {"name": "weird", "tenant": None, "operation": "poweroff", "template_name": "tpl", "limit": "",
               "stage": True, "components": "", "include_disabled": False,
               "status": {"start_time": OLD, "end_time": None, "status": "running", "error": None}}
    sim_stack.redis_client.set(keys.session(None, "weird"), json.dumps(session))  # not creatable via the API
    put_components(staged, [staged_component("x1", "weird", ARTIFACTS)])
    before = get(staged, "x1")
    assert apply(staged, ["x1"]) == {"succeeded": [], "failed": ["x1"], "ignored": []}
    _assert_failed(staged, "x1", "weird", "Invalid operation (poweroff) in staged session (session: weird, tenant: )",
                   before)


def test_failure_still_applies_the_automatic_fields(staged: Api) -> None:
    put_components(staged, [staged_component("x1", "sdown", ARTIFACTS)])
    apply(staged, ["x1"])
    after = get(staged, "x1")
    # §3.5 step 7: §2.4 runs on the full record; its desired state holds boot artifacts
    assert after["event_stats"] == ZERO
    assert recent(after["desired_state"]["last_updated"])


# -- ignored, ordering, body --

def test_ignored_components_are_left_unchanged(staged: Api) -> None:
    no_stage = staged_component("x2", "sboot", ARTIFACTS)
    del no_stage["staged_state"]
    put_components(staged, [staged_component("x1", "", ARTIFACTS), no_stage,
                            staged_component("x3", "sboot", ARTIFACTS, staged_state={})])
    before = staged.get("/v2/components").json()
    assert apply(staged, ["x1", "x2", "x3", "absent"]) == {"succeeded": [], "failed": [],
                                                          "ignored": ["x1", "x2", "x3", "absent"]}
    assert staged.get("/v2/components").json() == before
    assert_problem(staged.get("/v2/components/absent"), 404, "The resource was not found")


def test_d18_each_list_keeps_request_order_without_duplicates(staged: Api) -> None:
    put_components(staged, [staged_component(c, "sboot", ARTIFACTS) for c in ("a3", "a1", "a2")]
                   + [staged_component(c, "sdown", ARTIFACTS) for c in ("f2", "f1")]
                   + [staged_component("i1", "", ARTIFACTS)])
    xnames = ["f2", "a3", "i2", "a1", "a3", "f1", "i1", "a2", "f2", "i2", "a1"]
    assert apply(staged, xnames) == {"succeeded": ["a3", "a1", "a2"], "failed": ["f2", "f1"], "ignored": ["i2", "i1"]}


def test_many_components_in_one_request(staged: Api) -> None:
    ids = [f"x{n:04d}" for n in range(300)]
    put_components(staged, [staged_component(c, "sboot" if n % 3 else "sdown", ARTIFACTS) for n, c in enumerate(ids)])
    result = apply(staged, list(reversed(ids)))
    assert result["failed"] == [c for c in reversed(ids) if int(c[1:]) % 3 == 0]
    assert result["succeeded"] == [c for c in reversed(ids) if int(c[1:]) % 3]
    assert result["ignored"] == []


@pytest.mark.parametrize("body", [{}, {"xnames": []}])
def test_an_empty_request_applies_nothing(staged: Api, body: Dict[str, Any]) -> None:
    resp = staged.post("/v2/applystaged", json=body)
    assert resp.status_code == 200
    assert resp.json() == {"succeeded": [], "failed": [], "ignored": []}


@pytest.mark.parametrize("body", [
    {"xnames": "x1"}, {"xnames": [""]}, {"xnames": [1]}, {"xnames": None}, {"xnames": ["x" * 128]},
    {"xnames": ["x1"], "bogus": True}, {"xnames": [f"x{i}" for i in range(32769)]}, [], "x1",
])
def test_invalid_bodies_are_rejected(staged: Api, body: Any) -> None:
    put_components(staged, [staged_component("x1", "sboot", ARTIFACTS)])
    before = get(staged, "x1")
    assert_problem(staged.post("/v2/applystaged", json=body), 400, "Bad Request")
    assert get(staged, "x1") == before


def test_applystaged_is_served_under_apis_bos(staged: Api) -> None:
    put_components(staged, [staged_component("x1", "sboot", ARTIFACTS)])
    resp = Api(staged.base, "/apis/bos").post("/v2/applystaged", json={"xnames": ["x1"]})
    assert resp.json() == {"succeeded": ["x1"], "failed": [], "ignored": []}
