"""Dry-run response time at scale (api.md §3.10.2): `POST /v2/sessions?dry_run=true` of a
template over every compute node of a simulated cluster, on the real stack.

    .venv/bin/python bench/dry_run.py --nodes 10000 --runs 7

Starts Redis, bos-sim and bos-server (no operators: the BOS components are created with
one bulk PUT, as discovery would), then times the dry run `--runs` times and prints the
median, min and max, and the plan's node count. A few nodes are disabled, locked or
limited out so the plan has exclusions to explain.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bos_sim.stack import Stack, scratch_dir  # noqa: E402

MANIFEST = "s3://boot-images/9e3c75e1-ac42-42c7-873c-e758048897d6/manifest.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with Stack(scratch_dir("bos-dryrun-"), nodes=args.nodes, operators=False, sim_timeout=300) as stack:
        api = requests.Session()
        base = stack.api.url + "/v2"
        nodes = [n["xname"] for n in stack.sim.nodes() if n["role"] == "Compute"]
        api.put(base + "/components", json=[{"id": x, "enabled": False} for x in nodes]).raise_for_status()
        for xname in nodes[:5]:
            stack.sim.patch_node(xname, enabled=False)
        for xname in nodes[5:10]:
            stack.sim.patch_node(xname, locked=True)
        template = {"boot_sets": {"compute": {"path": MANIFEST, "type": "s3", "node_roles_groups": ["Compute"],
                                              "rootfs_provider": "sbps", "rootfs_provider_passthrough": "sbps:v1:x"}},
                    "cfs": {"configuration": "compute-23.4.0"}}
        api.put(base + "/sessiontemplates/all", json=template).raise_for_status()
        body = {"template_name": "all", "operation": "reboot", "limit": "all,!" + nodes[10]}
        times, plan = [], {}
        for _ in range(args.runs):
            started = time.perf_counter()
            resp = api.post(base + "/sessions", params={"dry_run": "true"}, json=body)
            times.append(time.perf_counter() - started)
            resp.raise_for_status()
            plan = resp.json()
    summary = plan["summary"]
    print(f"dry run over {len(nodes)} compute nodes: median {statistics.median(times) * 1000:.0f} ms "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {args.runs} runs); "
          f"plan: {summary['nodes']} nodes, {summary['excluded']} excluded {summary['excluded_by_reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
