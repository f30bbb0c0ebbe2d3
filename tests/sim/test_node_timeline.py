"""Simulated nodes (services.md §9.2): power, boot, report to BOS, CFS state reporter."""

from __future__ import annotations

import time
from typing import List

from bos_sim.inventory import DEFAULT_IMAGE_ID, node_xname
from bos_sim.stack import Simulator
from tests.sim.helpers import FAST, FakeBos, Services, eventually

KERNEL = f"s3://boot-images/{DEFAULT_IMAGE_ID}/kernel"
INITRD = f"s3://boot-images/{DEFAULT_IMAGE_ID}/initrd"
PARAMS = "console=ttyS0,115200 spire_join_token=${SPIRE_JOIN_TOKEN} quiet bos_update_frequency=4h"


def program(svc: Services, xname: str, kernel: str = KERNEL) -> str:
    resp = svc.put("bss", "/bootparameters", json={"hosts": [xname], "params": PARAMS, "kernel": kernel,
                                                   "initrd": INITRD})
    return resp.headers["BSS-Referral-Token"]


def transition(svc: Services, operation: str, xnames: List[str]) -> str:
    body = {"operation": operation, "taskDeadlineMinutes": 1, "location": [{"xname": x} for x in xnames]}
    resp = svc.post("pcs", "/transitions", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["transitionID"]


def task_status(svc: Services, transition_id: str) -> str:
    return svc.get("pcs", f"/transitions/{transition_id}").json()["tasks"][0]["taskStatus"]


def cfs_prepare(svc: Services, xname: str, config: str) -> None:
    """What the power-on operator does before PCS On (operators.md §5.6 step 3)."""
    svc.patch("cfs", "/components", json={"patch": {"enabled": False, "desired_config": config,
                                                    "tags": {"bos_session": "s"}, "state": []},
                                          "filters": {"ids": xname}})


def test_s9_2_power_on_boot_report_and_configure(sim: Simulator, svc: Services, fake_bos: FakeBos) -> None:
    xname = node_xname(0)
    token = program(svc, xname)
    cfs_prepare(svc, xname, "compute-23.4.0")
    started = time.monotonic()
    transition(svc, "On", [xname])
    report = eventually(lambda: fake_bos.for_node(xname), what="report")[0]
    # power-on 2 s + boot 5 s, scaled, minus at most 10 % jitter
    assert report["time"] - started >= 0.9 * 7 / FAST
    assert report["path"] == f"/v2/components/{xname}"
    assert report["body"] == {"id": xname, "actual_state": {"bss_token": token}}
    assert report["headers"]["Authorization"].startswith("Bearer ")
    node = eventually(lambda: (n := sim.node(xname))["cfs"]["configuration_status"] == "configured" and n,
                      what="configured")
    assert node["power"] == "on" and node["booted"] and node["reported_token"] == token
    words = node["cmdline"].split()
    assert words[0] == "initrd=initrd" and f"bss_referral_token={token}" in words and f"xname={xname}" in words
    assert node["cfs"]["enabled"] is True


def test_s9_2_power_off_ends_the_boot(sim: Simulator, svc: Services, fake_bos: FakeBos) -> None:
    xname = node_xname(1)
    program(svc, xname)
    transition(svc, "On", [xname])
    eventually(lambda: sim.node(xname)["reported_token"], what="report")
    transition_id = transition(svc, "Soft-Off", [xname])
    eventually(lambda: task_status(svc, transition_id) == "succeeded", what="soft-off confirmed")
    node = sim.node(xname)
    assert node["power"] == "off" and not node["booted"] and node["cmdline"] == ""
    # Nothing is scheduled for the node any more (no boot, no reporter: it is not booted),
    # so no report can follow; asserted from its state instead of by waiting and hoping.
    assert node["pending"] == ""


def test_s9_2_node_without_kernel_stays_on_without_booting(sim: Simulator, svc: Services, fake_bos: FakeBos) -> None:
    xname = node_xname(2)
    program(svc, xname, kernel="")
    transition_id = transition(svc, "On", [xname])
    eventually(lambda: task_status(svc, transition_id) == "succeeded", what="on")
    node = sim.node(xname)  # powered on with nothing to boot: no boot is scheduled (pending "")
    assert node["power"] == "on" and node["pending"] == "" and not node["booted"] and fake_bos.for_node(xname) == []


def test_reporter_retries_409_and_5xx_with_back_off(sim: Simulator, svc: Services, fake_bos: FakeBos) -> None:
    xname = node_xname(3)
    fake_bos.plan[xname] = [409, 503]
    program(svc, xname)
    transition(svc, "On", [xname])
    eventually(lambda: sim.node(xname)["report_status"] == "reported", what="report accepted")
    patches = fake_bos.for_node(xname)
    assert [p["status"] for p in patches] == [409, 503, 200]
    # back-off 2 s then 4 s (reporter.md §5), scaled
    assert patches[1]["time"] - patches[0]["time"] >= 0.9 * 2 / FAST
    assert patches[2]["time"] - patches[1]["time"] >= 0.9 * 4 / FAST


def test_ignored_soft_off_fails_at_the_deadline_and_force_off_works(sim: Simulator, svc: Services) -> None:
    xname = node_xname(4)
    sim.set_node_faults([xname], ignore_soft_off=True)
    program(svc, xname)
    transition(svc, "On", [xname])
    eventually(lambda: sim.node(xname)["booted"], what="boot")
    soft = transition(svc, "Soft-Off", [xname])
    eventually(lambda: task_status(svc, soft) == "failed", timeout=60 / FAST + 5, what="deadline")
    assert sim.node(xname)["power"] == "on"
    transition(svc, "Force-Off", [xname])
    eventually(lambda: sim.node(xname)["power"] == "off", what="force off")


def test_failing_power_on_and_failing_boot(sim: Simulator, svc: Services, fake_bos: FakeBos) -> None:
    dead, hang = node_xname(5), node_xname(6)
    sim.set_node_faults([dead], fail_power_on=True)
    sim.set_node_faults([hang], fail_boot=True)
    program(svc, hang)
    on_dead = transition(svc, "On", [dead])
    on_hang = transition(svc, "On", [hang])
    eventually(lambda: task_status(svc, on_dead) == "failed", what="power-on failure")
    eventually(lambda: task_status(svc, on_hang) == "succeeded", what="power-on")
    assert sim.node(dead)["power"] == "off" and sim.node(dead)["pending"] == ""
    hung = sim.node(hang)  # on, and no boot scheduled: it will never boot or report
    assert hung["power"] == "on" and hung["pending"] == "" and not hung["booted"] and fake_bos.for_node(hang) == []


def test_boot_to_a_different_cmdline_reports_that_token(sim: Simulator, svc: Services, fake_bos: FakeBos) -> None:
    xname = node_xname(8)
    sim.set_node_faults([xname], boot_cmdline=f"quiet xname={xname} bss_referral_token=stale-token")
    program(svc, xname)
    transition(svc, "On", [xname])
    report = eventually(lambda: fake_bos.for_node(xname), what="report")[0]
    assert report["body"]["actual_state"]["bss_token"] == "stale-token"


def test_failing_configuration_ends_failed(sim: Simulator, svc: Services) -> None:
    xname, other = node_xname(9), node_xname(10)
    sim.set_node_faults([other], fail_config=True)
    for node, config in ((xname, "fail-config"), (other, "compute-23.4.0")):
        program(svc, node)
        cfs_prepare(svc, node, config)
    transition(svc, "On", [xname, other])
    for node in (xname, other):
        eventually(lambda n=node: sim.node(n)["cfs"]["configuration_status"] == "failed", what=f"{node} failed")
        assert sim.node(node)["cfs"]["error_count"] == 3


def test_missing_from_cfs_skips_the_state_reporter(sim: Simulator, svc: Services) -> None:
    xname = node_xname(11)
    sim.set_node_faults([xname], missing_cfs=True)
    assert svc.get("cfs", f"/components/{xname}").status_code == 404
    ids = [c["id"] for c in svc.get("cfs", "/components").json()["components"]]
    assert xname not in ids
