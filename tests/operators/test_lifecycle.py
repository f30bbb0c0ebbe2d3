"""End to end: the real API, Redis, operators and simulated cluster (operators.md §1.4).

Each scenario uses its own fresh nodes of one shared stack and checks the final
component records and the session's saved extended status.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable

import pytest

from bos_server.operators.framework import RETRY_LIMIT_ERROR
from bos_server.operators.status_rules import CFS_FAILED, NO_CFS

from .stack import FAILING_CONFIG, GOOD_CONFIG, Stack

pytestmark = pytest.mark.slow

EMPTY_ARTIFACTS = {"kernel": "", "kernel_parameters": "", "initrd": ""}


def artifacts(record: Dict[str, Any], state: str) -> Dict[str, str]:
    arts = dict((record.get(state) or {}).get("boot_artifacts") or {})
    arts.pop("timestamp", None)
    return arts


def assert_booted(records: Dict[str, Dict[str, Any]], ids: Iterable[str], session: str,
                  configuration: str = GOOD_CONFIG) -> None:
    for xname in ids:
        rec = records[xname]
        assert rec["status"]["status"] == "stable", rec
        assert rec["enabled"] is False and rec["error"] == "" and rec["session"] == session, rec
        assert rec["status"]["phase"] == "" and rec["status"]["status_override"] == "", rec
        assert artifacts(rec, "actual_state") == artifacts(rec, "desired_state"), rec
        assert artifacts(rec, "desired_state")["kernel"].endswith("/kernel")
        assert rec["desired_state"]["bss_token"] == rec["actual_state"]["bss_token"] != ""
        assert rec["desired_state"]["configuration"] == configuration
        assert set(rec["event_stats"].values()) == {0}  # zeroed on reaching phase ""


def assert_sim_booted(cluster: Stack, ids: Iterable[str], configuration: str = GOOD_CONFIG) -> None:
    for node in cluster.sim_nodes(list(ids)).values():
        assert node["power"] == "on" and node["booted"], node
        assert node["cfs"]["desired_config"] == configuration, node
        assert node["cfs"]["configuration_status"] == "configured", node


def assert_all_successful(status: Dict[str, Any], count: int) -> None:
    assert status["status"] == "complete"
    assert status["managed_components_count"] == count
    assert status["percent_successful"] == 100.0 and status["percent_failed"] == 0.0
    assert status["phases"] == {"percent_complete": 100.0, "percent_powering_on": 0.0,
                                "percent_powering_off": 0.0, "percent_configuring": 0.0}
    assert status["error_summary"] == {}
    assert status["timing"]["end_time"]


def boot(cluster: Stack, name: str, nodes, operation: str = "boot", **template: Any) -> Dict[str, Any]:
    cluster.template(name, nodes, **template)
    cluster.session(name, name, operation)
    return cluster.wait_complete(name)


def test_boot_from_off(cluster):
    nodes = cluster.take(20)
    status = boot(cluster, "boot-from-off", nodes)
    assert_all_successful(status, 20)
    assert_booted(cluster.components(nodes), nodes, "boot-from-off")
    assert_sim_booted(cluster, nodes)
    assert not set(nodes) & set(cluster.xnames_sent("Soft-Off"))  # already off: no power-off
    session = cluster.session_record("boot-from-off")
    assert session["components"] == ",".join(sorted(nodes)) and session["status"]["error"] is None


def test_reboot_powers_off_then_on(cluster):
    nodes = cluster.take(15)
    boot(cluster, "reboot-first", nodes)
    boots_before = {x: n["boot_count"] for x, n in cluster.sim_nodes(nodes).items()}
    status = boot(cluster, "reboot-again", nodes, operation="reboot")
    assert_all_successful(status, 15)
    assert_booted(cluster.components(nodes), nodes, "reboot-again")
    assert set(nodes) <= set(cluster.xnames_sent("Soft-Off"))
    assert not set(nodes) & set(cluster.xnames_sent("Force-Off"))
    assert all(n["boot_count"] == boots_before[x] + 1 for x, n in cluster.sim_nodes(nodes).items())


def test_boot_of_running_nodes_only_configures(cluster):
    nodes = cluster.take(5)
    boot(cluster, "boot-twice-1", nodes)
    sent_before = len(cluster.xnames_sent("On"))
    status = boot(cluster, "boot-twice-2", nodes)  # same artifacts: S4, no power actions
    assert_all_successful(status, 5)
    assert len(cluster.xnames_sent("On")) == sent_before


def test_shutdown(cluster):
    nodes = cluster.take(12)
    boot(cluster, "shutdown-boot", nodes)
    status = boot(cluster, "shutdown", nodes, operation="shutdown")
    assert_all_successful(status, 12)
    for rec in cluster.components(nodes).values():
        assert rec["status"]["status"] == "stable" and rec["enabled"] is False and rec["error"] == ""
        assert artifacts(rec, "desired_state") == EMPTY_ARTIFACTS and rec["session"] == "shutdown"
    assert all(n["power"] == "off" for n in cluster.sim_nodes(nodes).values())


def test_staged_session_applied_later(cluster):
    cluster.set_options(clear_stage=True)
    nodes = cluster.take(10)
    cluster.template("staged", nodes)
    cluster.session("staged", "staged", "boot", stage=True)
    cluster.wait_status("staged", "running", 20)
    status = cluster.api.get("/v2/sessions/staged/status").json()
    assert status["percent_staged"] == 100.0 and status["managed_components_count"] == 10
    for rec in cluster.components(nodes).values():
        assert rec["staged_state"]["session"] == "staged" and rec["enabled"] is False
    assert all(n["power"] == "off" for n in cluster.sim_nodes(nodes).values())  # nothing happened yet
    applied = cluster.api.post("/v2/applystaged", json={"xnames": nodes}).json()
    assert sorted(applied["succeeded"]) == sorted(nodes)
    status = cluster.wait_complete("staged")
    assert_all_successful(status, 10)
    assert_booted(cluster.components(nodes), nodes, "staged")


def test_node_that_ignores_soft_off_is_forced_off(cluster):
    nodes = cluster.take(10)
    boot(cluster, "forceful-boot", nodes)
    stubborn = nodes[:2]
    cluster.sim.set_node_faults(stubborn, ignore_soft_off=True)
    status = boot(cluster, "forceful-reboot", nodes, operation="reboot")
    assert_all_successful(status, 10)
    assert_booted(cluster.components(nodes), nodes, "forceful-reboot")
    assert set(cluster.xnames_sent("Force-Off")) & set(nodes) == set(stubborn)


def test_node_that_never_boots_is_retried_then_failed(cluster):
    cluster.set_options(default_retry_policy=2, max_boot_wait_time=3)
    nodes = cluster.take(10)
    broken = nodes[0]
    cluster.sim.set_node_faults([broken], fail_boot=True)
    status = boot(cluster, "never-boots", nodes)
    assert status["managed_components_count"] == 10
    assert status["percent_successful"] == 90.0 and status["percent_failed"] == 10.0
    assert status["error_summary"] == {RETRY_LIMIT_ERROR: {"count": 1, "list": broken}}
    records = cluster.components(nodes)
    assert_booted(records, nodes[1:], "never-boots")
    failed = records[broken]
    assert failed["status"]["status"] == "failed" and failed["enabled"] is False
    assert failed["error"] == RETRY_LIMIT_ERROR
    assert cluster.xnames_sent("On").count(broken) == 2  # two attempts, then failed


def test_node_that_never_powers_on_is_retried_then_failed(cluster):
    cluster.set_options(default_retry_policy=2, max_power_on_wait_time=2)
    nodes = cluster.take(5)
    broken = nodes[0]
    cluster.sim.set_node_faults([broken], fail_power_on=True)
    status = boot(cluster, "never-on", nodes)
    assert status["percent_failed"] == 20.0 and status["percent_successful"] == 80.0
    records = cluster.components(nodes)
    assert records[broken]["status"]["status"] == "failed" and records[broken]["last_action"]["failed"] is True
    assert cluster.xnames_sent("On").count(broken) == 2


def test_cfs_failure_and_a_node_missing_from_cfs(cluster):
    nodes = cluster.take(12)
    bad, missing = nodes[0], nodes[1]
    cluster.sim.set_node_faults([bad], fail_config=True)
    cluster.sim.set_node_faults([missing], missing_cfs=True)
    status = boot(cluster, "cfs-trouble", nodes)
    assert status["managed_components_count"] == 12
    assert status["error_summary"] == {CFS_FAILED: {"count": 1, "list": bad}, NO_CFS: {"count": 1, "list": missing}}
    assert status["percent_failed"] == round(100 / 12, 2)
    records = cluster.components(nodes)
    assert records[bad]["status"]["status"] == "failed" and records[bad]["enabled"] is False
    assert records[missing]["enabled"] is False and records[missing]["status"]["status_override"] == "on_hold"
    assert_booted(records, nodes[2:], "cfs-trouble")  # the others were not blocked (D27)


def test_failing_configuration_for_everyone(cluster):
    nodes = cluster.take(4)
    status = boot(cluster, "bad-config", nodes, configuration=FAILING_CONFIG)
    assert status["percent_failed"] == 100.0
    assert status["error_summary"] == {CFS_FAILED: {"count": 4, "list": ",".join(sorted(nodes))}}


def test_pcs_returning_500_for_a_while(cluster):
    cluster.set_options(default_retry_policy=5)  # a failed On (POST, not retried) costs an attempt
    nodes = cluster.take(10)
    cluster.sim.add_service_fault("pcs", status=500, seconds=4)
    status = boot(cluster, "pcs-500", nodes)
    assert_all_successful(status, 10)
    assert_booted(cluster.components(nodes), nodes, "pcs-500")
    assert any(r["status"] == 500 for r in cluster.sim.requests("pcs"))


def test_failed_bss_write_keeps_nodes_off_with_a_clear_error(cluster):  # D29
    nodes = cluster.take(6)
    cluster.sim.add_service_fault("bss", status=400, count=1, method="PUT")
    cluster.template("bss-fails", nodes)
    cluster.session("bss-fails", "bss-fails", "boot")
    prefix = "Error encountered setting BSS information: "
    cluster._wait(lambda: any(k.startswith(prefix) for k in
                              cluster.api.get("/v2/sessions/bss-fails/status").json()["error_summary"]), 20,
                  "the BSS error in the session's error summary")
    assert not set(nodes) & set(cluster.xnames_sent("On"))  # not powered on with stale boot parameters
    status = cluster.wait_complete("bss-fails")
    assert_all_successful(status, 6)  # the next attempt programs BSS and boots them
    assert all(cluster.xnames_sent("On").count(x) == 1 for x in nodes)


def test_newer_session_takes_over(cluster):
    """operators.md §6.8. The newer session boots other kernel parameters than the older one,
    so a shared node is only done when it runs the newer session's artifacts. (The older
    session's in-flight PCS `On` is not cancelled: it may power a node on with the older BSS
    entry just before the newer session writes its own. With equal artifacts that boot would
    rightly count as done, with the older token; with different ones the newer session sees
    the wrong artifacts and reboots the node, after max_boot_wait_time.)"""
    cluster.set_options(max_boot_wait_time=30)
    nodes = cluster.take(15)
    first, second = nodes[:10], nodes[5:]
    cluster.template("takeover-a", first)
    cluster.template("takeover-b", second, kernel_parameters="takeover=b")
    cluster.session("takeover-a", "takeover-a", "boot")
    cluster.wait_status("takeover-a", "running", 20)
    cluster.session("takeover-b", "takeover-b", "reboot")
    status_b = cluster.wait_complete("takeover-b", timeout=120)  # one extra reboot cycle if the race above happens
    status_a = cluster.wait_complete("takeover-a")
    assert_all_successful(status_b, 10)
    assert status_a["managed_components_count"] == 5 and status_a["percent_successful"] == 100.0
    records = cluster.components(nodes)
    assert_booted(records, nodes[:5], "takeover-a")
    assert_booted(records, second, "takeover-b")
    assert all("takeover=b" in artifacts(records[x], "actual_state")["kernel_parameters"] for x in second)
    assert not any("takeover=b" in artifacts(records[x], "actual_state")["kernel_parameters"] for x in nodes[:5])
    assert cluster.session_record("takeover-a")["components"] == ",".join(sorted(first))  # never rewritten


def test_zero_node_session(cluster):
    nodes = cluster.take(2)
    cluster.template("zero", nodes)
    cluster.session("zero", "zero", "boot", limit="x9999c0s0b0n0")
    status = cluster.wait_complete("zero", 20)
    record = cluster.session_record("zero")
    assert record["status"]["error"] == "No nodes were found to act upon."
    assert status["managed_components_count"] == 0 and status["percent_successful"] == 0.0
    assert all(rec["enabled"] is False and rec["session"] == "" for rec in cluster.components(nodes).values())
