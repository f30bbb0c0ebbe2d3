"""v1 sessions end to end on the v2 engine (v1.md §1, §4, checklist rows 18 and 29-34).

The real API, Redis, the operators (with the v1 agent) and the simulated cluster.
Every scenario takes fresh nodes from one module stack.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest

from .conftest import module_stack
from .stack import GOOD_CONFIG, MANIFEST, Stack

pytestmark = pytest.mark.slow

OTHER_CONFIG = "other-config"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from module_stack(tmp_path_factory, "v1", 70)  # `cluster` (conftest) re-applies the options


def boot_set(nodes: Sequence[str], **extra: Any) -> Dict[str, Any]:
    return {"path": MANIFEST, "type": "s3", "node_list": list(nodes), "rootfs_provider": "sbps",
            "rootfs_provider_passthrough": "sbps:v1:x", **extra}


def v1_template(cluster: Stack, name: str, boot_sets: Dict[str, Dict[str, Any]],
                configuration: Optional[str] = GOOD_CONFIG, **extra: Any) -> None:
    body: Dict[str, Any] = {"name": name, "boot_sets": boot_sets, **extra}
    if configuration:
        body["cfs"] = {"configuration": configuration}
    resp = cluster.api.post("/v1/sessiontemplate", json=body)
    assert resp.status_code == 201, resp.text


def v1_session(cluster: Stack, template: str, operation: str, limit: str = "") -> str:
    body = {"operation": operation, "templateName": template, **({"limit": limit} if limit else {})}
    resp = cluster.api.post("/v1/session", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["links"][0]["href"].rsplit("/", 1)[1]


def status(cluster: Stack, sid: str, *path: str) -> Dict[str, Any]:
    resp = cluster.api.get("/".join([f"/v1/session/{sid}/status", *path]))
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_v1_complete(cluster: Stack, sid: str, timeout: float = 90) -> Dict[str, Any]:
    cluster._wait(lambda: cluster.api.get(f"/v1/session/{sid}").json()["complete"] is True, timeout,
                  f"v1 session {sid} to complete")
    return cluster.api.get(f"/v1/session/{sid}").json()


def categories(phase: Dict[str, Any]) -> Dict[str, List[str]]:
    return {c["name"]: c["node_list"] for c in phase["categories"]}


def tree(cluster: Stack, sid: str, bs: str) -> Dict[str, Dict[str, List[str]]]:
    return {p["name"]: categories(p) for p in status(cluster, sid, bs)["phases"]}


def only(nodes: Sequence[str], category: str, phase_tree: Dict[str, List[str]]) -> bool:
    return sorted(phase_tree[category]) == sorted(nodes) and all(
        not v for k, v in phase_tree.items() if k != category)


def run(cluster: Stack, template: str, operation: str, limit: str = "", timeout: float = 90) -> str:
    sid = v1_session(cluster, template, operation, limit)
    described = wait_v1_complete(cluster, sid, timeout)
    assert described["in_progress"] is False and described["stop_time"]
    return sid


def epoch(agent_time: str) -> float:
    return dt.datetime.strptime(agent_time, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.timezone.utc).timestamp()


def transitions(cluster: Stack, operation: str) -> Dict[str, List[float]]:
    out: Dict[str, List[float]] = {}
    for req in cluster.pcs_requests(operation):
        for loc in (req.get("body") or {}).get("location", []):
            out.setdefault(loc["xname"], []).append(req["time"])
    return out


# -- each operation --

def test_boot_then_configure_then_shutdown(cluster: Stack) -> None:
    nodes = cluster.take(4)
    v1_template(cluster, "v1-ops", {"compute": boot_set(nodes)})
    sid = run(cluster, "v1-ops", "Boot")
    boot_tree = tree(cluster, sid, "compute")
    assert set(boot_tree) == {"boot", "configure"}
    assert only(nodes, "succeeded", boot_tree["boot"]) and only(nodes, "succeeded", boot_tree["configure"])
    session_status = status(cluster, sid)
    assert session_status["boot_sets"] == ["compute"] and session_status["metadata"]["error_count"] == 0
    assert {"href": f"/v1/session/{sid}/status/compute", "rel": "Boot Set"} in session_status["links"]
    records = cluster.components(nodes)
    assert all(r["session"] == sid and r["status"]["status"] == "stable" for r in records.values())
    assert all(f"bos_session_id={sid}" in r["desired_state"]["boot_artifacts"]["kernel_parameters"]
               for r in records.values())

    # configure (row 31): a new configuration, no power or BSS call; an off node is excluded
    off = nodes[-1]
    cluster.sim.patch_node(off, power="off")
    resp = cluster.api.post("/v1/sessiontemplate", json={
        "name": "v1-ops", "cfs": {"configuration": OTHER_CONFIG}, "boot_sets": {"compute": boot_set(nodes)}})
    assert resp.status_code == 201
    cluster.sim.clear_requests("pcs")
    cluster.sim.clear_requests("bss")
    sid2 = run(cluster, "v1-ops", "configure")
    configure = tree(cluster, sid2, "compute")
    assert list(configure) == ["configure"]
    assert only(nodes[:-1], "succeeded", {k: v for k, v in configure["configure"].items() if k != "excluded"})
    assert configure["configure"]["excluded"] == [off]
    phase = status(cluster, sid2, "compute", "configure")
    assert phase["errors"] == {"Node is powered off": [off]}
    assert not cluster.pcs_requests() and not [r for r in cluster.sim.requests("bss") if r["method"] == "PUT"]
    for node in cluster.sim_nodes(nodes[:-1]).values():
        assert node["cfs"]["desired_config"] == OTHER_CONFIG and node["cfs"]["configuration_status"] == "configured"
    cfs_patches = [r for r in cluster.sim.requests("cfs") if r["method"] == "PATCH"
                   and ((r.get("body") or {}).get("patch") or {}).get("tags", {}).get("bos_session") == sid2]
    assert cfs_patches and all(r["body"]["patch"]["enabled"] is True for r in cfs_patches)

    # shutdown
    sid3 = run(cluster, "v1-ops", "shutdown")
    shutdown = tree(cluster, sid3, "compute")
    assert list(shutdown) == ["shutdown"] and only(nodes, "succeeded", shutdown["shutdown"])
    assert all(n["power"] == "off" for n in cluster.sim_nodes(nodes).values())


def test_reboot_honours_boot_ordinals(cluster: Stack) -> None:
    first, second = cluster.take(3), cluster.take(3)
    v1_template(cluster, "v1-ord", {"late": boot_set(second, boot_ordinal=2),
                                    "early": boot_set(first, boot_ordinal=1)})
    run(cluster, "v1-ord", "boot")
    cluster.sim.clear_requests("pcs")
    sid = run(cluster, "v1-ord", "reboot")
    early_done = epoch(status(cluster, sid, "early")["metadata"]["stop_time"])
    ons = transitions(cluster, "On")
    assert set(first + second) <= set(ons)
    assert max(t for n in first for t in ons[n]) < min(t for n in second for t in ons[n])
    assert min(t for n in second for t in ons[n]) >= early_done - 0.01  # only after every early node booted
    assert min(t for n in second for t in transitions(cluster, "Soft-Off")[n]) >= early_done - 0.01
    for bs, nodes in (("early", first), ("late", second)):
        for phase in tree(cluster, sid, bs).values():
            assert only(nodes, "succeeded", phase)


def test_shutdown_ordinals_split_a_reboot(cluster: Stack) -> None:
    first, second = cluster.take(2), cluster.take(2)
    v1_template(cluster, "v1-sord", {"a": boot_set(first, shutdown_ordinal=1),
                                     "b": boot_set(second, shutdown_ordinal=2)})
    run(cluster, "v1-sord", "boot")
    cluster.sim.clear_requests("pcs")
    sid = run(cluster, "v1-sord", "reboot")
    offs, ons = transitions(cluster, "Soft-Off"), transitions(cluster, "On")
    assert max(offs[n][0] for n in first) < min(offs[n][0] for n in second)  # shutdown order
    assert max(offs[n][0] for n in first + second) < min(ons[n][0] for n in first + second)
    assert all(only(n, "succeeded", p) for bs, n in (("a", first), ("b", second))
               for p in tree(cluster, sid, bs).values())


# -- failures, skipped nodes, retry hint --

def test_power_on_failure_lands_in_failed_with_retry_hint_row29(cluster: Stack) -> None:
    cluster.set_options(default_retry_policy=1, max_power_on_wait_time=2)
    nodes = cluster.take(2)
    good, broken = nodes
    v1_template(cluster, "v1-fail", {"compute": boot_set(nodes)})
    run(cluster, "v1-fail", "boot")
    cluster.sim.set_node_faults([broken], fail_power_on=True)
    sid = run(cluster, "v1-fail", "reboot")
    phases = tree(cluster, sid, "compute")
    assert only(nodes, "succeeded", phases["shutdown"])
    assert phases["boot"]["failed"] == [broken] and phases["boot"]["succeeded"] == [good]
    assert phases["configure"]["excluded"] == [broken] and phases["configure"]["succeeded"] == [good]
    assert status(cluster, sid, "compute", "boot")["errors"]  # the engine's error text, keyed by message
    described = cluster.api.get(f"/v1/session/{sid}").json()
    assert described["complete"] is True and described["error_count"] == 1
    hint = f"cray bos v1 session create --template-name v1-fail --operation reboot --limit {broken}"
    assert status(cluster, sid)["metadata"]["retry_hints"] == [hint]
    log = cluster.operators.log_path.read_text()
    assert f"--operation reboot --limit {broken}" in log and f"These nodes failed to reboot. {broken}" in log


def test_boot_of_running_nodes_does_not_power_cycle_them_row30(cluster: Stack) -> None:
    nodes = cluster.take(2)
    v1_template(cluster, "v1-twice", {"compute": boot_set(nodes)}, configuration=None, enable_cfs=False)
    run(cluster, "v1-twice", "boot")
    cluster.sim.clear_requests("pcs")
    sid = run(cluster, "v1-twice", "boot")  # same image, already on: only recorded as booted
    assert not cluster.pcs_requests("On") and not cluster.pcs_requests("Soft-Off")
    assert only(nodes, "succeeded", tree(cluster, sid, "compute")["boot"])


def test_shutdown_failure_and_forced_off_row32(cluster: Stack) -> None:
    nodes = cluster.take(3)
    stubborn, unknown = nodes[0], nodes[1]
    v1_template(cluster, "v1-shut", {"compute": boot_set(nodes)})
    run(cluster, "v1-shut", "boot")
    cluster.sim.set_node_faults([stubborn], ignore_soft_off=True)
    cluster.sim.set_node_faults([unknown], missing_pcs=True)
    sid = run(cluster, "v1-shut", "shutdown")
    phase = status(cluster, sid, "compute", "shutdown")
    found = categories(phase)
    assert found["failed"] == [unknown] and sorted(found["succeeded"]) == sorted([stubborn, nodes[2]])
    assert list(phase["errors"].values()) == [[unknown]]
    assert stubborn in cluster.xnames_sent("Force-Off")
    cluster.sim.set_node_faults([unknown], replace=True)


def test_boot_without_cfs_excludes_configure_row33(cluster: Stack) -> None:
    nodes = cluster.take(2)
    v1_template(cluster, "v1-nocfs", {"compute": boot_set(nodes)}, configuration=None, enable_cfs=False)
    sid = run(cluster, "v1-nocfs", "boot")
    phases = tree(cluster, sid, "compute")
    assert only(nodes, "succeeded", phases["boot"]) and only(nodes, "excluded", phases["configure"])
    assert status(cluster, sid)["metadata"]["error_count"] == 0


def test_limit_selects_nodes(cluster: Stack) -> None:
    nodes = cluster.take(3)
    v1_template(cluster, "v1-limit", {"compute": boot_set(nodes)})
    sid = run(cluster, "v1-limit", "boot", limit=f"{nodes[0]},{nodes[1]},,!{nodes[1]}")
    assert tree(cluster, sid, "compute")["boot"]["succeeded"] == [nodes[0]]
    assert cluster.components(nodes)[nodes[2]]["session"] == ""


# -- cancel and takeover --

def test_delete_during_run_stops_it_row34(cluster: Stack) -> None:
    nodes = cluster.take(3)
    v1_template(cluster, "v1-del", {"compute": boot_set(nodes)})
    cluster.sim.set_node_faults(nodes, fail_boot=True)  # powers on, never boots: the session keeps running
    sid = v1_session(cluster, "v1-del", "boot")
    cluster._wait(lambda: len(cluster.xnames_sent("On")) and set(nodes) <= set(cluster.xnames_sent("On")), 30,
                  "the nodes to be powered on")
    assert cluster.api.get(f"/v1/session/{sid}").json()["in_progress"] is True
    assert cluster.api.delete(f"/v1/session/{sid}").status_code == 204
    records = cluster.components(nodes)
    assert all(r["enabled"] is False for r in records.values()), records
    # the session-control cleanup: the configuration this session set, never applied, is cleared
    assert all(n["cfs"]["desired_config"] == "" for n in cluster.sim_nodes(nodes).values())
    ons = [x for x in cluster.xnames_sent("On") if x in nodes]
    cluster.set_options(max_boot_wait_time=1)  # the engine would retry at once if it still drove them
    other = cluster.take(1)
    v1_template(cluster, "v1-del-probe", {"compute": boot_set(other)})
    run(cluster, "v1-del-probe", "boot")  # time passes with the engine busy elsewhere
    assert [x for x in cluster.xnames_sent("On") if x in nodes] == ons
    assert all(r["enabled"] is False for r in cluster.components(nodes).values())
    cluster.sim.set_node_faults(nodes, replace=True)
    assert cluster.api.get(f"/v1/session/{sid}").status_code == 404
    assert cluster.api.get(f"/v1/session/{sid}/status").status_code == 404  # nothing re-created by the agent
    assert sid not in cluster.api.get("/v1/session").json()


def test_v1_and_v2_sessions_overlap(cluster: Stack) -> None:
    nodes = cluster.take(3)
    v1_template(cluster, "v1-ovl", {"compute": boot_set(nodes)})
    cluster.sim.set_node_faults(nodes, fail_boot=True)
    sid = v1_session(cluster, "v1-ovl", "boot")
    cluster._wait(lambda: set(nodes) <= set(cluster.xnames_sent("On")), 30, "the v1 session to power on")
    # PCS takes an On before the node has power; the fault is read when power comes, so it is lifted
    # only once every node is on (unbooted): lifted earlier, a node boots and the v1 session wins it.
    cluster._wait(lambda: all(n["power"] == "on" for n in cluster.sim_nodes(nodes).values()), 30,
                  "the nodes to have power")
    cluster.sim.set_node_faults(nodes, replace=True)
    cluster.template("v2-ovl", nodes)
    cluster.session("v2-ovl", "v2-ovl", "reboot")  # the later session takes the nodes over
    v2_status = cluster.wait_complete("v2-ovl", 90)
    assert v2_status["percent_successful"] == 100.0
    described = wait_v1_complete(cluster, sid, 30)
    assert described["complete"] is True
    boot_phase = status(cluster, sid, "compute", "boot")
    assert sorted(categories(boot_phase)["excluded"]) == sorted(nodes)
    assert boot_phase["errors"] == {"Node was taken over by session v2-ovl": sorted(nodes)}

    # and a v1 session taking over a running v2 one reports the overlap in its metadata
    cluster.sim.set_node_faults(nodes, fail_boot=True)
    cluster.session("v2-ovl2", "v2-ovl", "reboot")
    cluster._wait(lambda: all(r["session"] == "v2-ovl2" and r["enabled"] for r in cluster.components(nodes).values()),
                  30, "the v2 session to run")
    sid2 = v1_session(cluster, "v1-ovl", "shutdown")
    cluster.sim.set_node_faults(nodes, replace=True)
    wait_v1_complete(cluster, sid2, 60)
    assert status(cluster, sid2)["metadata"]["overlaps"] == [{"session": "v2-ovl2", "nodes": 3}]
    assert cluster.wait_complete("v2-ovl2", 60)["status"] == "complete"
