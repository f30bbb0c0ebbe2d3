"""Roles at work (auth on, real HTTP): the node-steering attack, node reports, tenant admins, the audit trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from bos_sim.stack import ApiServer

from tests.reporter.conftest import eventually
from tests.support.auth import TENANT, auth_server_args, bearer, node_subject
from tests.support.client import Api, assert_problem
from tests.support.tokens import record_token

from .conftest import AuthStack

VICTIM = "x1000c0s0b0n0"
ATTACKER = "x1000c0s0b0n1"
ARTIFACTS = {"kernel": "s3://boot-images/9e3c/kernel", "kernel_parameters": "console=ttyS0 quiet",
             "initrd": "s3://boot-images/9e3c/initrd"}
EVIL = {"enabled": True, "session": "",
        "desired_state": {"boot_artifacts": {"kernel": "s3://evil/kernel", "kernel_parameters": "init=/bin/sh",
                                             "initrd": "s3://evil/initrd"}, "configuration": ""}}


@pytest.fixture
def victim(admin: Api) -> Dict[str, Any]:
    assert admin.put(f"/v2/components/{VICTIM}", json={"enabled": False}).status_code == 200
    assert admin.put(f"/v2/components/{ATTACKER}", json={"enabled": False}).status_code == 200
    return admin.get(f"/v2/components/{VICTIM}").json()


@pytest.mark.parametrize("attacker", ["other node", "read-only", "own node"])
def test_the_node_steering_attack_is_forbidden(auth_stack: AuthStack, admin: Api, victim: Dict[str, Any],
                                               attacker: str) -> None:
    """issue 14: PATCH another node's desired state; a node may not even change its own."""
    issuer = auth_stack.issuer
    token = {"other node": issuer.node(ATTACKER), "read-only": issuer.read_only(),
             "own node": issuer.node(VICTIM)}[attacker]
    resp = auth_stack.client(token).patch(f"/v2/components/{VICTIM}", json=EVIL)
    body = assert_problem(resp, 403, "Forbidden")
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="bos", error="insufficient_scope"'
    assert body["required_roles"] in (["admin", "tenant-admin"], ["admin", "tenant-admin", "node"])
    assert admin.get(f"/v2/components/{VICTIM}").json() == victim


def test_a_node_token_reports_its_own_state_and_nothing_else(auth_stack: AuthStack, admin: Api,
                                                             victim: Dict[str, Any]) -> None:
    record_token(auth_stack.services.redis.url, "5b0c1f3e-4c2a-4a61-9d7e-0a2f7c9e1b11", ARTIFACTS)
    node = auth_stack.client(auth_stack.issuer.node(VICTIM))
    report = {"id": VICTIM, "actual_state": {"bss_token": "5b0c1f3e-4c2a-4a61-9d7e-0a2f7c9e1b11"}}
    resp = node.patch(f"/v2/components/{VICTIM}", json=report)
    assert resp.status_code == 200, resp.text
    assert resp.json()["actual_state"]["boot_artifacts"] == ARTIFACTS
    assert node.patch(f"/v2/components/{ATTACKER}", json=dict(report, id=ATTACKER)).status_code == 403
    assert node.patch(f"/v2/components/{VICTIM}", json=dict(report, id=ATTACKER)).status_code == 403
    assert node.patch(f"/v2/components/{VICTIM}", json=dict(report, enabled=True)).status_code == 403
    assert node.patch(f"/v2/components/{VICTIM}", json={"id": VICTIM}).status_code == 403
    assert node.get(f"/v2/components/{VICTIM}").status_code == 403
    assert node.put(f"/v2/components/{VICTIM}", json=report).status_code == 403
    assert_problem(node.patch(f"/v2/components/{VICTIM}", data="{not json",
                              headers={"Content-Type": "application/json"}), 400, "Bad Request")


def test_a_tenant_admin_acts_for_the_tenant_of_the_token(auth_stack: AuthStack, admin: Api,
                                                         victim: Dict[str, Any]) -> None:
    assert admin.put("/v2/components/x1000c0s0b1n0", json={"enabled": False}).status_code == 200  # vcluster-red's
    tenant = auth_stack.client(auth_stack.issuer.tenant_admin())
    ids = sorted(c["id"] for c in tenant.get("/v2/components").json())
    assert ids == [VICTIM, ATTACKER]  # vcluster-blue's, without sending a header
    assert tenant.get("/v2/components/x1000c0s0b1n0").status_code == 404
    assert tenant.patch("/v2/components/x1000c0s0b1n0", json={"enabled": True}).status_code == 404
    assert tenant.patch(f"/v2/components/{VICTIM}", json={"retry_policy": 2}).status_code == 200
    assert tenant.get("/v2/components", tenant=TENANT).status_code == 200
    resp = tenant.get("/v2/components", tenant="vcluster-red")
    body = assert_problem(resp, 403, "Forbidden")
    assert "vcluster-red" in body["detail"] and TENANT in body["detail"]
    assert tenant.patch("/v2/options", json={"default_retry_policy": 0}).status_code == 403
    assert tenant.patch("/v2/options", json={"default_retry_policy": 0}, tenant=TENANT).status_code == 403


def test_a_tenant_admins_templates_live_in_the_tokens_tenant(auth_stack: AuthStack, admin: Api) -> None:
    tenant = auth_stack.client(auth_stack.issuer.tenant_admin())
    template = {"boot_sets": {"compute": {"path": "s3://boot-images/9e3c75e1-ac42-42c7-873c-e758048897d6/manifest.json",
                                          "type": "s3", "node_list": [VICTIM]}}, "enable_cfs": False}
    assert tenant.put("/v2/sessiontemplates/mine", json=template).status_code == 200
    assert admin.get("/v2/sessiontemplates/mine").status_code == 404  # not untenanted
    assert admin.get("/v2/sessiontemplates/mine", tenant=TENANT).json()["tenant"] == TENANT


def test_a_tenant_admin_token_without_a_tenant_is_forbidden(auth_stack: AuthStack, admin: Api) -> None:
    client = auth_stack.client(auth_stack.issuer.token("tess", ["tenant-admin"]))
    body = assert_problem(client.get("/v2/components"), 403, "Forbidden")
    assert "no tenant claim" in body["detail"]


def audit_lines(auth_stack: AuthStack) -> List[Dict[str, Any]]:
    marker = " bos_server.audit: audit "
    lines = [line.split(marker, 1)[1] for line in auth_stack.log().splitlines() if marker in line]
    return [json.loads(line) for line in lines]


def test_every_write_is_audited_with_subject_and_role_on_one_escaped_line(auth_stack: AuthStack, admin: Api,
                                                                          victim: Dict[str, Any]) -> None:
    forged = 'eve"\n2026-01-01 00:00:00,000 INFO bos_server.audit: audit {"subject":"admin-alice"}'
    client = auth_stack.client(auth_stack.issuer.token(forged, ["admin"]))
    assert client.patch(f"/v2/components/{VICTIM}", json={"retry_policy": 4}).status_code == 200
    node = auth_stack.client(auth_stack.issuer.node(ATTACKER))
    assert node.patch(f"/v2/components/{VICTIM}", json=EVIL).status_code == 403
    admin.get(f"/v2/components/{VICTIM}")

    def seen() -> bool:
        subjects = [entry["subject"] for entry in audit_lines(auth_stack)]
        return forged in subjects and node_subject(ATTACKER) in subjects
    eventually(seen, 10, "the audit lines")
    entries = audit_lines(auth_stack)
    mine = [e for e in entries if e["subject"] == forged][-1]
    assert mine == {"method": "PATCH", "path": f"/v2/components/{VICTIM}", "status": 200, "subject": forged,
                    "role": "admin", "tenant": None}
    denied = [e for e in entries if e["subject"] == node_subject(ATTACKER)][-1]
    assert (denied["status"], denied["role"]) == (403, "node") and "own component" in denied["reason"]
    assert not any(line.startswith("2026-01-01") for line in auth_stack.log().splitlines())
    assert all(e["method"] != "GET" for e in entries)  # reads are not audited


def test_the_component_history_records_who_changed_it(auth_stack: AuthStack, admin: Api,
                                                       victim: Dict[str, Any]) -> None:
    """issue 14 item 5 with the history extension (api.md §3.4.6): `by` = token subject and role."""
    desired = {"desired_state": {"boot_artifacts": ARTIFACTS, "configuration": ""}, "session": "",
               "enabled": True}
    assert admin.patch(f"/v2/components/{VICTIM}", json=desired).status_code == 200
    record_token(auth_stack.services.redis.url, "7d2e3f50-6e4c-4c83-9f90-2c4f9e1b3d33", ARTIFACTS)
    node = auth_stack.client(auth_stack.issuer.node(ATTACKER))
    report = {"id": ATTACKER, "actual_state": {"bss_token": "7d2e3f50-6e4c-4c83-9f90-2c4f9e1b3d33"}}
    assert node.patch(f"/v2/components/{ATTACKER}", json=report).status_code == 200
    victim_history = admin.get(f"/v2/components/{VICTIM}/history").json()
    assert victim_history[-1]["by"] == "admin-alice (admin)" and "desired boot set" in victim_history[-1]["reason"]
    reporter_history = admin.get(f"/v2/components/{ATTACKER}/history").json()
    assert reporter_history[-1]["by"] == f"{node_subject(ATTACKER)} (node)"
    assert "actual boot set" in reporter_history[-1]["reason"]
    tenant = auth_stack.client(auth_stack.issuer.tenant_admin())
    assert tenant.get(f"/v2/components/{VICTIM}/history").status_code == 200  # scoped like GET of the component
    assert tenant.get("/v2/components/x1000c0s0b1n0/history").status_code == 404


def test_the_last_audit_lines_survive_a_worker_shutdown(tmp_path: Path, auth_stack: AuthStack) -> None:
    """Workers end with os._exit: the batched trail is written by the application's cleanup."""
    jwks = auth_stack.issuer.write_jwks(tmp_path / "jwks.json")
    server = ApiServer(tmp_path / "api", auth_stack.services.redis.url,
                       extra_args=["--workers", "2", *auth_server_args(jwks)])
    try:
        client = Api(server.url)
        client.http.headers.update(bearer(auth_stack.issuer.token("last-writer", ["admin"])))
        assert client.patch("/v2/components/x9999c9s9b0n0", json={"enabled": False}).status_code == 404
    finally:
        assert server.stop() == 0
    assert '"subject":"last-writer"' in server.log_path.read_text()
