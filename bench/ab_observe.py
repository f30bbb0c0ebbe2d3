"""Reporter PATCH rate with history and metrics on vs off, interleaved (docs/metrics.md).

    .venv/bin/python -m bench.ab_observe [--components 10000] [--rounds 3] [--seconds 5]

Each round starts a fresh redis-server and `bos-server --workers 2` twice, once with
the defaults (history and metrics on) and once with `--history-max-entries 0
--no-metrics`, in alternating order, seeds the components and runs the reporter
workloads of `make bench` (bench/load.py, wrk) against each. Prints the median rate
and API CPU per request of every configuration and workload, and the on/off ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List

from redis.asyncio import Redis

from bos_server.store.tokens import put_token
from bos_sim.inventory import node_xname
from bos_sim.stack import ApiServer, RedisServer

from . import load as load_gen
from .api_store import TOKEN, Client, boot_artifacts, known_tokens, load
from .common import median

CONFIGS = {"on": [], "off": ["--history-max-entries", "0", "--no-metrics"]}
WORKLOADS = ("same", "known")


async def one(config: str, count: int, seconds: float, connections: int) -> Dict[str, Dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="bos-ab-"))
    redis_server = RedisServer(work / "redis")
    server = ApiServer(work / "api", redis_server.url, env={"BOS_LOG_LEVEL": "WARNING"},
                       extra_args=["--workers", "2", *CONFIGS[config]])
    client, redis = Client(server.url, 8), Redis.from_url(redis_server.url)
    try:
        await load(client, redis, count, server.proc.pid)
        for token in known_tokens():
            await put_token(redis, token, boot_artifacts())
        ids = [node_xname(i) for i in range(count)]
        pids = {"api": server.proc.pid}
        out = {}
        for mode in WORKLOADS:
            tokens = known_tokens() if mode == "known" else [TOKEN]
            out[mode] = await asyncio.get_running_loop().run_in_executor(None, functools.partial(
                load_gen.reporter, server.url, work, ids, tokens, mode, seconds=seconds, runs=1,
                connections=connections, pids=pids))
        return out
    finally:
        await client.close()
        await redis.aclose()
        server.stop()
        redis_server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    results: Dict[str, Dict[str, List[Dict[str, Any]]]] = {c: {w: [] for w in WORKLOADS} for c in CONFIGS}
    for n in range(args.rounds):
        for config in (("off", "on") if n % 2 == 0 else ("on", "off")):
            for mode, run in asyncio.run(one(config, args.components, args.seconds, args.connections)).items():
                results[config][mode].append(run)
                print(f"round {n + 1} {config:3} {mode:5} {run['median_rate_per_s']:8.1f}/s "
                      f"api {run.get('median_api_cpu_ms_per_request', 0):.3f} ms CPU/request", flush=True)
    summary = {}
    for mode in WORKLOADS:
        rates = {c: median([r["median_rate_per_s"] for r in results[c][mode]]) for c in CONFIGS}
        cpu = {c: median([r["median_api_cpu_ms_per_request"] for r in results[c][mode]]) for c in CONFIGS}
        summary[mode] = {"rate_on": rates["on"], "rate_off": rates["off"], "rate_ratio": round(rates["on"] / rates["off"], 3),
                         "api_cpu_ms_on": cpu["on"], "api_cpu_ms_off": cpu["off"],
                         "cpu_ratio": round(cpu["on"] / cpu["off"], 3)}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
