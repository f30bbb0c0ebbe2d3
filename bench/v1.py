"""v1 sessions on the v2 engine: reboot wall time and the cost of the v1 status tree.

    .venv/bin/python -m bench.v1                      # 1,000-node reboot in two ordinals + 10,000-node status
    .venv/bin/python -m bench.v1 --nodes 200 --status-nodes 2000 --runs 5   # smoke sizes (make bench QUICK=1)

Part 1 (`reboot`): a stack of N simulated nodes (zero hardware delays, so the wall time
is BOS's own orchestration), a v1 template of two boot sets of N/2 nodes with
`boot_ordinal` 1 and 2; a v1 `boot` of every node, then the v1 `reboot` that is measured
(from `POST /v1/session` to `complete`), with the gap between the last ordinal-1 node
finishing and the first ordinal-2 power-on.

Part 2 (`status`): M nodes in a v1 session's status tree (two boot sets, three phases,
nodes spread over the categories) and the same M components in a v2 session; the
median latency of `GET /v1/session/{id}/status`, `GET /v1/session/{id}`, one boot set's
status (it lists every node) and, for comparison, `GET /v2/sessions/{name}/status`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any, Dict, List, Optional

import requests

from bos_shared.options import DEFAULTS
from bos_sim.inventory import DEFAULT_IMAGE_ID, GOOD_CONFIGS
from bos_sim.stack import Operators, Stack

from .common import wait_for

ZERO_DELAYS = ["--power-on-delay", "0", "--boot-delay", "0", "--soft-off-delay", "0", "--force-off-delay", "0",
               "--configure-delay", "0", "--jitter", "0"]
MANIFEST = f"s3://boot-images/{DEFAULT_IMAGE_ID}/manifest.json"


class Client:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def call(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.http.request(method, self.base + path, timeout=600, **kw)
        if resp.status_code >= 300:
            raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:300]}")
        return resp.json() if resp.content else None

    def timed(self, path: str, runs: int) -> float:
        """Median milliseconds of `runs` GETs (after one warm-up)."""
        self.call("GET", path)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            self.call("GET", path)
            times.append((time.perf_counter() - started) * 1000)
        return round(median(times), 2)


def _boot_set(nodes: List[str], ordinal: int) -> Dict[str, Any]:
    return {"path": MANIFEST, "type": "s3", "node_list": nodes, "boot_ordinal": ordinal,
            "rootfs_provider": "sbps", "rootfs_provider_passthrough": "sbps:v1:x"}


def _v1_run(client: Client, operation: str, timeout: float) -> Dict[str, Any]:
    started = time.monotonic()
    created = client.call("POST", "/v1/session", json={"operation": operation, "templateName": "bench-v1"})
    sid = created["links"][0]["href"].rsplit("/", 1)[1]
    done = wait_for(lambda: client.call("GET", f"/v1/session/{sid}")["complete"] is True, timeout,
                    f"v1 {operation}", period=0.2)
    described = client.call("GET", f"/v1/session/{sid}")
    if described["error_count"]:
        raise RuntimeError(f"v1 {operation}: {described['error_count']} errors")
    return {"sid": sid, "wall_seconds": round(done - started, 2)}


def _epoch(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.timezone.utc).timestamp()


def reboot(nodes: int, timeout: float = 1800) -> Dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"bos-bench-v1-{nodes}-"))
    try:
        with Stack(work, nodes=nodes, sim_args=ZERO_DELAYS + ["--record-limit", str(4 * nodes)], sim_timeout=600,
                   operators=False, env={"BOS_LOG_LEVEL": "WARNING"}) as stack:
            client = Client(stack.api.url)
            client.call("PATCH", "/v2/options", json=dict(DEFAULTS))
            stack.adopt(Operators(work / "ops", stack.bos_url, stack.redis.url, stack.sim.urls, env=stack.sim.env()))
            xnames = sorted(n["xname"] for n in stack.sim.nodes())
            wait_for(lambda: len(client.call("GET", "/v2/components", params={"page_size": nodes})) >= nodes,
                     600, "discovery", period=0.5)
            half = len(xnames) // 2
            first, second = xnames[:half], xnames[half:]
            client.call("POST", "/v1/sessiontemplate", json={
                "name": "bench-v1", "cfs": {"configuration": GOOD_CONFIGS[0]},
                "boot_sets": {"first": _boot_set(first, 1), "second": _boot_set(second, 2)}})
            boot = _v1_run(client, "boot", timeout)
            stack.sim.clear_requests("pcs")
            result = _v1_run(client, "reboot", timeout)
            early = client.call("GET", f"/v1/session/{result['sid']}/status/first")["metadata"]["stop_time"]
            second_set = set(second)
            ons = [r["time"] for r in stack.sim.requests("pcs") if r["method"] == "POST"
                   and (r.get("body") or {}).get("operation") == "On"
                   and any(loc["xname"] in second_set for loc in r["body"].get("location", []))]
            return {"nodes": nodes, "boot_wall_seconds": boot["wall_seconds"],
                    "reboot_wall_seconds": result["wall_seconds"],
                    "ordinal_gap_seconds": round(min(ons) - _epoch(early), 3) if ons else None}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def status_cost(nodes: int, runs: int) -> Dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"bos-bench-v1-status-{nodes}-"))
    try:
        with Stack(work, nodes=4, operators=False, env={"BOS_LOG_LEVEL": "WARNING"}) as stack:
            client = Client(stack.api.url)
            ids = [f"x9000c{n // 4096}s{(n // 64) % 64}b{(n // 8) % 8}n{n % 8}" for n in range(nodes)]
            client.call("PUT", "/v2/components", json=[
                {"id": i, "enabled": n % 3 != 0, "session": "v2bench", "error": "boom" if n % 50 == 0 else "",
                 "status": {"phase": ("powering_on", "configuring", "")[n % 3]}} for n, i in enumerate(ids)])
            client.call("PUT", "/v2/sessiontemplates/bench-v2", json={
                "boot_sets": {"all": {"path": MANIFEST, "type": "s3", "node_list": ids[:1]}}})
            client.call("POST", "/v2/sessions", json={"name": "v2bench", "template_name": "bench-v2",
                                                      "operation": "shutdown"})
            client.call("POST", "/v1/sessiontemplate", json={"name": "bench-v1", "boot_sets": {
                "a": _boot_set(ids[:1], 1), "b": _boot_set(ids[1:2], 2)}})
            sid = client.call("POST", "/v1/session", json={"operation": "reboot", "templateName": "bench-v1"}
                              )["links"][0]["href"].rsplit("/", 1)[1]
            half = nodes // 2
            for name, part in (("a", ids[:half]), ("b", ids[half:])):
                third = len(part) // 3
                spread = {"succeeded": part[:third], "in_progress": part[third:2 * third], "failed": part[2 * third:]}
                phases = [{"name": p, "categories": [{"name": c, "node_list": n} for c, n in spread.items()],
                           "errors": {"boom": spread["failed"]}} for p in ("shutdown", "boot", "configure")]
                client.call("POST", f"/v1/session/{sid}/status/{name}", json={"phases": phases})
            out = {"nodes": nodes, "runs": runs,
                   "v1_session_status_ms": client.timed(f"/v1/session/{sid}/status", runs),
                   "v1_session_describe_ms": client.timed(f"/v1/session/{sid}", runs),
                   "v1_boot_set_status_ms": client.timed(f"/v1/session/{sid}/status/a", max(3, runs // 5)),
                   "v2_extended_status_ms": client.timed("/v2/sessions/v2bench/status", runs)}
            return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000, help="nodes of the reboot (two ordinals of N/2)")
    parser.add_argument("--status-nodes", type=int, default=10000, help="nodes in the measured status tree")
    parser.add_argument("--runs", type=int, default=30, help="GETs per status measurement (median)")
    parser.add_argument("--only", choices=["reboot", "status"])
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args(argv)
    result: Dict[str, Any] = {}
    if args.only in (None, "status"):
        result["status"] = status_cost(args.status_nodes, args.runs)
        print(json.dumps(result["status"]), flush=True)
    if args.only in (None, "reboot"):
        result["reboot"] = reboot(args.nodes)
        print(json.dumps(result["reboot"]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
