"""`bos sessions create|list|describe|delete|status` against the real API."""

from __future__ import annotations

from tests.support.client import Api

from .conftest import NODES, Runner, put_components, put_template


def test_create_a_shutdown_session_with_cray_style_flags(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    result = bos("sessions", "create", "--template-name", "compute", "--operation", "Shutdown",
                 "--name", "s1", "--limit", NODES[0])
    assert result.code == 0, result.err
    assert "Session 's1' created." in result.out
    assert "bos sessions watch s1" in result.out
    stored = api.get("/v2/sessions/s1").json()
    assert (stored["operation"], stored["limit"], stored["stage"]) == ("shutdown", NODES[0], False)


def test_create_json_is_exactly_the_created_record(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    result = bos("sessions", "create", "--template-name", "compute", "--operation", "boot", "--format", "json")
    assert result.code == 0, result.err
    created = result.json()
    assert created == api.get(f"/v2/sessions/{created['name']}").json()
    assert created["status"]["status"] == "pending"


def test_stage_and_include_disabled_work_bare_or_with_a_value(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    bare = bos("sessions", "create", "--template-name", "compute", "--operation", "reboot",
               "--stage", "--include-disabled", "--name", "bare", "--format", "json").json()
    valued = bos("sessions", "create", "--template-name", "compute", "--operation", "reboot",
                 "--stage", "false", "--include-disabled", "True", "--name", "valued", "--format", "json").json()
    assert (bare["stage"], bare["include_disabled"]) == (True, True)
    assert (valued["stage"], valued["include_disabled"]) == (False, True)


def test_unknown_operation_is_refused_before_any_request(bos: Runner) -> None:
    result = bos("sessions", "create", "--template-name", "t", "--operation", "configure")
    assert result.code == 2
    assert "must be one of boot, reboot, shutdown" in result.err


def test_missing_template_shows_the_apis_one_line_error(bos: Runner) -> None:
    result = bos("sessions", "create", "--template-name", "nope", "--operation", "shutdown")
    assert result.code == 1
    assert result.err == "bos: error: Bad Request: Session Template Name invalid: nope (HTTP 400)\n"


def test_duplicate_name_is_a_conflict(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    args = ("sessions", "create", "--template-name", "compute", "--operation", "shutdown", "--name", "dup")
    assert bos(*args).code == 0
    again = bos(*args)
    assert again.code == 1
    assert again.err.strip() == ("bos: error: The resource to be created already exists: "
                                 "Session 'dup' already exists (HTTP 409)")


def _sessions(api: Api, *names: str) -> None:
    put_template(api, "compute")
    for name in names:
        resp = api.post("/v2/sessions", json={"name": name, "template_name": "compute", "operation": "shutdown"})
        assert resp.status_code == 201, resp.text


def test_list_table_and_status_filter(bos: Runner, api: Api) -> None:
    _sessions(api, "a", "b")
    api.patch("/v2/sessions/b", json={"status": {"status": "running"}, "components": ",".join(NODES)})
    table = bos("sessions", "list")
    assert table.code == 0
    header, *rows = table.out.splitlines()
    assert header.split()[:4] == ["NAME", "OPERATION", "TEMPLATE", "STATUS"]
    assert [r.split()[:4] for r in rows] == [["a", "shutdown", "compute", "pending"],
                                             ["b", "shutdown", "compute", "running"]]
    assert rows[1].split()[6] == "3"  # NODES column counts `components`
    running = bos("sessions", "list", "--status", "running", "--format", "json")
    assert running.json() == api.get("/v2/sessions", params={"status": "running"}).json()
    assert [s["name"] for s in running.json()] == ["b"]


def test_list_age_filters_are_passed_and_checked(bos: Runner, api: Api) -> None:
    _sessions(api, "young")
    assert [s["name"] for s in bos("sessions", "list", "--max-age", "1h", "--format", "json").json()] == ["young"]
    assert bos("sessions", "list", "--min-age", "1h", "--format", "json").json() == []
    bad = bos("sessions", "list", "--min-age", "1.5h")
    assert bad.code == 2 and "not a valid age" in bad.err


def test_list_empty(bos: Runner) -> None:
    assert bos("sessions", "list").out.strip() == "No sessions."


def test_describe_table_and_json(bos: Runner, api: Api) -> None:
    _sessions(api, "s1")
    table = bos("sessions", "describe", "s1")
    assert "status.status" in table.out and "pending" in table.out
    assert bos("sessions", "describe", "s1", "--format", "json").json() == api.get("/v2/sessions/s1").json()


def test_delete_one_and_delete_by_filter(bos: Runner, api: Api) -> None:
    _sessions(api, "keep", "gone", "done")
    assert bos("sessions", "delete", "gone").out.strip() == "Session 'gone' deleted."
    api.patch("/v2/sessions/done", json={"status": {"status": "complete", "end_time": "2025-01-01T00:00:00"}})
    bulk = bos("sessions", "delete", "--status", "complete")
    assert bulk.code == 0, bulk.err
    assert [s["name"] for s in api.get("/v2/sessions").json()] == ["keep"]


def test_delete_needs_a_name_or_filters_but_not_both(bos: Runner) -> None:
    assert bos("sessions", "delete").code == 2
    both = bos("sessions", "delete", "x", "--status", "complete")
    assert both.code == 2 and "not both" in both.err


def test_delete_missing_session_is_not_found(bos: Runner) -> None:
    result = bos("sessions", "delete", "ghost")
    assert result.code == 1
    assert "Session 'ghost' does not exist (HTTP 404)" in result.err


def test_status_summarises_the_extended_status(bos: Runner, api: Api) -> None:
    _sessions(api, "s1")
    api.patch("/v2/sessions/s1", json={"status": {"status": "running"}, "components": ",".join(NODES)})
    put_components(api, [
        {"id": NODES[0], "session": "s1", "enabled": False, "status": {"phase": ""}},
        {"id": NODES[1], "session": "s1", "enabled": False, "error": "power off failed",
         "status": {"phase": "", "status_override": "failed"}},
        {"id": NODES[2], "session": "s1", "enabled": True, "status": {"phase": "powering_off"}},
    ])
    api.patch(f"/v2/components/{NODES[2]}", json={"status": {"status_override": ""}})
    shown = bos("sessions", "status", "s1", "--format", "json").json()
    served = api.get("/v2/sessions/s1/status").json()
    for status in (shown, served):  # a running session's duration grows between the two reads
        status["timing"].pop("duration")
    assert shown == served
    table = bos("sessions", "status", "s1").out
    assert "Components   3 managed" in table
    assert "Succeeded    1/3 (33.3%)" in table
    assert "Failed       1/3 (33.3%)" in table
    assert "powering_off 1/3 (33.3%)" in table
    assert "power off failed" in table and NODES[1] in table


def test_session_names_are_sent_safely_in_paths(bos: Runner) -> None:
    result = bos("sessions", "describe", "a/b")
    assert result.code == 1  # a NAME pattern violation (400) or no such session, never another resource
    assert "(HTTP 400)" in result.err or "(HTTP 404)" in result.err
