"""API + store benchmark at the target scale (api.md §6.2, D1, D2).

Starts a throw-away redis-server and `bos-server` (simulator/stack.py), loads
N components (default 100,000) by bulk PUT in batches of 2,800 with realistic
~2 KiB kernel parameters in desired and actual state, then measures what
operators and node reporters do:

- GET /v2/components?session=X                     (matches 100 at 100k)
- GET /v2/components?enabled=true&status=...        (matches 1,000 at 100k)
- GET /v2/components                                (everything)
- a full paged listing, page_size=2800 + start_after_id, as the operators page
- single-component PATCH {"actual_state": {"bss_token": ...}} from many concurrent
  clients (what every booted node's reporter sends): rate, p50, p99
- bulk PATCH of 2,800 components (session-setup shaped items)
- GET /v2/sessions/{name}/status of a session with every component

Times are medians over --runs runs (wall clock on the client, response fully read).
Prints a table and writes JSON to bench/results/api_store.json.

    .venv/bin/python bench/api_store.py [--components 100000] [--runs 5] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import aiohttp
import orjson
from redis.asyncio import Redis

from bos_server.store.tokens import put_token
from bos_sim.stack import ApiServer, RedisServer, scratch_dir

BATCH = 2800
HERE = Path(__file__).resolve().parent
BIG_SESSION = "bench-big"
SMALL_SESSION = "bench-100"
HOT_STATUS = "power_on_called"
IMAGES = ["9e3c75e1-ac42-42c7-873c-e758048897d6", "1f0b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
          "2a1b3c4d-5e6f-4b7a-9d8e-0f1a2b3c4d5e", "3b2c4d5e-6f7a-4c8b-8e9f-1a2b3c4d5e6f"]


# -- realistic records --------------------------------------------------------------------------

def kernel_parameters(image: str) -> str:
    """~2 KiB of the parameters a CSM compute image boots with."""
    base = ("console=ttyS0,115200 bad_page=panic crashkernel=360M hugepagelist=2m-2g intel_iommu=off "
            "intel_pstate=disable iommu.passthrough=on numa_interleave_omit=headless oops=panic pageblock_order=14 "
            "rd.neednet=1 rd.retry=10 rd.shell split_lock_detect=off systemd.unified_cgroup_hierarchy=1 "
            "ip=dhcp quiet spire_join_token=${SPIRE_JOIN_TOKEN} "
            f"root=sbps-s3:s3://boot-images/{image}/rootfs:1cc4eef4f407bd8a62d7d66ee4b9e9c8-237:dvs:api-gw-service-nmn.local:300:nmn0 "
            f"nmd_data=url=s3://boot-images/{image}/rootfs,etag=1cc4eef4f407bd8a62d7d66ee4b9e9c8-237 "
            "bos_session_id=3f6c0d2e-9b1f-4c55-8a0e-2f0e4b6c7d8a bos_update_frequency=4h ")
    extra = " ".join(f"cray.opt{n}=value-{n:04d}-{image[:8]}" for n in range(60))
    return (base + extra)[:2048]


def artifacts(image: str) -> Dict[str, str]:
    return {"kernel": f"s3://boot-images/{image}/kernel", "kernel_parameters": kernel_parameters(image),
            "initrd": f"s3://boot-images/{image}/initrd"}


def xname(index: int) -> str:
    cabinet, rest = divmod(index, 256)
    chassis, rest = divmod(rest, 32)
    slot, rest = divmod(rest, 4)
    bmc, node = divmod(rest, 2)
    return f"x{1000 + cabinet}c{chassis}s{slot}b{bmc}n{node}"


def role(index: int) -> str:
    """Which query each component feeds (fixed positions, so counts scale with N)."""
    if index % 1000 == 500:
        return "small-session"      # 100 at 100k: GET ?session=bench-100
    if index % 100 == 7:
        return "hot"                # 1,000 at 100k: GET ?enabled=true&status=power_on_called
    if index % 5 == 1:
        return "enabled"            # on hold (PUT with enabled=true), 20,000 at 100k
    return "idle"


def session_of(index: int) -> str:
    return SMALL_SESSION if role(index) == "small-session" else BIG_SESSION


def component(index: int, tokens: List[str]) -> Dict[str, Any]:
    image = IMAGES[index % len(IMAGES)]
    arts = artifacts(image)
    kind = role(index)
    return {
        "id": xname(index),
        "desired_state": {"boot_artifacts": arts, "configuration": "compute-23.4.0", "bss_token": tokens[index % len(tokens)]},
        "actual_state": {"boot_artifacts": arts, "bss_token": tokens[index % len(tokens)]},
        "staged_state": {},
        "last_action": {"action": "powering_on", "failed": False},
        "event_stats": {"power_on_attempts": 1, "power_off_graceful_attempts": 0, "power_off_forceful_attempts": 0},
        "status": {"phase": "powering_on" if kind == "hot" else "", "status_override": ""},
        "enabled": kind in ("hot", "enabled"),
        "error": "",
        "session": session_of(index),
    }


# -- measurement helpers ------------------------------------------------------------------------

class Client:
    def __init__(self, base: str, concurrency: int) -> None:
        self.base = base
        connector = aiohttp.TCPConnector(limit=concurrency + 8)
        self.http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600),
                                          json_serialize=lambda v: orjson.dumps(v).decode())

    async def call(self, method: str, path: str, *, body: Any = None, params: Optional[dict] = None,
                   expect: int = 200) -> bytes:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        async with self.http.request(method, self.base + path, data=data, params=params, headers=headers) as resp:
            raw = await resp.read()
            if resp.status != expect:
                raise RuntimeError(f"{method} {path} -> {resp.status}: {raw[:300]!r}")
            return raw

    async def close(self) -> None:
        await self.http.close()


async def timed(fn: Callable[[], Awaitable[Any]]) -> Tuple[float, Any]:
    start = time.perf_counter()
    result = await fn()
    return time.perf_counter() - start, result


async def median_of(runs: int, fn: Callable[[], Awaitable[Any]]) -> Tuple[float, List[float], Any]:
    times, result = [], None
    for _ in range(runs):
        elapsed, result = await timed(fn)
        times.append(elapsed)
    return statistics.median(times), times, result


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# -- the benchmark ------------------------------------------------------------------------------

async def load(client: Client, count: int, tokens: List[str]) -> Dict[str, Any]:
    started = time.perf_counter()
    batch_times = []
    body_bytes = 0
    for start in range(0, count, BATCH):
        batch = [component(i, tokens) for i in range(start, min(count, start + BATCH))]
        body_bytes = max(body_bytes, len(orjson.dumps(batch)))
        elapsed, _ = await timed(lambda: client.call("PUT", "/v2/components", body=batch))
        batch_times.append(elapsed)
    # PUT with enabled=true puts a component on hold (api.md §2.4); the "hot" ones are past that
    hot = [{"id": xname(i), "status": {"status_override": ""}} for i in range(count) if role(i) == "hot"]
    for start in range(0, len(hot), BATCH):
        await client.call("PATCH", "/v2/components", body=hot[start:start + BATCH])
    total = time.perf_counter() - started
    return {"seconds": total, "components_per_second": count / total, "batches": len(batch_times),
            "batch_median_seconds": statistics.median(batch_times), "largest_batch_body_bytes": body_bytes}


async def get_list(client: Client, params: Optional[dict] = None) -> int:
    raw = await client.call("GET", "/v2/components", params=params)
    return len(raw)


async def paged_listing(client: Client) -> Tuple[int, int]:
    """All components, page by page as operators list them; returns (records, pages)."""
    after: Optional[str] = None
    records = pages = 0
    while True:
        params = {"page_size": str(BATCH)}
        if after is not None:
            params["start_after_id"] = after
        page = orjson.loads(await client.call("GET", "/v2/components", params=params))
        pages += 1
        records += len(page)
        if len(page) < BATCH:
            return records, pages
        after = page[-1]["id"]


async def patch_storm(client: Client, ids: List[str], tokens: List[str], requests: int,
                      concurrency: int) -> Dict[str, Any]:
    """Reporter-style single PATCHes from `concurrency` clients at once."""
    rng = random.Random(len(ids))
    latencies: List[float] = []
    statuses: Dict[int, int] = {}
    queue = [(rng.choice(ids), rng.choice(tokens)) for _ in range(requests)]
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(queue):
            cid, token = queue[position]
            position += 1
            body = orjson.dumps({"actual_state": {"bss_token": token}})
            start = time.perf_counter()
            async with client.http.patch(f"{client.base}/v2/components/{cid}", data=body,
                                         headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"rate": requests / elapsed, "latencies": latencies, "statuses": statuses}


async def bulk_patch(client: Client, slice_ids: List[int], image: str) -> int:
    arts = artifacts(image)
    body = [{"id": xname(i), "desired_state": {"boot_artifacts": arts, "configuration": "compute-23.4.1"},
             "session": session_of(i)} for i in slice_ids]
    raw = await client.call("PATCH", "/v2/components", body=body)
    return len(raw)


async def run(args: argparse.Namespace) -> Dict[str, Any]:
    workdir = scratch_dir("bos-bench-")
    redis = RedisServer(workdir / "redis")
    server: Optional[ApiServer] = None
    try:
        env = {"BOS_LOG_LEVEL": "WARNING"}
        server = ApiServer(workdir / "api", redis.url, env=env, extra_args=["--workers", str(args.workers)])
        client = Client(server.url, args.concurrency)
        try:
            return await measure(client, redis.url, args)
        finally:
            await client.close()
    finally:
        if server is not None:
            server.stop()
        redis.stop()


async def measure(client: Client, redis_url: str, args: argparse.Namespace) -> Dict[str, Any]:
    count, runs = args.components, args.runs
    results: Dict[str, Any] = {}
    tokens = [str(uuid.UUID(int=random.Random(n).getrandbits(128), version=4)) for n in range(len(IMAGES))]
    redis = Redis.from_url(redis_url)
    for image, token in zip(IMAGES, tokens):  # as the power-on operator records them (operators.md §5.6)
        await put_token(redis, token, artifacts(image))
    await client.call("PATCH", "/v2/options", body={"logging_level": "WARNING"})

    print(f"loading {count:,} components in batches of {BATCH:,} ...", flush=True)
    results["load"] = await load(client, count, tokens)
    info = await redis.info("memory")
    results["load"]["redis_used_memory_bytes"] = info["used_memory"]
    await redis.aclose()

    small = sum(1 for i in range(count) if role(i) == "small-session")
    hot = sum(1 for i in range(count) if role(i) == "hot")

    async def check(params: dict, expected: int) -> int:
        raw = await client.call("GET", "/v2/components", params=params)
        got = len(orjson.loads(raw))
        if got != expected:
            raise RuntimeError(f"GET /v2/components?{params} returned {got} records, expected {expected}")
        return len(raw)

    print("filtered listings ...", flush=True)
    median, times, size = await median_of(runs, lambda: check({"session": SMALL_SESSION}, small))
    results["get_session_filter"] = {"median_seconds": median, "runs": times, "matches": small, "bytes": size}
    params = {"enabled": "true", "status": HOT_STATUS}
    median, times, size = await median_of(runs, lambda: check(params, hot))
    results["get_enabled_status_filter"] = {"median_seconds": median, "runs": times, "matches": hot, "bytes": size}

    print("full listing ...", flush=True)
    full_runs = max(1, min(runs, args.full_runs))
    median, times, size = await median_of(full_runs, lambda: get_list(client))
    results["get_all"] = {"median_seconds": median, "runs": times, "matches": count, "bytes": size}

    print("paged listing ...", flush=True)
    median, times, (records, pages) = await median_of(full_runs, lambda: paged_listing(client))
    if records != count:
        raise RuntimeError(f"paged listing returned {records} records, expected {count}")
    results["paged_listing"] = {"median_seconds": median, "runs": times, "pages": pages,
                                "page_median_seconds": median / pages}

    print(f"single PATCH storm ({args.concurrency} concurrent) ...", flush=True)
    # reporters of booted, stable nodes: every component accepts an actual-state report (api.md §2.6)
    ids = [xname(i) for i in range(count)]
    storms = [await patch_storm(client, ids, tokens, args.patches, args.concurrency) for _ in range(runs)]
    latencies = [lat for s in storms for lat in s["latencies"]]
    statuses: Dict[str, int] = {}
    for s in storms:
        for code, n in s["statuses"].items():
            statuses[str(code)] = statuses.get(str(code), 0) + n
    results["single_patch"] = {"median_rate_per_second": statistics.median(s["rate"] for s in storms),
                               "runs_rate": [s["rate"] for s in storms], "requests_per_run": args.patches,
                               "concurrency": args.concurrency, "p50_seconds": percentile(latencies, 50),
                               "p99_seconds": percentile(latencies, 99), "statuses": statuses}

    print(f"bulk PATCH of {BATCH:,} ...", flush=True)
    candidates = [i for i in range(count) if role(i) == "idle"]
    slices = [candidates[(r * BATCH) % max(1, len(candidates) - BATCH):][:BATCH] for r in range(runs)]
    bulk_times = []
    for r, chunk in enumerate(slices):
        elapsed, _ = await timed(lambda: bulk_patch(client, chunk, IMAGES[(r + 1) % len(IMAGES)]))
        bulk_times.append(elapsed)
    results["bulk_patch"] = {"median_seconds": statistics.median(bulk_times), "runs": bulk_times,
                             "items": len(slices[0])}

    print("session extended status ...", flush=True)
    template = {"boot_sets": {"compute": {"path": "s3://boot-images/manifest.json", "type": "s3",
                                          "node_groups": ["compute"]}}}
    await client.call("PUT", "/v2/sessiontemplates/bench", body=template)
    await client.call("POST", "/v2/sessions", body={"name": BIG_SESSION, "operation": "shutdown",
                                                    "template_name": "bench"}, expect=201)
    await client.call("PATCH", "/v2/sessions/" + BIG_SESSION, body={"status": {"status": "running"}})
    moved = [{"id": xname(i), "session": BIG_SESSION} for i in range(count) if role(i) == "small-session"]
    if moved:
        await client.call("PATCH", "/v2/components", body=moved)

    async def status() -> Dict[str, Any]:
        return orjson.loads(await client.call("GET", f"/v2/sessions/{BIG_SESSION}/status"))

    median, times, body = await median_of(runs, status)
    if body["managed_components_count"] != count:
        raise RuntimeError(f"extended status counted {body['managed_components_count']} components, expected {count}")
    results["session_status"] = {"median_seconds": median, "runs": times, "managed_components_count": count}
    return results


def table(results: Dict[str, Any]) -> str:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.2f} s"

    load = results["load"]
    single = results["single_patch"]
    rows = [
        ("bulk PUT load (batches of 2,800)", f"{load['seconds']:,.1f} s total",
         f"{load['components_per_second']:,.0f} components/s; batch median {ms(load['batch_median_seconds'])}; "
         f"Redis {load['redis_used_memory_bytes'] / 2**20:,.0f} MiB"),
        (f"GET ?session=X ({results['get_session_filter']['matches']:,} matches)",
         ms(results["get_session_filter"]["median_seconds"]), f"{results['get_session_filter']['bytes']:,} B"),
        (f"GET ?enabled=true&status={HOT_STATUS} ({results['get_enabled_status_filter']['matches']:,})",
         ms(results["get_enabled_status_filter"]["median_seconds"]), f"{results['get_enabled_status_filter']['bytes']:,} B"),
        (f"GET /v2/components (all {results['get_all']['matches']:,})", ms(results["get_all"]["median_seconds"]),
         f"{results['get_all']['bytes'] / 2**20:,.0f} MiB"),
        (f"paged listing, page_size=2800 ({results['paged_listing']['pages']} pages)",
         ms(results["paged_listing"]["median_seconds"]), f"{ms(results['paged_listing']['page_median_seconds'])}/page"),
        (f"single PATCH actual_state.bss_token x{single['concurrency']}", f"{single['median_rate_per_second']:,.0f} req/s",
         f"p50 {ms(single['p50_seconds'])}, p99 {ms(single['p99_seconds'])}; statuses {single['statuses']}"),
        (f"bulk PATCH of {results['bulk_patch']['items']:,}", ms(results["bulk_patch"]["median_seconds"]), ""),
        (f"GET /v2/sessions/{{name}}/status ({results['session_status']['managed_components_count']:,} members)",
         ms(results["session_status"]["median_seconds"]), ""),
    ]
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [f"{'measurement'.ljust(width)}  {'median'.rjust(value_width)}  notes", "-" * (width + value_width + 40)]
    lines += [f"{name.ljust(width)}  {value.rjust(value_width)}  {notes}" for name, value, notes in rows]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--components", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median reported)")
    parser.add_argument("--full-runs", type=int, default=3, help="runs of the two full listings (they are slow)")
    parser.add_argument("--workers", type=int, default=1, help="bos-server worker processes")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent single-PATCH clients")
    parser.add_argument("--patches", type=int, default=5000, help="single PATCHes per run")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "api_store.json")
    args = parser.parse_args(argv)
    if args.components < 1 or args.runs < 1:
        parser.error("--components and --runs must be positive")
    results = asyncio.run(run(args))
    for entry in results.values():  # keep the JSON readable: raw latencies are summarised already
        entry.pop("latencies", None)
    report = {"benchmark": "api_store", "components": args.components, "runs": args.runs,
              "workers": args.workers, "concurrency": args.concurrency,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
              "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(results))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
