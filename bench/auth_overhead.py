"""Reporter PATCH rate with authentication off and on (issue 14: on must keep >= 80 % of off).

One redis-server, N components, and three `bos-server --workers W` on it:

- off: no auth flags (the default);
- on: `--auth-jwks-file` + issuer + audience; every request carries the node token of
  the component it reports (RS256, SPIFFE subject naming the xname), reused from
  request to request as a node's SPIRE agent reuses its JWT-SVID, so after the first
  request per node the verified token comes from the cache;
- on, no cache (`--auth-token-cache 0`): every request verifies an RS256 signature
  (the worst case: a fresh token on every report).

The load is byte-for-byte the reporter's PATCH (`{"id", "actual_state": {"bss_token"}}`)
to random components from C keep-alive connections (wrk + Lua), the same as
bench/api_store.py's reporter load. Runs are interleaved (off, on, on-no-cache, off, ...)
so machine load drifts hit all three alike; medians are reported. Besides the rate, the
server's own CPU time per request (from /proc, workers included) is reported: on a shared
machine the rate follows the CPU share the scheduler grants, the CPU per request does not.

    .venv/bin/python -m bench.auth_overhead [--components 500] [--runs 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import requests
from redis.asyncio import Redis

from bos_server.store.tokens import put_token
from bos_sim.inventory import node_xname
from bos_sim.stack import ApiServer, RedisServer
from tests.support.auth import AUDIENCE, Issuer, auth_server_args, rsa_key

BSS_TOKEN = "2143071d-8627-421b-befb-1633d17e0d20"
ARTIFACTS = {"kernel": "s3://boot-images/bench/kernel", "kernel_parameters": "console=ttyS0 quiet",
             "initrd": "s3://boot-images/bench/initrd"}
ROOT = Path(__file__).resolve().parents[1]

# Every request is built once in init(): the client's per-request work is then the same with
# and without the ~900-byte Authorization header (wrk shares the two cores with the server).
WRK_SCRIPT = """
local reqs = {}
setup = function(thread) thread:set("seed", math.random(1, 1000000)) end
init = function(args)
  math.randomseed(seed or 1)
  for line in io.lines("%(pairs)s") do
    local id, token = line:match("^(%%S+) (%%S*)$")
    local headers = {["Content-Type"] = "application/json"}
    if token ~= "" then headers["Authorization"] = "Bearer " .. token end
    reqs[#reqs + 1] = wrk.format("PATCH", "/v2/components/" .. id, headers,
                                 '{"id":"' .. id .. '","actual_state":{"bss_token":"%(bss)s"}}')
  end
end
request = function()
  return reqs[math.random(#reqs)]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%%d,"duration_us":%%d,"non_2xx":%%d,"errors":%%d,"p50_us":%%d,' ..
    '"p99_us":%%d}\\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the --workers processes), from /proc."""
    total = 0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for proc in [pid, *map(int, children)]:
        fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url: str, script: Path, seconds: float, connections: int) -> Dict[str, Any]:
    argv = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s", "-s", str(script),
            url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr[:500]} {out.stdout[-500:]}")
    raw = json.loads(line[len("WRK_JSON "):])
    if raw["non_2xx"] or raw["errors"]:
        raise RuntimeError(f"wrk saw {raw['non_2xx']} non-2xx answers and {raw['errors']} errors at {url}")
    return {"rate": raw["requests"] / (raw["duration_us"] / 1e6), "p50_ms": raw["p50_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000, "requests": raw["requests"]}


def load_components(url: str, token: str, ids: List[str]) -> None:
    body = [{"id": cid, "enabled": False} for cid in ids]
    resp = requests.put(f"{url}/v2/components", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=300)
    resp.raise_for_status()


async def record_bss_token(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        await put_token(client, BSS_TOKEN, ARTIFACTS)
    finally:
        await client.aclose()


def main(argv: "List[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--components", type=int, default=500)
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds of load before measuring: every worker must have seen every token once")
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration (median reported)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="bos-server worker processes")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "auth.json")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (make bench installs it)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    work = Path(tempfile.mkdtemp(prefix="bos-auth-bench-"))
    issuer = Issuer([rsa_key("bench-rsa")])
    jwks = issuer.write_jwks(work / "jwks.json")
    ids = [node_xname(i) for i in range(args.components)]
    print(f"minting {len(ids):,} node tokens ...", file=sys.stderr)
    tokens = {cid: issuer.node(cid, lifetime=3600) for cid in ids}
    redis = RedisServer(work / "redis")
    servers: Dict[str, ApiServer] = {}
    try:
        env = {"BOS_LOG_LEVEL": "WARNING"}
        workers = ["--workers", str(args.workers)]
        servers["off"] = ApiServer(work / "off", redis.url, env=env, extra_args=workers)
        servers["on"] = ApiServer(work / "on", redis.url, env=env, extra_args=workers + auth_server_args(jwks))
        servers["on, no token cache"] = ApiServer(work / "nocache", redis.url, env=env,
                                                  extra_args=workers + auth_server_args(jwks)
                                                  + ["--auth-token-cache", "0"])
        load_components(servers["on"].url, issuer.admin(lifetime=3600), ids)
        asyncio.run(record_bss_token(redis.url))
        scripts: Dict[str, Path] = {}
        for name in servers:
            pairs = work / f"pairs-{len(scripts)}.txt"
            pairs.write_text("".join(f"{cid} {tokens[cid] if name != 'off' else ''}\n" for cid in ids))
            scripts[name] = work / f"report-{len(scripts)}.lua"
            scripts[name].write_text(WRK_SCRIPT % {"pairs": pairs, "bss": BSS_TOKEN})
        for name, server in servers.items():  # warm-up: each worker's token cache, connections
            wrk(server.url, scripts[name], args.warmup, args.connections)
        runs: Dict[str, List[Dict[str, Any]]] = {name: [] for name in servers}
        for round_ in range(args.runs):
            for name, server in servers.items():
                before = cpu_seconds(server.proc.pid)
                run = wrk(server.url, scripts[name], args.seconds, args.connections)
                run["cpu_us_per_request"] = (cpu_seconds(server.proc.pid) - before) / run["requests"] * 1e6
                runs[name].append(run)
                print(f"  round {round_ + 1} {name}: {run['rate']:,.0f}/s, "
                      f"{run['cpu_us_per_request']:.0f} us CPU per request", file=sys.stderr)
    finally:
        for server in servers.values():
            server.stop()
        redis.stop()
    result: Dict[str, Any] = {
        "workload": (f"wrk, 1 thread, {args.connections} keep-alive connections, reporter PATCH to random of "
                     f"{args.components:,} components, {args.runs} interleaved runs of {args.seconds:g} s each, "
                     f"bos-server --workers {args.workers}, tokens RS256 with audience {AUDIENCE}"),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    off = statistics.median(r["rate"] for r in runs["off"])
    off_cpu = statistics.median(r["cpu_us_per_request"] for r in runs["off"])
    for name, rows in runs.items():
        rate = statistics.median(r["rate"] for r in rows)
        cpu = statistics.median(r["cpu_us_per_request"] for r in rows)
        result[name] = {"median_rate_per_s": round(rate, 1), "runs_rate_per_s": [round(r["rate"], 1) for r in rows],
                        "median_p99_ms": round(statistics.median(r["p99_ms"] for r in rows), 2),
                        "rate_relative_to_off": round(rate / off, 3),
                        "median_cpu_us_per_request": round(cpu, 1),
                        "runs_cpu_us_per_request": [round(r["cpu_us_per_request"], 1) for r in rows],
                        # CPU-bound, the rate scales with 1/CPU per request; this is robust to other load
                        "rate_from_cpu_relative_to_off": round(off_cpu / cpu, 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
