"""Session-control extensions at the API (api.md §3.10): validation of max_in_flight and
max_failed, stop with cleanup, DELETE of a pending session, dry-run validation.

The shared API server has no CFS: stops here keep the configuration (the CFS part is
tested on the simulator in tests/operators/test_session_control.py).
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
import redis as redis_lib

from bos_server.session_stop import STOPPED
from tests.api.test_sessions import create, patch_components, put_components, put_template
from tests.support.client import Api, assert_problem

BAD = "Bad Request"
NOT_FOUND = "The resource was not found"


def component(xname: str, session: str, **extra: Any) -> Dict[str, Any]:
    return {"id": xname, "session": session, "enabled": True, **extra}


@pytest.mark.parametrize("field, value, says", [
    ("max_in_flight", 0, "must be at least 1"),
    ("max_in_flight", -5, "must be at least 1"),
    ("max_in_flight", 1.5, "must be an integer"),
    ("max_in_flight", "10", "must be an integer"),
    ("max_in_flight", True, "must be an integer"),
    ("max_failed", "150%", "percentage from 0% to 100%"),
    ("max_failed", "-1%", "percentage from 0% to 100%"),
    ("max_failed", "two", "percentage from 0% to 100%"),
    ("max_failed", -1, "must be at least 0"),
    ("max_failed", 2.5, "must be an integer or a percentage"),
])
@pytest.mark.parametrize("dry_run", [False, True])
def test_bad_wave_settings_are_400_and_nothing_is_written(api: Api, redis_client: redis_lib.Redis,
                                                          field: str, value: Any, says: str, dry_run: bool) -> None:
    put_template(api)
    keys_before = redis_client.dbsize()
    params = {"dry_run": "true"} if dry_run else None
    resp = api.post("/v2/sessions", params=params,
                    json={"operation": "shutdown", "template_name": "tpl", field: value})
    assert_problem(resp, 400, BAD)
    assert field in resp.json()["detail"] and says in resp.json()["detail"]
    assert redis_client.dbsize() == keys_before
    assert api.get("/v2/sessions").json() == []


@pytest.mark.parametrize("value", [0, 7, "0%", "2%", "2.5%", "100%"])
def test_good_max_failed_is_stored(api: Api, value: Any) -> None:
    put_template(api)
    record = create(api, name="s", max_failed=value, max_in_flight=50)
    assert record["max_failed"] == value and record["max_in_flight"] == 50
    assert api.get("/v2/sessions/s").json()["max_failed"] == value


def test_extensions_are_invisible_to_reference_clients(api: Api) -> None:
    put_template(api)
    record = create(api, name="plain")
    assert "max_in_flight" not in record and "max_failed" not in record
    status = api.get("/v2/sessions/plain/status").json()
    assert "waiting_for_slot" not in status and "cleanup" not in status


def test_dry_run_parameter_must_be_a_boolean(api: Api) -> None:
    put_template(api)
    resp = api.post("/v2/sessions", params={"dry_run": "maybe"},
                    json={"operation": "shutdown", "template_name": "tpl"})
    assert_problem(resp, 400, BAD)


def test_dry_run_of_an_existing_name_is_409_like_create(api: Api) -> None:
    put_template(api)
    create(api, name="taken")
    resp = api.post("/v2/sessions", params={"dry_run": "true"},
                    json={"operation": "shutdown", "template_name": "tpl", "name": "taken"})
    assert_problem(resp, 409, "The resource to be created already exists")


def test_stop_of_a_missing_session_is_404_and_writes_nothing(api: Api, redis_client: redis_lib.Redis) -> None:
    keys_before = redis_client.dbsize()
    resp = api.post("/v2/sessions/nope/stop", json={})
    assert_problem(resp, 404, NOT_FOUND)
    assert resp.json()["detail"] == "Session 'nope' does not exist"
    assert redis_client.dbsize() == keys_before


def test_stop_body_is_validated(api: Api) -> None:
    put_template(api)
    create(api, name="s")
    resp = api.post("/v2/sessions/s/stop", json={"keep_configuration": "yes"})
    assert_problem(resp, 400, BAD)
    assert api.get("/v2/sessions/s").json()["status"]["status"] == "pending"


def seed_running(api: Api, name: str) -> List[str]:
    """A session with members in several states, as operators would have left them."""
    put_template(api)
    create(api, name=name)
    api.patch(f"/v2/sessions/{name}", json={"status": {"status": "running"}})
    put_components(api, [
        component("x1000c0s0b0n0", name, status={"phase": "powering_on"},
                  last_action={"action": "powering_on", "failed": False}),  # power_on_called
        component("x1000c0s0b0n1", name, status={"phase": "configuring"}),
        component("x1000c0s0b0n2", name, enabled=False),  # already finished
        component("x1000c0s0b0n3", "other"),  # another session's
        {"id": "x1000c0s0b0n4", "enabled": False,
         "staged_state": {"session": name, "configuration": "c",
                          "boot_artifacts": {"kernel": "k", "kernel_parameters": "p", "initrd": "i"}}},
    ])
    patch_components(api, [  # an enabling write puts a node on hold (api.md §2.4): the operators' next steps
        {"id": "x1000c0s0b0n0", "status": {"phase": "powering_on", "status_override": ""},
         "last_action": {"action": "powering_on", "failed": False}},
        {"id": "x1000c0s0b0n1", "status": {"phase": "configuring", "status_override": ""}}])
    return ["x1000c0s0b0n0", "x1000c0s0b0n1"]


def test_stop_disables_clears_staged_reports_and_is_idempotent(api: Api) -> None:
    enabled = seed_running(api, "s")
    resp = api.post("/v2/sessions/s/stop", json={"keep_configuration": True})
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["stopped"] is True
    assert result["session"]["status"]["status"] == "complete"
    assert result["session"]["status"]["error"] == STOPPED and result["session"]["status"]["end_time"]
    cleanup = result["cleanup"]
    assert cleanup["disabled"] == enabled
    assert cleanup["mid_power_transition"] == {"x1000c0s0b0n0": "power_on_called"}
    assert cleanup["staged_cleared"] == ["x1000c0s0b0n4"] and cleanup["configuration_cleared"] == []
    comps = {c["id"]: c for c in api.get("/v2/components").json()}
    assert not [i for i, c in comps.items() if c.get("session") == "s" and c.get("enabled")]
    assert comps["x1000c0s0b0n3"]["enabled"] is True  # not this session's
    assert comps["x1000c0s0b0n4"]["staged_state"]["session"] == ""
    status = api.get("/v2/sessions/s/status").json()
    assert status["status"] == "complete" and status["cleanup"] == cleanup
    again = api.post("/v2/sessions/s/stop", json={"keep_configuration": True}).json()
    assert again["stopped"] is True and again["cleanup"]["disabled"] == enabled
    assert again["cleanup"]["stopped_at"] == cleanup["stopped_at"]


def test_stop_of_a_session_that_completed_on_its_own_changes_nothing(api: Api) -> None:
    put_template(api)
    create(api, name="done")
    api.patch("/v2/sessions/done", json={"status": {"status": "complete", "end_time": "2025-01-01T00:00:00"}})
    result = api.post("/v2/sessions/done/stop").json()
    assert result["stopped"] is False and result["cleanup"] == {}
    assert result["session"]["status"]["error"] is None


def test_delete_of_a_running_session_stops_it_first(api: Api, redis_client: redis_lib.Redis) -> None:
    seed_running(api, "s")
    # keep_configuration is not offered by DELETE; with no member configured by CFS, nothing is asked of it
    assert api.delete("/v2/sessions/s").status_code == 204
    assert api.get("/v2/sessions/s").status_code == 404
    comps = {c["id"]: c for c in api.get("/v2/components").json()}
    assert not [i for i, c in comps.items() if c.get("session") == "s" and c.get("enabled")]
    assert comps["x1000c0s0b0n4"]["staged_state"]["session"] == ""
    assert not redis_client.keys("bos:scleanup:*") and not redis_client.keys("bos:sstatus:*")
