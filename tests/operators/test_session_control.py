"""Session control on the real stack (docs/deviations.md "Session control"; issue 12 acceptance):
dry run == what setup does, rolling waves, max_failed, stop with cleanup, DELETE of a
running session, retry of the failed nodes.

One stack for the module (Redis, API, operators, 1,100 simulated nodes); each test
takes fresh nodes.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, List, Set

import pytest
import redis as redis_lib

from bos_server.operators.waves import NOT_STARTED
from bos_server.session_stop import STOPPED
from bos_sim.stack import json_request
from tests.cli.conftest import run_cli

from .stack import GOOD_CONFIG, Stack

pytestmark = pytest.mark.slow

WRITES = {"pcs": ("/transitions",), "bss": ("/bootparameters",), "cfs": ("/components",)}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory):
    running = Stack(tmp_path_factory.mktemp("control"), nodes=1100)
    yield running
    running.stop()


@pytest.fixture
def cluster(big: Stack) -> Stack:
    big.set_options()
    big.sim.clear_service_faults()
    big.sim.set_speed(10.0)
    return big


def last_seq(cluster: Stack, service: str) -> int:
    found = cluster.sim.requests(service)
    return found[-1]["seq"] if found else 0


def write_calls(cluster: Stack, nodes: Iterable[str], since: Dict[str, int]) -> List[Dict[str, Any]]:
    """PCS transitions, BSS and CFS writes after `since` that name one of `nodes`."""
    wanted = set(nodes)
    hits = []
    for service in WRITES:
        for req in cluster.sim.requests(service, since[service]):
            if req["method"] == "GET" or (service == "pcs" and not req["path"].endswith("/transitions")):
                continue
            if wanted & named_nodes(req):
                hits.append(req)
    return hits


def named_nodes(req: Dict[str, Any]) -> Set[str]:
    body = req.get("body") or {}
    if not isinstance(body, dict):
        return set()
    found = {loc.get("xname") for loc in body.get("location") or []}
    found |= set(body.get("hosts") or [])
    ids = (body.get("filters") or {}).get("ids") or ""
    found |= set(ids.split(",")) if ids else set()
    return found


def cfs_components(cluster: Stack, nodes: List[str]) -> Dict[str, Dict[str, Any]]:
    found = json_request("GET", cluster.sim.urls["cfs"] + "/components?ids=" + ",".join(nodes))
    return {c["id"]: c for c in found["components"]}


def wait(check: Any, timeout: float, what: str) -> None:
    Stack._wait(check, timeout, what)


def operators_have_moved_on(cluster: Stack, name: str) -> None:
    """A canary session on two fresh nodes runs from setup to completion: every operator
    has had passes (and its chance to act on the stopped nodes) since the stop returned."""
    canary = cluster.take(2)
    cluster.template(name, canary)
    cluster.session(name, name, "boot")
    cluster.wait_complete(name, timeout=60)


# -- dry run (acceptance 1) + rolling waves (acceptance 2) --

def test_dry_run_plan_is_what_the_session_does_and_waves_cap_in_flight(cluster):
    pool = cluster.take(512)
    disabled, locked, arm, limited = pool[500:503], pool[503:506], pool[506:509], pool[509:512]
    for xname in disabled:
        cluster.sim.patch_node(xname, enabled=False)
    for xname in locked:
        cluster.sim.patch_node(xname, locked=True)
    for xname in arm:
        cluster.sim.patch_node(xname, arch="ARM")
    cluster.template("waves", pool)
    body = {"name": "waves", "template_name": "waves", "operation": "boot", "max_in_flight": 50,
            "limit": "all,!" + ",!".join(limited)}
    client = redis_lib.Redis.from_url(cluster.stack.redis.url)
    keys_before = client.dbsize()
    since = {s: last_seq(cluster, s) for s in ("pcs", "bss", "cfs", "hsm", "s3", "tapms", "ims")}
    started = time.monotonic()
    resp = cluster.api.post("/v2/sessions", params={"dry_run": "true"}, json=body)
    assert resp.status_code == 200, resp.text
    plan = resp.json()
    # nothing written: Redis key count, no write to any service, only reads elsewhere
    assert client.dbsize() == keys_before
    assert cluster.api.get("/v2/sessions/waves").status_code == 404
    for service in ("pcs", "bss", "cfs"):
        assert cluster.sim.requests(service, since[service]) == [], service
    for service in ("hsm", "s3", "tapms", "ims"):
        for req in cluster.sim.requests(service, since[service]):
            assert req["method"] in ("GET", "HEAD") or req["path"].endswith("/State/Components/Query"), req
    reasons = {e["id"]: e["reason"] for e in plan["excluded"]}
    assert {x: reasons[x] for x in disabled} == dict.fromkeys(disabled, "disabled in HSM")
    assert {x: reasons[x] for x in locked} == dict.fromkeys(locked, "locked in HSM")
    assert {x: reasons[x] for x in limited} == dict.fromkeys(limited, "not in limit")
    assert all(reasons[x].startswith("wrong arch") for x in arm)
    planned = plan["boot_sets"]["compute"]
    assert planned["nodes"] == sorted(pool[:500]) and plan["summary"]["nodes"] == 500
    assert plan["summary"]["excluded"] == 12 and not plan["taken_over"]
    print(f"\ndry-run of a 512-node template: {time.monotonic() - started:.3f}s")

    cluster.session("waves", "waves", "boot", max_in_flight=50, limit=body["limit"])
    wait(lambda: cluster.api.get("/v2/sessions/waves/status").json().get("waiting_for_slot", 0) >= 400, 30,
         "the extended status to show the nodes waiting for a slot")
    status = cluster.wait_complete("waves", timeout=180)
    assert status["percent_successful"] == 100.0 and status["managed_components_count"] == 500
    assert status["waiting_for_slot"] == 0
    records = cluster.components(pool[:500])
    assert sorted(records) == planned["nodes"]
    for rec in records.values():  # the exact kernel parameters of the plan
        assert rec["desired_state"]["boot_artifacts"]["kernel_parameters"] == \
            planned["boot_artifacts"]["kernel_parameters"]
        assert rec["desired_state"]["configuration"] == planned["configuration"]
    peak = peak_in_flight(cluster, pool[:500], since["pcs"])
    print(f"peak nodes powering on or booting with max_in_flight=50: {peak}")
    assert 0 < peak <= 50


def test_waves_cap_in_flight_while_setup_still_writes_the_session_batch_by_batch(cluster):
    """Setup has each batch it writes looked at and powered on at once, while the session is still
    pending: the gate counts pending sessions too (it once counted running ones only: 100 of 300
    nodes in flight at once with max_in_flight=20, batches of 20)."""
    cluster.set_options(max_component_batch_size=10)
    pool = cluster.take(100)
    cluster.template("waves-setup", pool)
    since = last_seq(cluster, "pcs")
    cluster.session("waves-setup", "waves-setup", "boot", max_in_flight=10)
    status = cluster.wait_complete("waves-setup", timeout=240)
    assert status["percent_successful"] == 100.0 and status["managed_components_count"] == 100
    assert 0 < peak_in_flight(cluster, pool, since) <= 10


def peak_in_flight(cluster: Stack, nodes: List[str], since: int) -> int:
    """From the PCS request log (timestamps) and each node's boot time: a node is in flight
    from its first PCS transition request to the end of its boot."""
    first: Dict[str, float] = {}
    for req in cluster.sim.requests("pcs", since):
        if req["method"] == "POST" and req["path"].endswith("/transitions"):
            for xname in named_nodes(req) & set(nodes):
                first.setdefault(xname, req["time"])
    booted = {x: n["booted_time"] for x, n in cluster.sim_nodes(nodes).items()}
    assert set(first) == set(nodes)
    events = sorted([(t, 1) for t in first.values()] + [(booted[x], -1) for x in first])
    peak = current = 0
    for _t, step in events:  # at equal times a boot end comes first (-1 < 1)
        current += step
        peak = max(peak, current)
    return peak


# -- max_failed (acceptance 2) --

def test_max_failed_stops_starting_nodes_after_the_threshold(cluster):
    cluster.set_options(default_retry_policy=1, max_boot_wait_time=2)
    nodes = cluster.take(30)
    cluster.sim.set_node_faults(nodes, fail_boot=True)  # an image that never boots
    cluster.template("bad-image", nodes)
    since = last_seq(cluster, "pcs")
    cluster.session("bad-image", "bad-image", "boot", max_in_flight=5, max_failed=2)
    cluster.wait_complete("bad-image", timeout=90)
    record = cluster.session_record("bad-image")
    assert "max_failed=2" in record["status"]["error"]
    started = {x for r in cluster.sim.requests("pcs", since) if r["method"] == "POST" for x in named_nodes(r)}
    assert 3 <= len(started & set(nodes)) <= 10  # about one wave, never the whole session
    records = cluster.components(nodes)
    not_started = [x for x, r in records.items() if r["error"] == NOT_STARTED.format(2)]
    assert len(not_started) == 30 - len(started & set(nodes))
    assert all(r["enabled"] is False for r in records.values())


# -- stop with cleanup (acceptance 3) --

def test_stop_during_a_reboot_cleans_up_and_nothing_acts_afterwards(cluster):
    nodes = cluster.take(300)
    cluster.template("stop-base", nodes)
    cluster.session("stop-base", "stop-base", "boot")
    cluster.wait_complete("stop-base", timeout=120)
    cluster.sim.set_speed(2.0)  # slow enough to catch nodes in every phase
    cluster.session("stopped", "stop-base", "reboot", max_in_flight=100)  # some nodes not yet started
    on_seen = last_seq(cluster, "pcs")
    wait(lambda: any(r["body"].get("operation") == "On" for r in cluster.sim.requests("pcs", on_seen)
                     if r["method"] == "POST"), 60, "the first power-on")
    result = cluster.api.post("/v2/sessions/stopped/stop", json={}).json()
    after = {s: last_seq(cluster, s) for s in WRITES}
    assert result["stopped"] is True
    assert result["session"]["status"]["status"] == "complete"
    assert result["session"]["status"]["error"] == STOPPED
    cleanup = result["cleanup"]
    assert cleanup["disabled"] and cleanup["actions_still_running"] == 0
    records = cluster.components(nodes)
    assert not [x for x, r in records.items() if r["session"] == "stopped" and r["enabled"]]
    # CFS desired configuration cleared exactly where this session set it and CFS had not finished
    cfs = cfs_components(cluster, nodes)
    cleared = {x for x, c in cfs.items() if c["tags"].get("bos_session") == "stopped" and not c["desired_config"]}
    assert cleared == set(cleanup["configuration_cleared"]) and 0 < len(cleared) <= 100
    for xname, comp in cfs.items():
        if xname not in cleared:  # not started by "stopped": still the base session's configuration
            assert comp["desired_config"] == GOOD_CONFIG and comp["tags"]["bos_session"] == "stop-base", comp
    cluster.sim.set_speed(10.0)
    operators_have_moved_on(cluster, "after-stop")
    assert write_calls(cluster, nodes, after) == []  # no later PCS/BSS/CFS write for its nodes
    print(f"\nstop: {len(cleanup['disabled'])} disabled, {len(cleanup['configuration_cleared'])} CFS cleared, "
          f"{len(cleanup['mid_power_transition'])} mid power transition")
    again = cluster.api.post("/v2/sessions/stopped/stop", json={}).json()  # idempotent
    assert again["cleanup"]["disabled"] == cleanup["disabled"]
    status = cluster.api.get("/v2/sessions/stopped/status").json()
    assert status["cleanup"]["configuration_cleared"] == cleanup["configuration_cleared"]


def test_delete_of_a_running_session_stops_it_first(cluster):
    nodes = cluster.take(40)
    cluster.template("delete-running", nodes)
    cluster.sim.set_speed(2.0)
    cluster.session("delete-running", "delete-running", "boot")
    seen = last_seq(cluster, "pcs")
    wait(lambda: cluster.sim.requests("pcs", seen) and any(
        r["method"] == "POST" for r in cluster.sim.requests("pcs", seen)), 30, "the first power-on")
    assert cluster.api.delete("/v2/sessions/delete-running").status_code == 204
    after = {s: last_seq(cluster, s) for s in WRITES}
    assert cluster.api.get("/v2/sessions/delete-running").status_code == 404
    records = cluster.components(nodes)
    assert not [x for x, r in records.items() if r["enabled"]]
    cfs = cfs_components(cluster, nodes)
    assert not [x for x, c in cfs.items() if c["tags"].get("bos_session") == "delete-running"
                and c["desired_config"] and c.get("configuration_status") != "configured"]
    cluster.sim.set_speed(10.0)
    operators_have_moved_on(cluster, "after-delete")
    assert write_calls(cluster, nodes, after) == []


# -- retry (acceptance 4) --

def test_retry_reruns_exactly_the_failed_nodes(cluster):
    cluster.set_options(default_retry_policy=1, max_boot_wait_time=2)
    nodes = cluster.take(12)
    broken = nodes[:3]
    cluster.sim.set_node_faults(broken, fail_boot=True)
    cluster.template("flaky", nodes)
    cluster.session("flaky", "flaky", "boot")
    cluster.wait_complete("flaky", timeout=60)
    url = ["--url", cluster.api_server.url]
    status = run_cli(url + ["sessions", "status", "flaky"])
    assert "Retry the 3 failed nodes with: bos sessions retry flaky" in status.out
    cluster.sim.set_node_faults(broken, replace=True)  # repaired
    cluster.set_options()
    retried = run_cli(url + ["sessions", "retry", "flaky", "--watch", "--interval", "0.5"])
    assert retried.code == 0, retried.out + retried.err
    record = cluster.session_record("flaky-retry-1")
    assert record["limit"] == ",".join(sorted(broken)) and record["components"] == ",".join(sorted(broken))
    assert record["operation"] == "boot" and record["template_name"] == "flaky"
    again = run_cli(url + ["sessions", "retry", "flaky-retry-1"])
    assert again.code != 0 and "no failed nodes" in again.err and len(again.err.strip().splitlines()) == 1
