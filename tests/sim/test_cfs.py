"""CFS v3 contract (services.md §5): paging with `next`, filter PATCH, configuration status."""

from __future__ import annotations

import time
from typing import Any, Dict, List

from bos_sim.inventory import node_xname
from tests.sim.helpers import Services, eventually, problem_detail

A, B = node_xname(0), node_xname(1)


def page_through(svc: Services, params: Dict[str, Any]) -> List[List[dict]]:
    """Follow `next` exactly as BOS does: its entries as query parameters, nulls omitted."""
    pages = []
    while True:
        resp = svc.get("cfs", "/components", params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages.append(body["components"])
        if body["next"] is None:
            return pages
        params = {k: v for k, v in body["next"].items() if v is not None}


def test_s5_1_paging_follows_next_with_empty_strings_and_false(svc: Services) -> None:
    first = svc.get("cfs", "/components", params={"limit": 7}).json()
    assert first["next"] == {"ids": "", "status": "", "enabled": None, "config_name": "", "state_details": False,
                             "config_details": False, "tags": "", "limit": 7, "after_id": first["components"][-1]["id"]}
    pages = page_through(svc, {"limit": 7})
    assert [len(p) for p in pages] == [7, 7, 6]
    ids = [c["id"] for page in pages for c in page]
    assert ids == sorted(ids) and len(set(ids)) == 20


def test_s5_1_default_page_has_everything_and_next_null(svc: Services) -> None:
    body = svc.get("cfs", "/components").json()
    assert len(body["components"]) == 20 and body["next"] is None
    comp = body["components"][0]
    assert set(comp) == {"id", "desired_config", "enabled", "error_count", "configuration_status", "tags"}


def test_s5_1_filters_and_unknown_ids(svc: Services) -> None:
    body = svc.get("cfs", "/components", params={"ids": f"{A},x9999c0s0b0n0", "status": "unconfigured,pending"}).json()
    assert [c["id"] for c in body["components"]] == [A]
    assert svc.get("cfs", "/components", params={"enabled": "True"}).json()["components"] == []
    with_state = svc.get("cfs", "/components", params={"ids": A, "state_details": "true"}).json()["components"][0]
    assert with_state["state"] == []


def test_s5_1_bad_parameters_are_400(svc: Services) -> None:
    problem_detail(svc.get("cfs", "/components", params={"status": "broken"}), 400)
    problem_detail(svc.get("cfs", "/components", params={"limit": "0"}), 400)
    problem_detail(svc.get("cfs", "/components", params={"enabled": "maybe"}), 400)


def patch(svc: Services, patch_body: dict, ids: str) -> Any:
    return svc.patch("cfs", "/components", json={"patch": patch_body, "filters": {"ids": ids}})


def test_s5_2_filter_patch_reports_patched_ids_and_skips_unknown(svc: Services) -> None:
    resp = patch(svc, {"tags": {"bos_session": "s1", "keep": "k"}}, f"{A},{B},x9999c0s0b0n0")
    assert resp.status_code == 200
    assert sorted(resp.json()["component_ids"]) == sorted([A, B])
    patch(svc, {"tags": {"bos_session": ""}}, A)
    comp = svc.get("cfs", "/components", params={"ids": A}).json()["components"][0]
    assert comp["tags"] == {"keep": "k"}


def test_s5_2_desired_config_and_state_reset_error_count(svc: Services) -> None:
    patch(svc, {"error_count": 2}, B)
    assert svc.get("cfs", f"/components/{B}").json()["error_count"] == 2
    patch(svc, {"desired_config": "compute-23.4.0", "enabled": False, "state": []}, B)
    comp = svc.get("cfs", f"/components/{B}").json()
    assert comp["error_count"] == 0 and comp["desired_config"] == "compute-23.4.0"
    assert comp["configuration_status"] == "pending" and comp["enabled"] is False


def test_s5_2_long_desired_config_is_400(svc: Services) -> None:
    problem_detail(patch(svc, {"desired_config": "c" * 61}, A), 400)
    assert patch(svc, {"desired_config": "c" * 60}, A).status_code == 200
    patch(svc, {"desired_config": ""}, A)


def test_s5_2_list_form_is_404_for_unknown_ids(svc: Services) -> None:
    resp = svc.patch("cfs", "/components", json=[{"id": A, "enabled": False}, {"id": "x9999c0s0b0n0"}])
    problem_detail(resp, 404)


def status_of(svc: Services, comp_id: str) -> str:
    return svc.get("cfs", f"/components/{comp_id}").json()["configuration_status"]


def test_s5_3_enabled_pending_component_gets_configured(svc: Services) -> None:
    # A component that is not a simulated node is always reachable.
    assert svc.put("cfs", "/components/ncn-w001", json={}).json()["configuration_status"] == "unconfigured"
    patch(svc, {"enabled": True, "desired_config": "compute-23.4.0"}, "ncn-w001")
    eventually(lambda: status_of(svc, "ncn-w001") == "configured", what="configured")
    state = svc.get("cfs", "/components/ncn-w001", params={"state_details": "true"}).json()["state"]
    assert state and all(layer["status"] == "applied" for layer in state)
    patch(svc, {"desired_config": ""}, "ncn-w001")
    assert status_of(svc, "ncn-w001") == "configured"   # layers were applied once


def test_s5_3_failing_configuration_fails_after_the_retry_limit(svc: Services) -> None:
    svc.put("cfs", "/components/ncn-w002", json={"retry_policy": 2})
    patch(svc, {"enabled": True, "desired_config": "fail-config"}, "ncn-w002")
    eventually(lambda: status_of(svc, "ncn-w002") == "failed", what="failed")
    assert svc.get("cfs", "/components/ncn-w002").json()["error_count"] == 2


def test_s5_3_disabled_component_is_not_configured(svc: Services) -> None:
    svc.put("cfs", "/components/ncn-w003", json={"desired_config": "compute-23.4.0", "enabled": False})
    time.sleep(0.3)  # five configuration delays at the test speed
    assert status_of(svc, "ncn-w003") == "pending"
