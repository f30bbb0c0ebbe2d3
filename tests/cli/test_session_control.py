"""`bos sessions create --dry-run/--max-in-flight/--max-failed`, `stop`, `retry` (api.md §3.10)."""

from __future__ import annotations

from tests.support.client import Api

from .conftest import NODES, Runner, put_components, put_template


def test_dry_run_prints_a_plan_and_json_is_the_apis_answer(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    put_components(api, [{"id": n, "enabled": False} for n in NODES[:2]])  # NODES[2] is no BOS component
    api.post("/v2/sessions", json={"name": "older", "template_name": "compute", "operation": "boot"})
    api.patch("/v2/sessions/older", json={"status": {"status": "running"}})
    api.patch("/v2/components", json=[{"id": NODES[0], "enabled": True, "session": "older"}])
    args = ("sessions", "create", "--template-name", "compute", "--operation", "boot", "--name", "plan",
            "--limit", f"{NODES[0]},{NODES[2]}", "--dry-run")
    table = bos(*args)
    assert table.code == 0, table.err
    assert "Dry run: nothing was changed." in table.out and "compute" in table.out
    assert "bos_update_frequency=" in table.out  # the exact kernel parameters
    assert "not in limit" in table.out and "not a BOS component" in table.out
    assert "Summary: 1 nodes would be acted on, 2 excluded, 1 taken over" in table.out
    assert f"older: 1 nodes ({NODES[0]})" in table.out
    as_json = bos(*args, "--format", "json")
    body = {"template_name": "compute", "operation": "boot", "name": "plan", "limit": f"{NODES[0]},{NODES[2]}"}
    assert as_json.json() == api.post("/v2/sessions", params={"dry_run": "true"}, json=body).json()
    assert api.get("/v2/sessions/plan").status_code == 404  # nothing created


def test_wave_flags_are_sent(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    created = bos("sessions", "create", "--template-name", "compute", "--operation", "boot",
                  "--max-in-flight", "500", "--max-failed", "2%", "--format", "json").json()
    assert (created["max_in_flight"], created["max_failed"]) == (500, "2%")
    counted = bos("sessions", "create", "--template-name", "compute", "--operation", "boot",
                  "--max-failed", "3", "--format", "json").json()
    assert counted["max_failed"] == 3 and "max_in_flight" not in counted


def test_bad_wave_flags_are_refused_before_any_request(bos: Runner, api: Api) -> None:
    for flag, value, says in (("--max-in-flight", "0", "must be at least 1"),
                              ("--max-in-flight", "-3", "must not be negative"),
                              ("--max-in-flight", "2.5", "expected a whole number"),
                              ("--max-failed", "150%", "percentage from 0% to 100%"),
                              ("--max-failed", "-1", "must be at least 0")):
        result = bos("sessions", "create", "--template-name", "compute", "--operation", "boot", flag, value)
        assert result.code == 2 and says in result.err, (flag, value, result.err)
    assert api.get("/v2/sessions").json() == []


def test_stop_and_retry_of_a_missing_session_are_one_line_errors(bos: Runner) -> None:
    for args in (("sessions", "stop", "ghost"), ("sessions", "retry", "ghost")):
        result = bos(*args)
        assert result.code == 1
        assert result.err == "bos: error: The resource was not found: Session 'ghost' does not exist (HTTP 404)\n"


def test_stop_prints_what_was_cleaned_up(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    bos("sessions", "create", "--template-name", "compute", "--operation", "boot", "--name", "s")
    result = bos("sessions", "stop", "s", "--keep-configuration")
    assert result.code == 0, result.err
    assert "Session 's' stopped." in result.out and "CFS desired configuration was kept" in result.out
    assert api.get("/v2/sessions/s").json()["status"]["error"] == "Session stopped by request"
    again = bos("sessions", "stop", "s", "--format", "json")
    assert again.json()["stopped"] is True


def test_retry_of_a_session_without_failures_is_refused(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    bos("sessions", "create", "--template-name", "compute", "--operation", "boot", "--name", "fine")
    result = bos("sessions", "retry", "fine")
    assert result.code == 1
    assert result.err == "bos: error: session 'fine' has no failed nodes: nothing to retry\n"
    assert [s["name"] for s in api.get("/v2/sessions").json()] == ["fine"]
