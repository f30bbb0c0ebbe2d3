"""HSM contract (services.md §2) over real HTTP."""

from __future__ import annotations

from bos_sim.inventory import node_xname
from bos_sim.stack import Simulator
from tests.sim.helpers import Services, problem_detail

FIRST = node_xname(0)
NO_ARCH = node_xname(7)
UAN = node_xname(19)


def test_s2_1_components_list_nodes_and_bmcs_with_the_documented_fields(svc: Services) -> None:
    comps = svc.get("hsm", "/State/Components").json()["Components"]
    by_id = {c["ID"]: c for c in comps}
    assert sum(c["Type"] == "Node" for c in comps) == 20
    assert any(c["Type"] == "NodeBMC" for c in comps)
    first = by_id[FIRST]
    assert first == {"ID": FIRST, "Type": "Node", "State": "Off", "Flag": "OK", "Enabled": True, "Role": "Compute",
                     "NID": 1, "NetType": "Sling", "Arch": "X86", "Class": "River"}
    assert "Arch" not in by_id[NO_ARCH]
    assert by_id[UAN]["Role"] == "Application" and by_id[UAN]["SubRole"] == "UAN"


def test_s2_1_type_and_role_filters(svc: Services) -> None:
    bmcs = svc.get("hsm", "/State/Components", params={"type": "NodeBMC"}).json()["Components"]
    assert bmcs and all(c["Type"] == "NodeBMC" for c in bmcs)
    uans = svc.get("hsm", "/State/Components", params={"role": "Application", "subrole": "uan"}).json()["Components"]
    assert [c["ID"] for c in uans] == [UAN]
    enabled = svc.get("hsm", "/State/Components", params={"type": "Node", "enabled": "True"}).json()["Components"]
    assert len(enabled) == 20


def test_s2_2_query_returns_only_known_ids(svc: Services) -> None:
    resp = svc.post("hsm", "/State/Components/Query",
                    json={"ComponentIDs": [FIRST, "x9999c0s0b0n0", UAN]})
    assert resp.status_code == 200
    assert sorted(c["ID"] for c in resp.json()["Components"]) == sorted([FIRST, UAN])


def test_s2_2_empty_component_ids_is_missing_ids(svc: Services) -> None:
    assert problem_detail(svc.post("hsm", "/State/Components/Query", json={"ComponentIDs": []}), 400) == "Missing IDs"
    assert problem_detail(svc.post("hsm", "/State/Components/Query", json={}), 400) == "Missing IDs"


def test_s2_2_enabled_filter_drops_disabled_nodes(sim: Simulator, svc: Services) -> None:
    target = node_xname(3)
    sim.patch_node(target, enabled=False)
    try:
        body = {"ComponentIDs": [FIRST, target], "enabled": ["True"]}
        ids = [c["ID"] for c in svc.post("hsm", "/State/Components/Query", json=body).json()["Components"]]
        assert ids == [FIRST]
        all_ids = [c["ID"] for c in svc.post("hsm", "/State/Components/Query",
                                              json={"ComponentIDs": [FIRST, target]}).json()["Components"]]
        assert sorted(all_ids) == sorted([FIRST, target])
    finally:
        sim.patch_node(target, enabled=True)


def test_s2_3_groups_have_label_and_member_ids(svc: Services) -> None:
    groups = {g["label"]: g for g in svc.get("hsm", "/groups").json()}
    assert {"compute", "uan"} <= set(groups)
    assert groups["uan"]["members"] == {"ids": [UAN]}
    assert len(groups["compute"]["members"]["ids"]) == 19
    assert groups["blue"]["exclusiveGroup"] == "tenants"


def test_s2_4_partition_p1(svc: Services) -> None:
    parts = svc.get("hsm", "/partitions").json()
    assert [p["name"] for p in parts] == ["p1"]
    assert parts[0]["members"]["ids"][0] == FIRST


def test_s2_5_lock_status_lists_locked_nodes_only(sim: Simulator, svc: Services) -> None:
    params = {"type": "Node", "locked": "true"}
    assert svc.get("hsm", "/locks/status", params=params).json() == {"Components": []}
    sim.patch_node(node_xname(1), locked=True)
    try:
        body = svc.get("hsm", "/locks/status", params=params).json()
        assert [c["ID"] for c in body["Components"]] == [node_xname(1)]
        entry = body["Components"][0]
        assert entry["Locked"] is True and entry["Reserved"] is False and entry["CreatedTime"]
    finally:
        sim.patch_node(node_xname(1), locked=False)
    assert svc.get("hsm", "/locks/status", params={"type": "Node", "locked": "True"}).json() == {"Components": []}


def test_unknown_path_is_a_problem(svc: Services) -> None:
    problem_detail(svc.get("hsm", "/nope"), 404)
