"""Imported data run a session on the simulated cluster (issue 16 acceptance).

A reference BOS's Redis holds the site: options, a session template for the
compute nodes, the nodes' components as the reference left them after booting
them, and the token records of those boots. After `bos-import --apply` our
operators start on the imported store, and a reboot from the imported template
completes on every node.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis as redis_lib

from bos_sim import stack as processes
from tests.support.client import Api

from .conftest import run_json, server_url
from .reference_fixture import COMPUTE_SET, MANIFEST, SHAPES, TOKENS, scoped_key

pytestmark = pytest.mark.e2e
FAST = {"polling_frequency": 5, "discovery_frequency": 300, "max_power_off_wait_time": 2,
        "max_power_on_wait_time": 3, "max_boot_wait_time": 4, "default_retry_policy": 3}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[processes.Stack]:
    running = processes.Stack(tmp_path_factory.mktemp("import-sim"), nodes=8, speed=10.0, operators=False)
    yield running
    running.stop()


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_a_reboot_from_imported_data_completes_on_the_simulator(stack: processes.Stack, source: Any,
                                                                tmp_path: Path) -> None:
    nodes = sorted(n["xname"] for n in stack.sim.nodes() if n["role"] == "Compute")[:4]
    assert len(nodes) == 4
    dbs = {db: redis_lib.Redis.from_url(server_url(source.url) + f"/{db}") for db in range(6)}
    for client in dbs.values():
        client.flushdb()
    dbs[0].set("options", json.dumps(FAST))
    template = {"name": "site-compute", "tenant": None, "enable_cfs": True, "cfs": {"configuration": "compute-23.4.0"},
                "boot_sets": {"compute": {**COMPUTE_SET, "node_list": nodes, "path": MANIFEST}}}
    del template["boot_sets"]["compute"]["node_roles_groups"]
    dbs[2].set(scoped_key(None, "site-compute"), json.dumps(template))
    booted = next(make for name, make, _status in SHAPES if name == "booted")
    for n, xname in enumerate(nodes):
        dbs[1].set(xname, json.dumps({"id": xname, **booted(n)}))
    for token, record in TOKENS.items():
        dbs[4].set(token, json.dumps(record))
    for client in dbs.values():
        client.close()

    code, report = run_json(server_url(source.url), stack.redis.url, "--apply")
    assert code == 0 and not report["rejected"], report
    operators = stack.adopt(processes.Operators(tmp_path / "ops", stack.bos_url, stack.redis.url, stack.sim.urls,
                                                env=stack.sim.env()))
    api = Api(stack.api.url)
    resp = api.post("/v2/sessions", json={"name": "after-import", "template_name": "site-compute",
                                          "operation": "reboot"})
    assert resp.status_code == 201, resp.text
    _wait(lambda: api.get("/v2/sessions/after-import").json()["status"]["status"] == "complete", 90,
          "the session to complete")
    status = api.get("/v2/sessions/after-import/status").json()
    assert status["managed_components_count"] == 4 and status["percent_successful"] == 100.0, status
    for record in api.get("/v2/components", params={"ids": ",".join(nodes)}).json():
        assert record["session"] == "after-import" and record["status"]["status"] == "stable", record
        assert record["actual_state"]["bss_token"] == record["desired_state"]["bss_token"] not in TOKENS
    assert all(n["booted"] and n["power"] == "on" for n in stack.sim.nodes(nodes))
    assert operators.stop() == 0
