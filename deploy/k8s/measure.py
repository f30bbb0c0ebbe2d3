#!/usr/bin/env python3
"""Measure the processes as deploy/k8s runs them, for the sizing table of deploy/k8s/README.md.

    .venv/bin/python deploy/k8s/measure.py --nodes 10000 [--latency zero|realistic]

One stack on this machine (simulator/stack.py): Redis, one `bos-server` process (one
worker, as in a pod), and the operators split into the `--only` groups of
base/operators.yaml, each its own process. Discovery of every node, then a boot and
a reboot session of every node; peak RSS and CPU seconds of each process are
sampled throughout (bench/common.py). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.boot import MANIFEST, ZERO_DELAYS, Driver, run_session  # noqa: E402
from bench.common import Watch, wait_for  # noqa: E402
from bos_shared.options import DEFAULTS  # noqa: E402
from bos_sim.inventory import GOOD_CONFIGS  # noqa: E402
from bos_sim.stack import Operators, Stack  # noqa: E402


def groups() -> Dict[str, List[str]]:
    """Deployment name -> `--only` value, from the rendered base manifests."""
    sys.path.insert(0, str(Path(__file__).parent))
    import render  # type: ignore[import-not-found]
    found = {}
    for obj in render.build(Path(__file__).parent / "base"):
        if obj["kind"] == "Deployment" and obj["metadata"]["name"].startswith("cray-bos-operator-"):
            command = obj["spec"]["template"]["spec"]["containers"][0]["command"]
            found[obj["metadata"]["name"]] = command[2]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--latency", choices=["zero", "realistic"], default="zero")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix=f"bos-measure-{args.nodes}-"))
    result: Dict[str, object] = {"nodes": args.nodes, "latency": args.latency}
    try:
        with Stack(work, nodes=args.nodes, sim_args=ZERO_DELAYS if args.latency == "zero" else [],
                   sim_timeout=600, operators=False, env={"BOS_LOG_LEVEL": "WARNING"}) as stack:
            driver = Driver(stack)
            driver.call("PATCH", "/options", json=dict(DEFAULTS))
            pids = {"redis": stack.redis.proc.pid, "cray-bos": stack.api.proc.pid}
            for name, only in groups().items():
                ops = stack.adopt(Operators(work / name, stack.bos_url, stack.redis.url, stack.sim.urls,
                                            env=stack.sim.env(), extra_args=["--only", only]))
                pids[name] = ops.proc.pid
            with Watch(pids) as watch:
                wait_for(lambda: driver.components() >= args.nodes, 600, "discovery", period=0.2)
                driver.call("PUT", "/sessiontemplates/bench", json={
                    "cfs": {"configuration": GOOD_CONFIGS[0]},
                    "boot_sets": {"compute": {"path": MANIFEST, "type": "s3", "node_groups": ["compute", "uan"],
                                              "rootfs_provider": "sbps", "rootfs_provider_passthrough": "sbps:v1:x"}}})
                for operation in ("boot", "reboot"):
                    started = time.monotonic()
                    result[operation] = run_session(driver, f"measure-{operation}", operation, args.nodes,
                                                    args.timeout)
                    print(f"{operation}: {time.monotonic() - started:.1f} s", file=sys.stderr)
                result["redis_used_memory_bytes"] = driver.used_memory()
            result["processes"] = watch.result()
            driver.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
