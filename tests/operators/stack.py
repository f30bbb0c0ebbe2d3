"""A running BOS stack for the lifecycle tests: Redis, the API, the simulator, the operators.

One stack per test module; each test takes its own fresh nodes from the pool,
so scenarios do not see each other's nodes and need no restart in between.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from bos_shared.options import DEFAULTS
from bos_sim import stack as processes
from tests.support.client import Api

IMAGE = "9e3c75e1-ac42-42c7-873c-e758048897d6"
MANIFEST = f"s3://boot-images/{IMAGE}/manifest.json"
GOOD_CONFIG = "compute-23.4.0"
FAILING_CONFIG = "fail-config"
# Fast scenario timing: BOS's own waits are real seconds, the simulator runs 10x.
FAST_OPTIONS = {"polling_frequency": 5, "discovery_frequency": 300, "max_power_off_wait_time": 2,
                "max_power_on_wait_time": 3, "max_boot_wait_time": 4, "default_retry_policy": 3}


class Stack:
    """`replicas`: one `bos-operators` process per entry, each running the named operators
    (`--only`; "" = all ten), all with `operator_args`."""

    def __init__(self, workdir: Path, nodes: int, speed: float = 10.0, replicas: Sequence[str] = ("",),
                 operator_args: Sequence[str] = ()) -> None:
        # The operators start after the fast options are set, so they never act on defaults.
        self.stack = processes.Stack(workdir, nodes=nodes, speed=speed, operators=False,
                                     sim_args=["--record-limit", "50000"])
        try:
            self.sim, self.api_server = self.stack.sim, self.stack.api
            self.api = Api(self.api_server.url)
            self.set_options()
            self.replicas = [self.stack.adopt(processes.Operators(
                workdir / f"ops{i}", self.stack.bos_url, self.stack.redis.url, self.sim.urls, env=self.sim.env(),
                extra_args=[*(["--only", only] if only else []), *operator_args]))
                for i, only in enumerate(replicas)]
            self.operators = self.replicas[0]
            self.pool = [n["xname"] for n in self.sim.nodes() if n["role"] == "Compute"]
            self._wait(lambda: len(self.api.get("/v2/components").json()) >= nodes, 30, "discovery")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> Dict[str, int]:
        return self.stack.stop()

    # -- helpers for scenarios --
    def take(self, count: int) -> List[str]:
        """Fresh compute nodes no earlier scenario has touched."""
        taken, self.pool = self.pool[:count], self.pool[count:]
        assert len(taken) == count, "the simulated cluster is too small for the scenarios"
        return taken

    def set_options(self, **overrides: Any) -> None:
        resp = self.api.patch("/v2/options", json={**DEFAULTS, **FAST_OPTIONS, **overrides})
        assert resp.status_code == 200, resp.text

    def template(self, name: str, nodes: Sequence[str], configuration: str = GOOD_CONFIG, **boot_set: Any) -> None:
        body = {"boot_sets": {"compute": {"path": MANIFEST, "type": "s3", "node_list": list(nodes),
                                          "rootfs_provider": "sbps", "rootfs_provider_passthrough": "sbps:v1:x",
                                          **boot_set}}}
        if configuration:
            body["cfs"] = {"configuration": configuration}
        resp = self.api.put(f"/v2/sessiontemplates/{name}", json=body)
        assert resp.status_code == 200, resp.text

    def session(self, name: str, template: str, operation: str = "boot", **extra: Any) -> Dict[str, Any]:
        resp = self.api.post("/v2/sessions", json={"name": name, "template_name": template,
                                                   "operation": operation, **extra})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def session_record(self, name: str) -> Dict[str, Any]:
        return self.api.get(f"/v2/sessions/{name}").json()

    def wait_status(self, name: str, status: str, timeout: float) -> Dict[str, Any]:
        self._wait(lambda: self.session_record(name)["status"]["status"] == status, timeout,
                   f"session {name} to be {status}")
        return self.session_record(name)

    def wait_complete(self, name: str, timeout: float = 60) -> Dict[str, Any]:
        """Wait for completion; returns the saved extended status."""
        self.wait_status(name, "complete", timeout)
        return self.api.get(f"/v2/sessions/{name}/status").json()

    def components(self, ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
        found = self.api.get("/v2/components", params={"ids": ",".join(ids)}).json()
        return {c["id"]: c for c in found}

    def sim_nodes(self, ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
        return {n["xname"]: n for n in self.sim.nodes(ids)}

    def pcs_requests(self, operation: Optional[str] = None) -> List[Dict[str, Any]]:
        found = [r for r in self.sim.requests("pcs") if r.get("path", "").endswith("/transitions")
                 and r.get("method") == "POST"]
        return [r for r in found if operation is None or (r.get("body") or {}).get("operation") == operation]

    def xnames_sent(self, operation: str) -> List[str]:
        return [loc["xname"] for r in self.pcs_requests(operation) for loc in (r.get("body") or {}).get("location", [])]

    @staticmethod
    def _wait(check: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
