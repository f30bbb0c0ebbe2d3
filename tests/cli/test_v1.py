"""`bos v1 ...` against the real API (no operators: status trees are written through the API)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.client import Api

from .conftest import MANIFEST, NODES, Runner

TEMPLATE = {"name": "cle", "cfs": {"configuration": "c1"},
            "boot_sets": {"compute": {"path": MANIFEST, "type": "s3", "node_list": NODES, "boot_ordinal": 1}}}


def make_template(bos: Runner, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({**TEMPLATE, "partition": "p1"}))
    result = bos("v1", "sessiontemplate", "create", "--file", str(path))
    assert result.code == 0 and "Session template 'cle' created." in result.out, result.err


def test_templates(bos: Runner, api: Api, tmp_path: Path) -> None:
    make_template(bos, tmp_path)
    table = bos("v1", "sessiontemplate", "list")
    assert table.out.splitlines()[0].split()[:3] == ["NAME", "TENANT", "BOOT"] and "compute:1/-" in table.out
    assert bos("v1", "sessiontemplate", "list", "--format", "json").json() == api.get("/v1/sessiontemplate").json()
    assert bos("v1", "sessiontemplate", "describe", "cle", "--format", "json").json() == \
        api.get("/v1/sessiontemplate/cle").json()
    assert bos("v1", "sessiontemplate", "delete", "cle").code == 0
    gone = bos("v1", "sessiontemplate", "delete", "cle")
    assert gone.code == 1 and gone.err.count("\n") == 1 and "Session template cle could not be found" in gone.err
    assert bos("v1", "sessiontemplate", "create", "--description", "x").code == 2  # no name


def test_session_lifecycle_and_status_tree(bos: Runner, api: Api, tmp_path: Path) -> None:
    make_template(bos, tmp_path)
    created = bos("v1", "session", "create", "--template-name", "cle", "--operation", "Reboot", "--format", "json")
    assert created.code == 0, created.err
    sid = created.json()["links"][0]["href"].rsplit("/", 1)[1]
    assert created.json()["operation"] == "Reboot"
    assert bos("v1", "session", "list").out.split() == [sid]
    assert bos("v1", "session", "list", "--format", "json").json() == [sid]
    assert bos("v1", "session", "describe", sid, "--format", "json").json() == api.get(f"/v1/session/{sid}").json()
    base = f"/v1/session/{sid}/status/compute"
    body = {"phases": [{"name": "boot", "categories": [{"name": "not_started", "node_list": NODES}]}]}
    assert api.post(base, json=body).status_code == 200
    api.patch(base, json=[{"update_type": "NodeChangeList", "phase": "boot", "data": {
        "phase": "boot", "source": "not_started", "destination": "failed", "node_list": NODES[:1]}},
        {"update_type": "NodeErrorsList", "phase": "boot", "data": {"power failed": NODES[:1]}}])
    table = bos("v1", "session", "status", sid)
    assert table.code == 0, table.err
    assert f"v1 session {sid}: running, 1 errors" in table.out
    row = [line for line in table.out.splitlines() if line.startswith("compute")][0].split()
    assert row[:7] == ["compute", "boot", "2", "0", "0", "1", "0"] and "power failed: 1" in table.out
    assert bos("v1", "session", "status", sid, "--format", "json").json() == api.get(f"/v1/session/{sid}/status").json()
    assert bos("v1", "session", "status", sid, "compute", "--format", "json").json() == api.get(base).json()
    phase = bos("v1", "session", "status", sid, "compute", "boot")
    assert "error: power failed: " + NODES[0] in phase.out
    failed = bos("v1", "session", "status", sid, "compute", "boot", "failed")
    assert failed.out.split() == NODES[:1]
    unknown = bos("v1", "session", "status", sid, "compute", "boot", "bogus")
    assert unknown.code == 1 and "Category 'bogus' is not found." in unknown.err
    assert bos("v1", "session", "delete", sid).code == 0
    again = bos("v1", "session", "delete", sid)
    assert again.code == 1 and f"Sesssion: {sid} not found" in again.err


def test_bad_operation_is_a_usage_error(bos: Runner) -> None:
    result = bos("v1", "session", "create", "--template-name", "cle", "--operation", "Configure2")
    assert result.code == 2 and "must be one of" in result.err
    missing = bos("v1", "session", "create", "--template-name", "nope", "--operation", "configure")
    assert missing.code == 1 and "Session Template ID invalid: nope" in missing.err


def test_seed_spelling_template_uuid_and_capitalised_operation(bos: Runner, api: Api, tmp_path: Path) -> None:
    """`cray bos v1 session create --template-uuid SESSIONTEMPLATE_NAME --operation Configure` (seed 001)."""
    make_template(bos, tmp_path)
    created = bos("v1", "session", "create", "--template-uuid", "cle", "--operation", "Configure", "--format", "json")
    assert created.code == 0, created.err
    body = created.json()
    assert body["operation"] == "Configure" and body["templateName"] == "cle" and "templateUuid" not in body
    sid = body["links"][0]["href"].rsplit("/", 1)[1]
    described = bos("v1", "session", "describe", sid)
    assert "operation     Configure" in described.out and f"job           boa-{sid}" in described.out
