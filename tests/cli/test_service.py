"""`bos applystaged`, `bos options list|update`, `bos version`, `bos healthz` against the real API."""

from __future__ import annotations

from bos_shared.options import DEFAULTS
from tests.support.client import Api

from .conftest import NODES, Runner, put_components, put_template


def _staged_session(api: Api) -> None:
    put_template(api, "compute")
    resp = api.post("/v2/sessions", json={"name": "st", "template_name": "compute", "operation": "shutdown",
                                          "stage": True})
    assert resp.status_code == 201, resp.text


def test_applystaged_reports_succeeded_failed_and_ignored(bos: Runner, api: Api) -> None:
    _staged_session(api)
    put_components(api, [
        {"id": NODES[0], "staged_state": {"session": "st"}},
        {"id": NODES[1], "staged_state": {"session": "st", "boot_artifacts": {"kernel": "s3://k"}}},
        {"id": NODES[2]},
    ])
    result = bos("applystaged", "--xnames", f"{NODES[0]},{NODES[1]}", NODES[2])
    assert result.code == 4  # a node failed to apply
    lines = result.out.splitlines()
    assert lines[0].split() == ["Succeeded", "1", NODES[0]]
    assert lines[1].split() == ["Failed", "1", NODES[1]]
    assert lines[2].split() == ["Ignored", "1", NODES[2]]
    assert api.get(f"/v2/components/{NODES[0]}").json()["enabled"] is True


def test_applystaged_cray_spelling_and_json(bos: Runner, api: Api) -> None:
    _staged_session(api)
    put_components(api, [{"id": NODES[0], "staged_state": {"session": "st"}}])
    result = bos("applystaged", "create", "--xnames", NODES[0], "--format", "json")
    assert result.code == 0, result.err
    assert result.json() == {"succeeded": [NODES[0]], "failed": [], "ignored": []}


def test_options_list_table_and_json(bos: Runner, api: Api) -> None:
    table = bos("options", "list")
    assert table.code == 0
    assert "default_retry_policy           3" in table.out
    assert len(table.out.splitlines()) == len(DEFAULTS)
    assert bos("options", "list", "--format", "json").json() == api.get("/v2/options").json()


def test_options_update_uses_cray_flag_names_and_typed_values(bos: Runner, api: Api) -> None:
    result = bos("options", "update", "--default-retry-policy", "7", "--reject-nids", "True",
                 "--logging-level", "debug", "--cleanup-completed-session-ttl", "2d", "--format", "json")
    assert result.code == 0, result.err
    options = api.get("/v2/options").json()
    assert result.json() == options
    assert (options["default_retry_policy"], options["reject_nids"]) == (7, True)
    assert options["cleanup_completed_session_ttl"] == "2d"
    assert options["logging_level"].upper() == "DEBUG"


def test_options_update_checks_values_with_the_wire_schema(bos: Runner) -> None:
    bad = bos("options", "update", "--component-actual-state-ttl", "30m")
    assert bad.code == 2 and "component_actual_state_ttl" in bad.err
    assert bos("options", "update", "--polling-frequency", "often").code == 2
    empty = bos("options", "update")
    assert empty.code == 2 and "at least one option" in empty.err


def test_version_table_and_json(bos: Runner, api: Api) -> None:
    table = bos("version")
    assert table.out.splitlines()[0].startswith("BOS API  2.50.0")
    assert "bos CLI" in table.out
    assert bos("version", "--format", "json").json() == api.get("/v2/version").json()


def test_healthz_ok(bos: Runner, api: Api) -> None:
    table = bos("healthz")
    assert (table.code, table.out.split()) == (0, ["API", "ok", "Database", "ok"])
    assert bos("healthz", "--format", "yaml").out == "dbStatus: ok\napiStatus: ok\n"
