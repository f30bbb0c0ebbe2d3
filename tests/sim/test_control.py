"""The control API (services.md §9.3; simulator/README.md): inventory changes and read-back."""

from __future__ import annotations

import requests

from bos_sim.inventory import TENANT_NAME, node_xname
from bos_sim.stack import Simulator
from tests.sim.helpers import Services

NEW = "x3000c0s19b1n0"


def test_add_and_remove_a_node_everywhere(sim: Simulator, svc: Services) -> None:
    added = sim.control("POST", "/nodes", {"nodes": [{"xname": NEW, "role": "Compute", "arch": None,
                                                      "groups": ["compute"]}]})
    assert added == {"added": [NEW]}
    comp = svc.post("hsm", "/State/Components/Query", json={"ComponentIDs": [NEW]}).json()["Components"][0]
    assert comp["NID"] == 21 and "Arch" not in comp
    assert NEW in svc.get("hsm", "/groups/compute").json()["members"]["ids"]
    assert svc.post("pcs", "/power-status", json={"xname": [NEW]}).json()["status"][0]["powerState"] == "off"
    assert svc.get("cfs", f"/components/{NEW}").status_code == 200
    sim.control("DELETE", f"/nodes/{NEW}")
    assert svc.post("hsm", "/State/Components/Query", json={"ComponentIDs": [NEW]}).json()["Components"] == []
    assert NEW not in svc.get("hsm", "/groups/compute").json()["members"]["ids"]
    assert svc.get("cfs", f"/components/{NEW}").status_code == 404


def test_groups_partitions_and_tenants_can_be_replaced(sim: Simulator, svc: Services) -> None:
    sim.control("PUT", "/groups/rack-a", {"members": [node_xname(0), node_xname(1)], "tags": ["a"]})
    assert svc.get("hsm", "/groups/rack-a").json()["members"]["ids"] == [node_xname(0), node_xname(1)]
    sim.control("DELETE", "/groups/rack-a")
    assert svc.get("hsm", "/groups/rack-a").status_code == 404
    sim.control("PUT", "/partitions/p2", {"members": [node_xname(5)]})
    assert "p2" in [p["name"] for p in svc.get("hsm", "/partitions").json()]
    sim.control("PUT", f"/tenants/{TENANT_NAME}", {"xnames": [node_xname(9)], "hsm_group": "blue"})
    tenant = svc.get("tapms", f"/tenants/{TENANT_NAME}").json()
    assert tenant["status"]["tenantresources"][0]["xnames"] == [node_xname(9)]
    sim.control("PUT", "/tenants/vcluster-red", {"xnames": []})
    assert svc.get("tapms", "/tenants/vcluster-red").status_code == 200


def test_bulk_enablement_and_locks(sim: Simulator, svc: Services) -> None:
    ids = [node_xname(2), node_xname(3)]
    sim.control("POST", "/nodes/bulk", {"ids": ids, "enabled": False, "locked": True})
    comps = svc.post("hsm", "/State/Components/Query", json={"ComponentIDs": ids}).json()["Components"]
    assert [c["Enabled"] for c in comps] == [False, False]
    locked = svc.get("hsm", "/locks/status", params={"type": "Node", "locked": "true"}).json()["Components"]
    assert [c["ID"] for c in locked] == ids
    sim.control("POST", "/nodes/bulk", {"ids": ids, "enabled": True, "locked": False})


def test_requests_are_read_back_per_service(sim: Simulator, svc: Services) -> None:
    sim.clear_requests("hsm")
    svc.post("hsm", "/State/Components/Query", json={"ComponentIDs": [node_xname(0)]},
             params={"trace": "1"}, headers={"X-Test": "yes"})
    (record,) = sim.requests("hsm")
    assert record["method"] == "POST" and record["path"] == "/hsm/v2/State/Components/Query"
    assert record["query"] == {"trace": "1"} and record["headers"]["X-Test"] == "yes"
    assert record["body"] == {"ComponentIDs": [node_xname(0)]} and record["status"] == 200
    assert sim.requests("hsm", since=record["seq"]) == []


def test_node_state_read_back_and_direct_power(sim: Simulator) -> None:
    xname = node_xname(12)
    node = sim.node(xname)
    assert {"power", "cmdline", "reported_token", "cfs", "faults"} <= set(node)
    sim.patch_node(xname, power="on")
    assert sim.node(xname)["power"] == "on"
    sim.patch_node(xname, power="off")
    assert sim.summary()["nodes"] == 20
    assert requests.get(sim.urls["control"] + "/nodes/x1c0s0b0n9", timeout=5).status_code == 404


def test_speed_can_be_changed(sim: Simulator) -> None:
    sim.set_speed(10)
    assert sim.control("GET", "/speed") == {"speed": 10.0}
    sim.set_speed(50)
    resp = requests.put(sim.urls["control"] + "/speed", json={"speed": 0}, timeout=5)
    assert resp.status_code == 400
