"""Side-by-side A/B of the bulk write paths (issue 13): seed and bulk PATCH, CPU per item on each side.

On a machine other jobs share, wall times and even CPU seconds drift with the
load, so two servers are compared in the same sitting with every request
alternated between them (the order flipped each time): each side is a
`bos-server --workers 2` from its own virtualenv (a checkout of the older
commit with its own `make venv`) on its own redis-server. The workload is
api_store's: N components seeded in 1,000-item `PUT /v2/components` (the
bench's records), then bulk `PATCH /v2/components` of 2,800 items with ~2 KiB
kernel parameters (the bench's bodies). CPU is read from /proc for each side's
API process tree and its Redis.

    .venv/bin/python -m bench.ab_writes --base /tmp/old/.venv/bin [--components 20000] [--bulks 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import orjson
from redis.asyncio import Redis

import bos_sim.stack as stack
from bos_server.store.tokens import put_token
from bos_sim.inventory import GOOD_CONFIGS, node_xname

from . import api_store
from .common import tree_cpu


class Side:
    """One server under test: its Redis, its API and a client, and the CPU each request cost."""

    def __init__(self, name: str, bindir: Path, work: Path) -> None:
        self.name = name
        self.redis_server = stack.RedisServer(work / f"redis-{name}")
        default, stack.BIN = stack.BIN, bindir  # the side's own bos-server
        try:
            self.api = stack.ApiServer(work / f"api-{name}", self.redis_server.url,
                                       env={"BOS_LOG_LEVEL": "WARNING"}, extra_args=["--workers", "2"])
        except BaseException:
            self.redis_server.stop()
            raise
        finally:
            stack.BIN = default
        self.client = api_store.Client(self.api.url, 4)
        self.cpu: Dict[str, List[float]] = {f"{kind}{part}": [] for kind in ("seed", "bulk")
                                            for part in ("", "_redis", "_wall")}

    async def prepare(self) -> None:
        redis = Redis.from_url(self.redis_server.url)
        await put_token(redis, api_store.TOKEN, api_store.boot_artifacts())
        await redis.aclose()
        await self.client.call("PATCH", "/v2/options", body={"logging_level": "WARNING"})

    async def timed(self, kind: str, method: str, raw: bytes) -> None:
        api, redis, started = tree_cpu(self.api.proc.pid), tree_cpu(self.redis_server.proc.pid), time.perf_counter()
        await self.client.call(method, "/v2/components", raw=raw)
        self.cpu[f"{kind}_wall"].append(time.perf_counter() - started)
        self.cpu[kind].append(tree_cpu(self.api.proc.pid) - api)
        self.cpu[f"{kind}_redis"].append(tree_cpu(self.redis_server.proc.pid) - redis)

    async def close(self) -> None:
        await self.client.close()
        self.api.stop()
        self.redis_server.stop()


def bulk_body(run: int, count: int, rng: random.Random) -> bytes:
    image = f"{run:08x}-ac42-42c7-873c-e758048897d6"
    arts = {"kernel": f"s3://boot-images/{image}/kernel",
            "kernel_parameters": api_store.long_kernel_parameters(image),
            "initrd": f"s3://boot-images/{image}/initrd"}
    return orjson.dumps([{"id": node_xname(i), "desired_state": {"boot_artifacts": arts,
                                                                  "configuration": GOOD_CONFIGS[0]},
                          "session": api_store.SESSION}
                         for i in sorted(rng.sample(range(count), min(api_store.BATCH, count)))])


async def compare(bindirs: Dict[str, Path], count: int, bulks: int) -> Dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bos-ab-writes-"))
    sides: List[Side] = []
    try:
        for name, bindir in bindirs.items():
            sides.append(Side(name, bindir, work))
            await sides[-1].prepare()
        for start in range(0, count, api_store.SEED_BATCH):
            body = orjson.dumps([api_store.component(i) for i in range(start, min(count, start + api_store.SEED_BATCH))])
            sides.reverse()
            for side in sides:
                await side.timed("seed", "PUT", body)
        rng = random.Random(count)
        for run in range(bulks):
            body = bulk_body(run, count, rng)
            sides.reverse()
            for side in sides:
                await side.timed("bulk", "PATCH", body)
        return {side.name: summary(side, count) for side in sorted(sides, key=lambda s: list(bindirs).index(s.name))}
    finally:
        for side in sides:
            await side.close()
        shutil.rmtree(work, ignore_errors=True)


def summary(side: Side, count: int) -> Dict[str, float]:
    cpu = side.cpu
    return {"seed_api_us_per_item": round(sum(cpu["seed"]) / count * 1e6, 1),
            "seed_redis_us_per_item": round(sum(cpu["seed_redis"]) / count * 1e6, 1),
            "bulk_api_cpu_ms_mean": round(statistics.mean(cpu["bulk"]) * 1e3, 1),
            "bulk_api_cpu_ms_median": round(statistics.median(cpu["bulk"]) * 1e3, 1),
            "bulk_redis_cpu_ms_median": round(statistics.median(cpu["bulk_redis"]) * 1e3, 1),
            "bulk_wall_ms_median": round(statistics.median(cpu["bulk_wall"]) * 1e3, 1),
            "seed_wall_ms_median_per_1000": round(statistics.median(cpu["seed_wall"]) * 1e3, 1)}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="bin directory of the other side's virtualenv")
    parser.add_argument("--new", type=Path, default=Path(sys.executable).parent,
                        help="bin directory of this side's virtualenv (default: this interpreter's)")
    parser.add_argument("--components", type=int, default=20_000)
    parser.add_argument("--bulks", type=int, default=20, help="bulk PATCHes per side")
    args = parser.parse_args(argv)
    result = asyncio.run(compare({"base": args.base, "new": args.new}, args.components, args.bulks))
    base, new = result["base"], result["new"]
    result["ratio_new_to_base"] = {key: round(new[key] / base[key], 3) for key in base if base[key]}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
