"""`bos ... --watch` end to end: the simulated cluster, the real operators, the real API.

Select with `pytest -m e2e`. One stack for the module; each scenario takes
fresh nodes so the scenarios do not see each other's nodes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from bos_shared.options import DEFAULTS
from bos_sim.stack import ApiServer, Operators, RedisServer, Simulator, free_port
from tests.support.client import Api

from .conftest import MANIFEST, run_cli

pytestmark = pytest.mark.e2e

NODES = 24
GOOD_CONFIG = "compute-23.4.0"
# BOS's own waits are real seconds; the simulator runs 10x faster than a real cluster.
FAST_OPTIONS = {"polling_frequency": 5, "discovery_frequency": 300, "max_power_off_wait_time": 2,
                "max_power_on_wait_time": 3, "max_boot_wait_time": 4, "default_retry_policy": 3}
BOS = str(Path(sys.executable).parent / "bos")


class Cluster:
    def __init__(self, workdir: Path) -> None:
        self.procs: List[Any] = []
        try:
            self.redis = RedisServer(workdir / "redis")
            self.procs.append(self.redis)
            port = free_port()
            self.sim = Simulator(workdir / "sim", nodes=NODES, speed=10.0, bos_url=f"http://127.0.0.1:{port}/v2")
            self.procs.append(self.sim)
            self.server = ApiServer(workdir / "api", self.redis.url, port=port, env=self.sim.env())
            self.procs.append(self.server)
            self.api = Api(self.server.url)
            assert self.api.patch("/v2/options", json={**DEFAULTS, **FAST_OPTIONS}).status_code == 200
            self.operators = Operators(workdir / "ops", self.server.url + "/v2", self.redis.url, self.sim.urls,
                                       env=self.sim.env())
            self.procs.append(self.operators)
            self.pool = [n["xname"] for n in self.sim.nodes() if n["role"] == "Compute"]
            self._wait_discovered()
        except BaseException:
            self.stop()
            raise

    def _wait_discovered(self) -> None:
        deadline = time.monotonic() + 30
        while len(self.api.get("/v2/components").json()) < NODES:
            assert time.monotonic() < deadline, "discovery did not import the simulated nodes"
            time.sleep(0.2)

    def take(self, count: int) -> List[str]:
        taken, self.pool = self.pool[:count], self.pool[count:]
        assert len(taken) == count
        return taken

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("cli-e2e"))
    yield running
    running.stop()


def _template(cluster: Cluster, name: str, nodes: List[str]) -> None:
    result = run_cli(["--url", cluster.server.url, "sessiontemplates", "create", name, "--path", MANIFEST,
                      "--node-list", ",".join(nodes), "--cfs-configuration", GOOD_CONFIG,
                      "--rootfs-provider", "sbps", "--rootfs-provider-passthrough", "sbps:v1:x"])
    assert result.code == 0, result.err


def test_boot_with_watch_succeeds_and_exits_0(cluster: Cluster) -> None:
    nodes = cluster.take(6)
    _template(cluster, "e2e-boot", nodes)
    # PCS holds the `On` for 1.5 s (three polls) with the nodes already recorded as powering on,
    # so the watch sees them there however its polls fall (at 10x the boot can finish in between).
    cluster.sim.add_service_fault("pcs", delay=1.5, count=1, method="POST", path_prefix="/transitions")
    try:
        result = run_cli(["--url", cluster.server.url + "/apis/bos", "sessions", "create", "--template-name",
                          "e2e-boot", "--operation", "boot", "--name", "e2e-boot", "--watch", "--interval", "0.5",
                          "--timeout", "120"])
    finally:
        cluster.sim.clear_service_faults()
    assert result.code == 0, result.out + result.err
    assert "Status       complete" in result.out
    assert "Succeeded    6/6 (100.0%)" in result.out
    assert "No failed nodes." in result.out
    progress = [line for line in result.out.splitlines() if line.startswith("[")]
    assert progress[-1].split("] ", 1)[1].startswith("e2e-boot complete: 6/6 done (100%), succeeded 6, failed 0")
    assert any("powering_on 6" in line for line in progress[:-1]), progress  # saw the nodes powering on
    records = cluster.api.get("/v2/components", params={"session": "e2e-boot"}).json()
    assert {r["status"]["status"] for r in records} == {"stable"}


def test_watch_of_a_session_with_a_failing_node_lists_it_and_exits_4(cluster: Cluster) -> None:
    nodes = cluster.take(4)
    bad = nodes[0]
    cluster.sim.set_node_faults([bad], fail_config=True)
    _template(cluster, "e2e-fail", nodes)
    created = run_cli(["--url", cluster.server.url, "sessions", "create", "--template-name", "e2e-fail",
                       "--operation", "boot", "--name", "e2e-fail"])
    assert created.code == 0, created.err
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOS_")}
    env["BOS_URL"] = cluster.server.url
    watched = subprocess.run([BOS, "sessions", "watch", "e2e-fail", "--interval", "0.5", "--timeout", "120"],
                             capture_output=True, text=True, env=env, timeout=180)
    assert watched.returncode == 4, watched.stdout + watched.stderr
    assert "Failed       1/4 (25.0%)" in watched.stdout
    assert "Failed nodes (1):" in watched.stdout
    row = [line for line in watched.stdout.splitlines() if line.startswith(bad)][-1]
    error = cluster.api.get(f"/v2/components/{bad}").json()["error"]
    assert error and error in row
