"""Launcher pieces (stack.Simulator), inventory files, the real reporter, clean shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from bos_sim.inventory import DEFAULT_IMAGE_ID, generate, node_xname
from bos_sim.reporting import REPORTER_EXE
from bos_sim.s3 import client_for
from bos_sim.stack import BIN, ManagedProcess, Operators, Simulator
from tests.sim.helpers import FakeBos, eventually, start_sim

INVENTORY = """
delays: {power_on: 1, boot: 1}
nodes:
  - {xname: x3000c0s19b1n0, nid: 100, role: Compute, arch: X86, power: on}
  - {xname: x3000c0s19b2n0, nid: 101, role: Application, subrole: UAN, arch: null,
     faults: {ignore_soft_off: true}}
  - {xname: x3000c0s19b3n0, nid: 102, locked: true, enabled: false}
components:
  - {xname: x3000c0s19b1, type: NodeBMC}
groups:
  - {label: rack, members: [x3000c0s19b1n0, x3000c0s19b2n0]}
partitions:
  - {name: p9, members: {ids: [x3000c0s19b3n0]}}
tenants:
  - {name: green, uuid: 11111111-2222-4333-8444-555555555555, xnames: [x3000c0s19b3n0]}
images:
  - {id: img-arm, name: arm-image, arch: aarch64, initrd: false, boot_parameters: null}
cfs_configurations:
  - ok-config
  - {name: bad-config, fails: true}
"""


def test_env_points_clients_at_the_simulator(sim: Simulator) -> None:
    env = sim.env()
    assert set(env) == {"BOS_HSM_URL", "BOS_PCS_URL", "BOS_BSS_URL", "BOS_CFS_URL", "BOS_IMS_URL", "BOS_TAPMS_URL",
                        "S3_PROTOCOL", "S3_GATEWAY", "S3_ACCESS_KEY", "S3_SECRET_KEY"}
    assert env["BOS_HSM_URL"].endswith("/hsm/v2") and env["BOS_TAPMS_URL"].endswith("/v1alpha3")
    s3 = client_for(f"{env['S3_PROTOCOL']}://{env['S3_GATEWAY']}")
    assert s3.head_object(Bucket="boot-images", Key=f"{DEFAULT_IMAGE_ID}/manifest.json")["ContentLength"] > 0
    assert json.loads(sim.urls_file.read_text()) == sim.urls
    assert set(sim.urls) == {"hsm", "pcs", "bss", "cfs", "ims", "s3", "tapms", "control"}


def test_inventory_file_is_served(sim_dir: Path) -> None:
    path = sim_dir / "inventory.yaml"
    path.write_text(INVENTORY)
    simulator = start_sim(sim_dir, inventory=path)
    try:
        urls = simulator.urls
        comps = requests.get(urls["hsm"] + "/State/Components", timeout=10).json()["Components"]
        by_id = {c["ID"]: c for c in comps}
        assert by_id["x3000c0s19b1n0"]["NID"] == 100 and by_id["x3000c0s19b1n0"]["State"] == "On"
        assert "Arch" not in by_id["x3000c0s19b2n0"] and by_id["x3000c0s19b2n0"]["SubRole"] == "UAN"
        assert by_id["x3000c0s19b3n0"]["Enabled"] is False and by_id["x3000c0s19b1"]["Type"] == "NodeBMC"
        locks = requests.get(urls["hsm"] + "/locks/status", params={"type": "Node", "locked": "true"}, timeout=10)
        assert [c["ID"] for c in locks.json()["Components"]] == ["x3000c0s19b3n0"]
        assert requests.get(urls["tapms"] + "/tenants/11111111-2222-4333-8444-555555555555", timeout=10).ok
        assert requests.get(urls["ims"] + "/images/img-arm", timeout=10).json()["arch"] == "aarch64"
        manifest = json.loads(client_for(urls["s3"]).get_object(Bucket="boot-images", Key="img-arm/manifest.json")
                              ["Body"].read())
        assert [a["type"].rsplit(".", 1)[-1] for a in manifest["artifacts"]] == ["kernel", "squashfs"]
        assert simulator.faults()["nodes"] == {"x3000c0s19b2n0": {"ignore_soft_off": True}}
        configs = requests.get(urls["cfs"] + "/configurations", timeout=10).json()["configurations"]
        assert [c["name"] for c in configs] == ["bad-config", "ok-config"]
    finally:
        assert simulator.stop() == 0


def test_bad_inventory_exits_2(sim_dir: Path) -> None:
    path = sim_dir / "bad.yaml"
    path.write_text("nodes:\n  - {xname: not-an-xname}\n")
    result = subprocess.run([str(BIN / "bos-sim"), "--inventory", str(path)], capture_output=True, timeout=60)
    assert result.returncode == 2 and b"not a valid xname" in result.stderr


def test_generated_inventory_shape() -> None:
    inv = generate(1000, seed=1)
    assert [n.nid for n in inv.nodes] == list(range(1, 1001))
    assert len({n.xname for n in inv.nodes}) == 1000
    assert inv.nodes[0].xname == "x1000c0s0b0n0" and inv.nodes[256].xname == "x1001c0s0b0n0"
    assert sum(n.subrole == "UAN" for n in inv.nodes) == 20
    assert sum(n.arch is None for n in inv.nodes) == 49
    assert {g.label for g in inv.groups} >= {"compute", "uan"} and inv.partitions[0].name == "p1"
    assert inv.tenants[0].name == "vcluster-blue" and len(inv.tenants[0].xnames) == 4
    assert {c.name: c.fails for c in inv.configurations}["fail-config"] is True


def test_sigint_also_stops_cleanly(sim_dir: Path) -> None:
    simulator = start_sim(sim_dir, nodes=2)
    simulator.proc.send_signal(signal.SIGINT)
    assert simulator.proc.wait(20) == 0
    simulator.stop()


@pytest.mark.skipif(not REPORTER_EXE.exists(), reason="bos-reporter is not installed")
def test_real_reporter_runs_for_the_first_k_nodes(sim_dir: Path) -> None:
    bos = FakeBos()
    simulator = start_sim(sim_dir, nodes=4, bos_url=bos.url, real_reporters=1)
    try:
        xnames = [node_xname(0), node_xname(1)]
        requests.put(simulator.urls["bss"] + "/bootparameters", timeout=10,
                     json={"hosts": xnames, "params": "quiet", "kernel": "s3://b/k", "initrd": ""})
        requests.post(simulator.urls["pcs"] + "/transitions", timeout=10,
                      json={"operation": "On", "location": [{"xname": x} for x in xnames]})
        def reported() -> list:
            found = [n["report_status"] for n in simulator.nodes(xnames) if n["report_status"].startswith("reported")]
            return found if len(found) == 2 else []

        assert sorted(eventually(reported, timeout=30, what="two reports")) == ["reported", "reported (real reporter)"]
        agents = {p["headers"].get("User-Agent", "").split("/")[0] for p in bos.patches}
        assert len(agents) == 2  # one from the simulator's HTTP client, one from the real program
    finally:
        assert simulator.stop() == 0
        bos.stop()


def test_missing_reporter_executable_is_an_error_of_that_node(sim_dir: Path) -> None:
    bos = FakeBos()
    simulator = start_sim(sim_dir, nodes=2, bos_url=bos.url, real_reporters=1,
                          env={"BOS_SIM_REPORTER_EXE": str(sim_dir / "no-such-reporter")})
    try:
        xname = node_xname(0)
        requests.put(simulator.urls["bss"] + "/bootparameters", timeout=10,
                     json={"hosts": [xname], "params": "quiet", "kernel": "s3://b/k", "initrd": ""})
        requests.post(simulator.urls["pcs"] + "/transitions", timeout=10,
                      json={"operation": "On", "location": [{"xname": xname}]})
        status = eventually(lambda: simulator.node(xname)["report_status"], what="report status")
        assert status.startswith("error:") and "not found" in status
    finally:
        assert simulator.stop() == 0
        bos.stop()


def test_operators_that_are_not_ready_in_time_are_stopped_not_left_running(tmp_path: Path) -> None:
    """A start that times out stops the process: left running (its parent never adopts it), it
    loaded the machine and acted on later tests' components. Its liveness file is written
    elsewhere, so readiness never comes; the bound is short because the time-out is the point."""
    urls = {name: "http://127.0.0.1:9" for name in ("hsm", "pcs", "bss", "cfs", "ims", "s3", "tapms")}
    started: list = []
    real_init = ManagedProcess.__init__

    def init(self: ManagedProcess, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        started.append(self.proc)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ManagedProcess, "__init__", init)
        with pytest.raises(TimeoutError, match="bos-operators was not ready after 2s"):
            Operators(tmp_path / "ops", "http://127.0.0.1:9/v2", "redis://127.0.0.1:9", urls,
                      env={"BOS_LIVENESS_FILE": str(tmp_path / "elsewhere")}, ready_timeout=2)
    assert len(started) == 1 and started[0].poll() is not None
