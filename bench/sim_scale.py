"""Memory and CPU of `bos-sim` with many nodes: idle, then powering every node on.

    .venv/bin/python bench/sim_scale.py --nodes 100000
    .venv/bin/python bench/sim_scale.py --nodes 100000 --with-bos   # nodes also report to a real BOS API

Drives the simulator the way the operators would (BSS PUTs and PCS transitions
in chunks of 2,800, CFS PATCHes of 1,000) and samples the simulator process's
RSS and CPU from /proc. With --with-bos a real redis-server and API server
receive the 100,000 node reports (components are created first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bos_sim.inventory import DEFAULT_IMAGE_ID, node_xname  # noqa: E402
from bos_sim.stack import ApiServer, RedisServer, Simulator, free_port, scratch_dir  # noqa: E402

CHUNK = 2800
CFS_CHUNK = 1000
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * PAGE / 2 ** 20


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Sampler(threading.Thread):
    """Samples RSS and CPU of one process every `period` seconds while running."""

    def __init__(self, pid: int, period: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.samples: List[tuple] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.samples.append((time.monotonic(), cpu_seconds(self.pid), rss_mib(self.pid)))
            time.sleep(self.period)

    def finish(self) -> Dict[str, float]:
        self._done.set()
        self.join()
        self.samples.append((time.monotonic(), cpu_seconds(self.pid), rss_mib(self.pid)))
        (t0, c0, _), (t1, c1, _) = self.samples[0], self.samples[-1]
        return {"seconds": round(t1 - t0, 2), "cpu_percent": round(100 * (c1 - c0) / max(t1 - t0, 1e-9), 1),
                "rss_peak_mib": round(max(s[2] for s in self.samples), 1),
                "rss_end_mib": round(self.samples[-1][2], 1)}


def measure_idle(pid: int, seconds: float) -> Dict[str, float]:
    sampler = Sampler(pid)
    sampler.start()
    time.sleep(seconds)
    return sampler.finish()


def chunks(items: List[str], size: int) -> List[List[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def program_bss_and_cfs(http: requests.Session, urls: Dict[str, str], xnames: List[str]) -> None:
    params = ("console=ttyS0,115200 bad_page=panic crashkernel=360M spire_join_token=${SPIRE_JOIN_TOKEN} ip=dhcp quiet "
              f"root=sbps-s3:s3://boot-images/{DEFAULT_IMAGE_ID}/rootfs:etag:sbps:v1:iqn.2023-06.csm.iscsi:_sbps-hsn."
              f"_tcp.my-system.my-site-domain:300 nmd_data=url=s3://boot-images/{DEFAULT_IMAGE_ID}/rootfs,etag=etag "
              "bos_update_frequency=4h")
    for chunk in chunks(xnames, CHUNK):
        http.put(urls["bss"] + "/bootparameters", json={
            "hosts": chunk, "params": params, "kernel": f"s3://boot-images/{DEFAULT_IMAGE_ID}/kernel",
            "initrd": f"s3://boot-images/{DEFAULT_IMAGE_ID}/initrd"}, timeout=120).raise_for_status()
    for chunk in chunks(xnames, CFS_CHUNK):
        http.patch(urls["cfs"] + "/components", json={
            "patch": {"enabled": False, "desired_config": "compute-23.4.0", "tags": {"bos_session": "bench"},
                      "state": []}, "filters": {"ids": ",".join(chunk)}}, timeout=120).raise_for_status()


def power_on_all(http: requests.Session, sim: Simulator, xnames: List[str], timeout: float,
                 with_reports: bool) -> Dict[str, float]:
    started = time.monotonic()
    for chunk in chunks(xnames, CHUNK):
        http.post(sim.urls["pcs"] + "/transitions", json={
            "operation": "On", "taskDeadlineMinutes": 1, "location": [{"xname": x} for x in chunk]},
            timeout=120).raise_for_status()
    sent = time.monotonic() - started
    marks: Dict[str, float] = {"transitions_sent_s": round(sent, 2)}
    goal = len(xnames)
    while time.monotonic() - started < timeout:
        summary = sim.summary()
        if "all_on_s" not in marks and summary["power"].get("on", 0) >= goal:
            marks["all_on_s"] = round(time.monotonic() - started, 2)
        if "all_booted_s" not in marks and summary["booted"] >= goal:
            marks["all_booted_s"] = round(time.monotonic() - started, 2)
        reported = summary["reports"].get("reported", 0)
        if "all_reported_s" not in marks and with_reports and reported >= goal:
            marks["all_reported_s"] = round(time.monotonic() - started, 2)
        if "all_configured_s" not in marks and summary["cfs"].get("configured", 0) >= goal:
            marks["all_configured_s"] = round(time.monotonic() - started, 2)
        if "all_configured_s" in marks and (not with_reports or "all_reported_s" in marks):
            return marks
        time.sleep(0.25)
    marks["timed_out"] = 1
    return marks


def status_pass(http: requests.Session, urls: Dict[str, str], xnames: List[str]) -> Dict[str, float]:
    """What one status-operator pass costs the simulator: all CFS pages plus power-status per chunk."""
    started = time.monotonic()
    params: Optional[dict] = {}
    pages = 0
    while params is not None:
        body = http.get(urls["cfs"] + "/components", params=params, timeout=120).json()
        pages += 1
        params = {k: v for k, v in body["next"].items() if v is not None} if body["next"] else None
    cfs_s = time.monotonic() - started
    for chunk in chunks(xnames, CHUNK):
        http.post(urls["pcs"] + "/power-status", json={"xname": chunk}, timeout=120).raise_for_status()
    return {"cfs_pages": pages, "cfs_listing_s": round(cfs_s, 2),
            "power_status_s": round(time.monotonic() - started - cfs_s, 2)}


def create_bos_components(http: requests.Session, api_url: str, xnames: List[str]) -> None:
    for chunk in chunks(xnames, CHUNK):
        http.put(api_url + "/v2/components", json=[{"id": x, "enabled": False} for x in chunk],
                 timeout=300).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--with-bos", action="store_true", help="report to a real BOS API server (needs redis)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    work = scratch_dir("bos-sim-scale-")
    http = requests.Session()
    xnames = [node_xname(i) for i in range(args.nodes)]
    results: Dict[str, object] = {"nodes": args.nodes, "speed": args.speed, "with_bos": args.with_bos}
    stops = []
    try:
        bos_url = None
        api = None
        if args.with_bos:
            redis = RedisServer(work / "redis")
            stops.append(redis.stop)
            port = free_port()
            bos_url = f"http://127.0.0.1:{port}/v2"
        started = time.monotonic()
        sim = Simulator(work, args.nodes, speed=args.speed, bos_url=bos_url, timeout=600)
        stops.insert(0, sim.stop)
        results["startup_s"] = round(time.monotonic() - started, 2)
        if args.with_bos:
            api = ApiServer(work / "api", redis.url, port=port, env=sim.env())
            stops.insert(0, api.stop)
            create_bos_components(http, api.url, xnames)
        pid = sim.proc.pid
        results["idle"] = measure_idle(pid, args.idle_seconds)
        program_bss_and_cfs(http, sim.urls, xnames)
        results["programmed_rss_mib"] = round(rss_mib(pid), 1)
        sampler = Sampler(pid)
        sampler.start()
        results["power_on_timeline"] = power_on_all(http, sim, xnames, args.timeout, args.with_bos)
        results["power_on"] = sampler.finish()
        results["status_pass"] = status_pass(http, sim.urls, xnames)
        results["idle_after"] = measure_idle(pid, args.idle_seconds)
        results["summary"] = sim.summary()
    finally:
        for stop in stops:
            stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if "timed_out" not in results.get("power_on_timeline", {}) else 1


if __name__ == "__main__":
    sys.exit(main())
