"""Fault injection (services.md §9.3): seeded per-node faults and per-service failures."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from bos_sim.determinism import jittered
from bos_sim.faults import rate_faults
from bos_sim.inventory import node_xname
from bos_sim.stack import Simulator
from tests.sim.helpers import Services, eventually, problem_detail, start_sim

RATES = ["--fail-boot-rate", "0.2", "--fail-cfs-rate", "0.2", "--fail-soft-off-rate", "0.2",
         "--fail-power-on-rate", "0.1", "--pcs-error-rate", "0.05"]


def test_same_seed_same_faulty_nodes_other_seed_others(sim_dir: Path) -> None:
    """Faults are a pure function of (seed, xname): the process agrees with a local computation."""
    simulator = start_sim(sim_dir, nodes=200, seed=7, extra_args=RATES)
    try:
        reported = simulator.faults()["nodes"]
    finally:
        assert simulator.stop() == 0
    rates = {"fail_boot": 0.2, "fail_config": 0.2, "ignore_soft_off": 0.2, "fail_power_on": 0.1, "pcs_error": 0.05}

    def expected(seed: int) -> dict:
        chosen = {}
        for index in range(200):
            faults = rate_faults(seed, node_xname(index), rates, "permission denied - system credentials failed")
            if faults is not None:
                chosen[node_xname(index)] = faults.as_dict()
        return chosen

    assert reported == expected(7)
    assert expected(7) != expected(8)
    boot_failures = [x for x, f in reported.items() if f.get("fail_boot")]
    assert 15 <= len(boot_failures) <= 65  # about 20 % of 200


def test_jitter_is_deterministic_and_bounded() -> None:
    delays = [jittered(3, 5.0, 0.1, "boot", node_xname(i), 1) for i in range(100)]
    assert delays == [jittered(3, 5.0, 0.1, "boot", node_xname(i), 1) for i in range(100)]
    assert all(4.5 <= d <= 5.5 for d in delays) and len(set(delays)) > 90


def test_no_rates_no_faults(sim: Simulator) -> None:
    assert sim.faults()["nodes"] == {}


def test_service_status_for_n_requests_only(sim: Simulator, svc: Services) -> None:
    rule = sim.add_service_fault("hsm", status=503, count=2)
    assert rule["status"] == 503
    for _ in range(2):
        problem_detail(svc.get("hsm", "/groups"), 503)
    assert svc.get("hsm", "/groups").status_code == 200
    assert sim.faults()["services"] == []


def test_service_status_only_for_a_path_prefix_and_method(sim: Simulator, svc: Services) -> None:
    sim.add_service_fault("pcs", status=500, path_prefix="/power-status", method="POST", count=5)
    try:
        problem_detail(svc.post("pcs", "/power-status", json={"xname": [node_xname(0)]}), 500)
        assert svc.get("pcs", "/transitions").status_code == 200
        assert svc.get("pcs", "/power-status", params={"xname": node_xname(0)}).status_code == 200
    finally:
        sim.clear_service_faults()


def test_service_status_for_t_seconds(sim: Simulator, svc: Services) -> None:
    sim.add_service_fault("cfs", status=503, seconds=0.5)
    assert svc.get("cfs", "/components").status_code == 503
    eventually(lambda: svc.get("cfs", "/components").status_code == 200, timeout=5, what="fault expiry")


def test_service_timeout_stalls_the_request(sim: Simulator, svc: Services) -> None:
    sim.add_service_fault("ims", timeout=1, count=1)
    started = time.monotonic()
    try:
        svc.http.get(svc.urls["ims"] + "/images", timeout=0.3)
        raise AssertionError("expected a read timeout")
    except requests.exceptions.ReadTimeout:
        pass
    assert time.monotonic() - started < 0.9
    assert svc.get("ims", "/images").status_code == 200


def test_tapms_faults_use_the_message_shape(sim: Simulator, svc: Services) -> None:
    sim.add_service_fault("tapms", status=500, count=1)
    resp = svc.get("tapms", "/tenants/vcluster-blue")
    assert resp.status_code == 500 and set(resp.json()) == {"message"}


def test_bad_fault_requests_are_rejected(sim: Simulator) -> None:
    for body in ({"service": "nope", "status": 500}, {"service": "hsm"}, {"service": "hsm", "status": 99}):
        resp = requests.post(sim.urls["control"] + "/faults/services", json=body, timeout=5)
        assert resp.status_code == 400, body
    resp = requests.post(sim.urls["control"] + "/faults/nodes",
                         json={"ids": [node_xname(0)], "faults": {"explode": True}}, timeout=5)
    assert resp.status_code == 400
