"""Reporter PATCH cost with history and metrics on vs off, interleaved (issue 15, docs/metrics.md).

    .venv/bin/python -m bench.ab_observe [--components 10000] [--rounds 9] [--seconds 4] [--split]

One redis-server with N seeded components and one `bos-server --workers 2` per
configuration on it, all started once: **on** (the defaults: history and metrics on)
and **off** (`--history-max-entries 0 --no-metrics`); `--split` adds "metrics off" and
"history off". Each round runs every configuration once per reporter workload of `make
bench` (bench/load.py, wrk), the order rotating from round to round, so drifts of the
machine's load hit every configuration alike.

The primary figure is the API's CPU per request (its process tree, from /proc): on a
machine shared with other work the rate follows the CPU share the scheduler grants, the
CPU per request hardly does. The on/off ratio of each round is taken between runs a few
seconds apart, and the median of those ratios is reported, with the median rates and
their ratio beside it. The rate the server would reach alone is the inverse of its CPU per
request, so `rate_from_cpu` = off CPU / on CPU is the rate ratio without the noise.

`--together` loads every configuration at the same time instead (one wrk each, same
seconds): every server then sees exactly the same machine, and with the cores shared
evenly the rate ratio is the inverse of the CPU ratio; the fairest figure on a busy machine.

`--base DIR` (a checkout of another commit, e.g. `git worktree add /tmp/base 9bf84bc`)
adds "on@base" and "off@base": servers running that checkout's bos_server and bos_shared
(put first on PYTHONPATH), for an A/B of two commits in the same sitting.
"""

from __future__ import annotations

import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from redis.asyncio import Redis

from bos_server.store.tokens import put_token
from bos_sim.inventory import node_xname
from bos_sim.stack import ApiServer, RedisServer

from . import load as load_gen
from .api_store import TOKEN, Client, boot_artifacts, known_tokens, load
from .common import machine, median

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"on": [], "off": ["--history-max-entries", "0", "--no-metrics"]}
SPLIT = {"metrics off": ["--no-metrics"], "history off": ["--history-max-entries", "0"]}
WORKLOADS = ("same", "known")


async def seed(url: str, redis_url: str, count: int, pid: int) -> None:
    client, redis = Client(url, 8), Redis.from_url(redis_url)
    try:
        await load(client, redis, count, pid)
        for token in known_tokens():
            await put_token(redis, token, boot_artifacts())
    finally:
        await client.close()
        await redis.aclose()


def run_once(server: ApiServer, redis_pid: int, script: Path, seconds: int, connections: int) -> Dict[str, float]:
    """One measured wrk run: rate, and API and Redis CPU per request (ms)."""
    pids = {"api": server.proc.pid, **({"redis": redis_pid} if redis_pid else {})}
    run = load_gen.measured_run(server.url, script, seconds, connections, pids)
    if run["errors"]:
        raise RuntimeError(f"wrk saw {run['errors']} errors at {server.url}")
    return {"rate": run["rate"], "api_cpu_ms": run["api_cpu_ms_per_request"],
            "redis_cpu_ms": run.get("redis_cpu_ms_per_request", 0.0)}


def scripts_for(work: Path, ids: List[str]) -> Dict[str, Path]:
    """The wrk script of each workload (bench/load.py's REPORT_SCRIPT)."""
    return {mode: load_gen.report_script(work, ids, known_tokens() if mode == "known" else [TOKEN], mode)
            for mode in WORKLOADS}


def base_env(base: Path, work: Path) -> Dict[str, str]:
    """PYTHONPATH that makes a server import `base`'s packages instead of this tree's."""
    where = work / "base-packages"
    where.mkdir()
    (where / "bos_server").symlink_to(base.resolve() / "server")
    (where / "bos_shared").symlink_to(base.resolve() / "shared")
    return {"PYTHONPATH": str(where)}


def _ratios(rows: List[Dict[str, float]], to: List[Dict[str, float]]) -> Dict[str, float]:
    """Medians of the per-round ratios of `rows` to `to` (runs seconds apart, alike in load)."""
    return {"api_cpu_ratio": round(median([r["api_cpu_ms"] / o["api_cpu_ms"] for r, o in zip(rows, to)]), 3),
            "rate_from_cpu": round(median([o["api_cpu_ms"] / r["api_cpu_ms"] for r, o in zip(rows, to)]), 3),
            "rate_ratio": round(median([r["rate"] / o["rate"] for r, o in zip(rows, to)]), 3)}


def summarise(runs: Dict[str, Dict[str, List[Dict[str, float]]]]) -> Dict[str, Any]:
    """Per workload: medians of each configuration, and medians of the per-round ratios to off."""
    out: Dict[str, Any] = {}
    for mode in WORKLOADS:
        off = runs["off"][mode]
        row: Dict[str, Any] = {}
        for config, rows in runs.items():
            row[config] = {"median_rate_per_s": round(median([r["rate"] for r in rows[mode]]), 1),
                           "median_api_cpu_ms_per_request": round(median([r["api_cpu_ms"] for r in rows[mode]]), 4),
                           "median_redis_cpu_ms_per_request": round(median([r["redis_cpu_ms"]
                                                                            for r in rows[mode]]), 4),
                           "runs_api_cpu_ms_per_request": [round(r["api_cpu_ms"], 4) for r in rows[mode]],
                           "runs_rate_per_s": [round(r["rate"], 1) for r in rows[mode]]}
            if config != "off":
                row[config]["to_off"] = _ratios(rows[mode], off)
        if "on@base" in runs:
            row["on"]["to_on@base"] = _ratios(runs["on"][mode], runs["on@base"][mode])
            row["on@base"]["to_off@base"] = _ratios(runs["on@base"][mode], runs["off@base"][mode])
        out[mode] = row
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (medians reported)")
    parser.add_argument("--seconds", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load per server and workload first")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--split", action="store_true", help="also 'metrics off' and 'history off' alone")
    parser.add_argument("--together", action="store_true", help="load every configuration at the same time")
    parser.add_argument("--base", type=Path, help="a checkout of another commit: adds on@base and off@base")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "observe.json")
    args = parser.parse_args(argv)
    if not load_gen.available():
        print("wrk is not installed (make bench installs it)", file=sys.stderr)
        return 1
    configs = dict(CONFIGS, **(SPLIT if args.split else {}))
    work = Path(tempfile.mkdtemp(prefix="bos-ab-"))
    envs = {c: {"BOS_LOG_LEVEL": "WARNING"} for c in configs}
    if args.base:
        base = dict(base_env(args.base, work), BOS_LOG_LEVEL="WARNING")
        configs.update({"on@base": CONFIGS["on"], "off@base": CONFIGS["off"]})
        envs.update({"on@base": base, "off@base": base})
    redis_server = RedisServer(work / "redis")
    servers: Dict[str, ApiServer] = {}
    try:
        for n, (config, flags) in enumerate(configs.items()):
            servers[config] = ApiServer(work / f"api{n}", redis_server.url, env=envs[config],
                                        extra_args=["--workers", str(args.workers), *flags])
        ids = [node_xname(i) for i in range(args.components)]
        asyncio.run(seed(servers["on"].url, redis_server.url, args.components, servers["on"].proc.pid))
        scripts = scripts_for(work, ids)
        redis_pid = redis_server.proc.pid
        for server in servers.values():  # warm-up: connections, caches, every worker's code paths
            for mode in WORKLOADS:
                load_gen.wrk_run(server.url, scripts[mode], args.warmup, args.connections)
        runs: Dict[str, Dict[str, List[Dict[str, float]]]] = {c: {m: [] for m in WORKLOADS} for c in configs}
        order = list(configs)
        for round_ in range(args.rounds):
            shift = round_ % len(order)
            for mode in WORKLOADS:
                if args.together:  # Redis CPU is shared by all: not attributed (0)
                    with ThreadPoolExecutor(len(order)) as pool:
                        script = scripts[mode]
                        done = dict(zip(order, pool.map(lambda c, s=script: run_once(servers[c], 0, s, args.seconds,
                                                                                     args.connections), order)))
                else:
                    done = {c: run_once(servers[c], redis_pid, scripts[mode], args.seconds, args.connections)
                            for c in order[shift:] + order[:shift]}
                for config, run in done.items():
                    runs[config][mode].append(run)
                    print(f"round {round_ + 1} {mode:5} {config:11} {run['rate']:8.1f}/s "
                          f"api {run['api_cpu_ms']:.3f} ms, redis {run['redis_cpu_ms']:.3f} ms CPU/request",
                          file=sys.stderr, flush=True)
    finally:
        for server in servers.values():
            server.stop()
        redis_server.stop()
        shutil.rmtree(work, ignore_errors=True)
    workload = (f"reporter PATCH (bench/load.py) to random of {args.components:,} components, wrk 1 thread "
                f"{args.connections} keep-alive connections, bos-server --workers {args.workers} per configuration "
                f"on one redis-server, {args.rounds} interleaved rounds of {args.seconds:g} s per configuration and "
                "workload" + (", all configurations loaded at the same time" if args.together else ""))
    result: Dict[str, Any] = {
        "workload": workload,
        "configurations": {c: " ".join(f) or "(defaults)" for c, f in configs.items()},
        "base": str(args.base) if args.base else None,
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "machine": machine(),
        "workloads": summarise(runs)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for mode, row in result["workloads"].items():
        for config, other, key in (("on", "off", "to_off"), ("on@base", "off@base", "to_off@base"),
                                   ("on", "on@base", "to_on@base")):
            if key in row.get(config, {}):
                a, b, ratio = row[config], row[other], row[config][key]
                print(f"{mode:5} {config} vs {other}: API CPU {a['median_api_cpu_ms_per_request']:.3f} / "
                      f"{b['median_api_cpu_ms_per_request']:.3f} ms = {ratio['api_cpu_ratio']:.3f} (rate from CPU "
                      f"{ratio['rate_from_cpu']:.3f}); rate {a['median_rate_per_s']:,.0f} / "
                      f"{b['median_rate_per_s']:,.0f} per s = {ratio['rate_ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
