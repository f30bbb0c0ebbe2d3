"""PCS contract (services.md §3) over real HTTP."""

from __future__ import annotations

import re

from bos_sim.inventory import node_xname
from bos_sim.pcs import SUPPORTED
from bos_sim.stack import Simulator
from tests.sim.helpers import Services, eventually, problem_detail

A, B, C = node_xname(0), node_xname(1), node_xname(2)
UNKNOWN = "x9000c0s0b0n0"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def power(svc: Services, *xnames: str) -> list:
    resp = svc.post("pcs", "/power-status", json={"xname": list(xnames)})
    assert resp.status_code == 200, resp.text
    return resp.json()["status"]


def test_s3_1_entries_follow_request_order_with_exact_shapes(svc: Services) -> None:
    entries = power(svc, B, UNKNOWN, A)
    assert [e["xname"] for e in entries] == [B, UNKNOWN, A]
    known = entries[0]
    assert set(known) == {"xname", "powerState", "managementState", "error", "supportedPowerTransitions", "lastUpdated"}
    assert known["powerState"] == "off" and known["managementState"] == "available" and known["error"] == ""
    assert known["supportedPowerTransitions"] == SUPPORTED
    assert STAMP.match(known["lastUpdated"])
    assert entries[1] == {"xname": UNKNOWN, "powerState": "", "managementState": "",
                          "error": "Component not found in component map.",
                          "supportedPowerTransitions": None, "lastUpdated": ""}


def test_s3_1_invalid_xnames_fail_the_whole_request(svc: Services) -> None:
    assert svc.post("pcs", "/power-status", json={"xname": [A]}).status_code == 200  # A remembered as valid
    resp = svc.post("pcs", "/power-status", json={"xname": [A, "foo", "x1c0s0b0n0n0", "bar"]})
    assert problem_detail(resp, 400) == "invalid xnames detected: foo x1c0s0b0n0n0 bar"
    resp = svc.post("pcs", "/power-status", json={"xname": [A, "foo"]})  # asked again: still invalid
    assert problem_detail(resp, 400) == "invalid xnames detected: foo"


def test_s3_1_get_form_and_v1_prefix(svc: Services) -> None:
    resp = svc.get("pcs", "/v1/power-status", params=[("xname", A), ("xname", B)])
    assert [e["xname"] for e in resp.json()["status"]] == [A, B]


def test_s3_1_node_faults_show_as_error_or_missing(sim: Simulator, svc: Services) -> None:
    sim.set_node_faults([B], pcs_error="permission denied - system credentials failed")
    sim.set_node_faults([C], missing_pcs=True)
    try:
        b, c = power(svc, B, C)
        assert b["error"] == "permission denied - system credentials failed" and b["powerState"] == ""
        assert c["error"] == "Component not found in component map."
    finally:
        sim.control("DELETE", f"/nodes/{B}/faults")
        sim.control("DELETE", f"/nodes/{C}/faults")


def test_s3_2_invalid_operation_is_400(svc: Services) -> None:
    body = {"operation": "Explode", "taskDeadlineMinutes": 1, "location": [{"xname": A}]}
    assert problem_detail(svc.post("pcs", "/transitions", json=body), 400) == "invalid Operation type Explode"
    body["operation"] = ""
    assert problem_detail(svc.post("pcs", "/transitions", json=body), 400) == "invalid Operation type "


def test_s3_2_empty_or_malformed_body_is_400(svc: Services) -> None:
    problem_detail(svc.post("pcs", "/transitions", data=b""), 400)
    problem_detail(svc.post("pcs", "/transitions", data=b"{not json"), 400)
    problem_detail(svc.post("pcs", "/transitions", json={"operation": "On", "location": []}), 400)


def test_s3_2_transition_powers_on_and_can_be_read_back(svc: Services) -> None:
    body = {"operation": "on", "taskDeadlineMinutes": 1, "location": [{"xname": A}, {"xname": UNKNOWN}]}
    resp = svc.post("pcs", "/transitions", json=body)
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["operation"] == "On" and set(answer) == {"transitionID", "operation"}
    assert resp.headers["Location"] == f"../transitions/{answer['transitionID']}"
    eventually(lambda: power(svc, A)[0]["powerState"] == "on", what="power on")

    def done() -> dict:
        record = svc.get("pcs", f"/transitions/{answer['transitionID']}").json()
        return record if record["transitionStatus"] == "completed" else {}

    record = eventually(done, what="transition completed")
    assert record["taskCounts"] == {"total": 2, "new": 0, "in-progress": 0, "failed": 1, "succeeded": 1,
                                    "un-supported": 0}
    tasks = {t["xname"]: t for t in record["tasks"]}
    assert tasks[A]["taskStatus"] == "succeeded"
    assert tasks[UNKNOWN]["taskStatus"] == "failed" and tasks[UNKNOWN]["error"]
    problem_detail(svc.get("pcs", "/transitions/nope"), 404)


def test_s3_4_force_off_and_locked_nodes(sim: Simulator, svc: Services) -> None:
    svc.post("pcs", "/transitions", json={"operation": "On", "location": [{"xname": C}]})
    eventually(lambda: power(svc, C)[0]["powerState"] == "on", what="power on")
    sim.patch_node(C, locked=True)
    try:
        resp = svc.post("pcs", "/transitions", json={"operation": "Force-Off", "location": [{"xname": C}]})
        record = svc.get("pcs", f"/transitions/{resp.json()['transitionID']}").json()
        assert record["tasks"][0]["taskStatus"] == "failed"
    finally:
        sim.patch_node(C, locked=False)
    svc.post("pcs", "/transitions", json={"operation": "Force-Off", "location": [{"xname": C}]})
    eventually(lambda: power(svc, C)[0]["powerState"] == "off", what="force off")
