"""Wall time of one boot session for N simulated nodes with zero simulated latency.

    .venv/bin/python -m tests.operators.bench_boot --nodes 1000
    .venv/bin/python -m tests.operators.bench_boot --nodes 10000 --operation reboot

Starts Redis, the API, the simulator (every delay 0) and the operators; waits
for discovery; then times POST /v2/sessions -> session complete.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bos_shared.options import DEFAULTS
from bos_sim.stack import Operators, Stack
from tests.support.client import Api

from .stack import GOOD_CONFIG, MANIFEST

ZERO_DELAYS = ["--power-on-delay", "0", "--boot-delay", "0", "--soft-off-delay", "0", "--force-off-delay", "0",
               "--configure-delay", "0", "--jitter", "0"]


def wait(check, timeout: float, what: str, period: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(period)
    raise TimeoutError(what)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--operation", default="boot", choices=["boot", "reboot", "shutdown"])
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bos-bench-"))
    with Stack(work, nodes=args.nodes, sim_args=ZERO_DELAYS, sim_timeout=600, operators=False) as stack:
        api = Api(stack.api.url)
        api.patch("/v2/options", json=dict(DEFAULTS)).raise_for_status()
        stack.adopt(Operators(work / "ops", stack.bos_url, stack.redis.url, stack.sim.urls, env=stack.sim.env()))
        wait(lambda: len(api.get("/v2/components", params={"page_size": args.nodes}).json()) >= args.nodes,
             600, "discovery")
        api.put("/v2/sessiontemplates/bench", json={
            "cfs": {"configuration": GOOD_CONFIG},
            "boot_sets": {"compute": {"path": MANIFEST, "type": "s3", "node_groups": ["compute", "uan"],
                                      "rootfs_provider": "sbps", "rootfs_provider_passthrough": "sbps:v1:x"}}}
        ).raise_for_status()
        start = time.monotonic()
        api.post("/v2/sessions", json={"name": "bench", "template_name": "bench",
                                       "operation": args.operation}).raise_for_status()
        wait(lambda: api.get("/v2/sessions/bench").json()["status"]["status"] == "complete", args.timeout,
             "session completion", period=0.1)
        elapsed = time.monotonic() - start
        status = api.get("/v2/sessions/bench/status").json()
        print(json.dumps({"nodes": args.nodes, "operation": args.operation, "wall_seconds": round(elapsed, 2),
                          "managed": status["managed_components_count"],
                          "percent_successful": status["percent_successful"],
                          "errors": status["error_summary"]}))
        print(f"logs in {work}")


if __name__ == "__main__":
    main()
