"""Tenancy of the observability extensions: a component's history (api.md §3.4.6) and the
dashboard's session snapshot and event stream show a tenant only what it owns (§1.8)."""

from __future__ import annotations

import requests

from tests.api.conftest import TENANTS, SimStack
from tests.support.client import Api

BLUE, RED = "vcluster-blue", "vcluster-red"
B0 = TENANTS[BLUE][0]
RED0 = TENANTS[RED][0]


def test_history_is_tenant_scoped(sim_api: Api) -> None:
    assert sim_api.put("/v2/components", json=[{"id": B0, "enabled": False}, {"id": RED0, "enabled": False}]).ok
    assert sim_api.patch(f"/v2/components/{RED0}", json={"error": "red's secret"}).ok
    own = sim_api.get(f"/v2/components/{B0}/history", tenant=BLUE)
    assert own.status_code == 200 and own.json()[0]["reason"] == "created"
    other = sim_api.get(f"/v2/components/{RED0}/history", tenant=BLUE)
    assert other.status_code == 404 and "red's secret" not in other.text
    assert other.json()["detail"] == f"Component '{RED0}' does not exist"
    assert sim_api.get(f"/v2/components/{RED0}/history", tenant=RED).json()[-1]["error"] == "red's secret"


def test_dashboard_snapshot_is_tenant_scoped(sim_api: Api, sim_stack: SimStack) -> None:
    both = [{"id": B0, "enabled": True, "session": "shared-name"}, {"id": RED0, "enabled": True, "session": "shared-name"}]
    assert sim_api.put("/v2/components", json=both).ok
    redis = sim_stack.redis_client
    # a blue session called shared-name (written as the API would: record and its indexes)
    from bos_server.store import keys
    import json
    member = keys.scoped_member(BLUE, "shared-name")
    redis.set(keys.session(BLUE, "shared-name"), json.dumps(
        {"name": "shared-name", "tenant": BLUE, "operation": "boot", "template_name": "t",
         "status": {"status": "running", "start_time": "2025-01-01T00:00:00"}}))
    redis.zadd(keys.SESSIONS, {member: 0})
    redis.zadd(keys.sessions_by_name("shared-name"), {member: 0})
    base = sim_stack.server.url + "/dashboard/api/sessions/shared-name/nodes"
    blue = requests.get(base, headers={"Cray-Tenant-Name": BLUE}, timeout=10).json()
    assert [i for ids in blue["statuses"].values() for i in ids] == [B0]
    assert requests.get(base, headers={"Cray-Tenant-Name": RED}, timeout=10).status_code == 404  # red has no such session
    untenanted = requests.get(base, timeout=10)
    assert untenanted.status_code == 404  # no untenanted session of that name either
    stream = requests.get(sim_stack.server.url + "/dashboard/api/events?session=shared-name&tenant=" + BLUE,
                          stream=True, timeout=10)
    try:
        first = b""
        for chunk in stream.iter_content(chunk_size=None):
            first += chunk
            if b"\n\n" in first:
                break
        assert first.startswith(b"event: snapshot") and B0.encode() in first and RED0.encode() not in first
    finally:
        stream.close()
