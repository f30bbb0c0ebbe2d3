"""Redis's own cost per record read, by keyspace size, with no BOS code: the yardstick for the
growth column of `make bench`.

The "CPU: ..." rows of `make bench` grow 1.1-1.3x per node from 10,000 to 100,000 nodes while the
work per node does not, and `bench/cpu_split.py` finds that growth in hash-table look-ups and
allocators. This measures the same look-ups alone: a throw-away `redis-server` holding N records
of a booted component's size under the store's own key names, read by the "Redis alone" row's
method (`bench.api_store.redis_alone`: `MGET` of 2,800 records at random, Redis's own microseconds
per record from `INFO commandstats`). The sizes are taken in turn, round after round, so a drift
in the host's speed moves every size alike.

`--huge-pages` measures each size a second time with Redis's heap on 2 MiB pages (jemalloc's
`thp:always`, Redis's `disable-thp no`). If the growth were the TLB's (more pages than it maps),
huge pages would take most of it away; if it stays, the data has outgrown the caches. Each row
gives the heap's huge pages as the kernel counted them (`AnonHugePages`), so a host whose
transparent huge pages are `never` shows 0 there rather than a false comparison.

    .venv/bin/python -m bench.keyspace [--sizes 10000,100000,1000000] [--rounds 2] [--huge-pages] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from redis.asyncio import Redis

from bos_server.store import keys
from bos_sim.inventory import node_xname
from bos_sim.stack import RedisServer

from .api_store import REDIS_ALONE_RUNS, redis_alone
from .common import median, smaps_rollup_kib

RECORD_BYTES = 584  # a component as a boot on the simulator leaves it, in Redis (the table's footer)
FILL_BATCH = 1000
HUGE_ENV = {"MALLOC_CONF": "thp:always", "JE_MALLOC_CONF": "thp:always"}  # Debian's jemalloc; Redis's own
HUGE_ARGS = ("--disable-thp", "no")  # else Redis turns huge pages off for itself where they are "always"


def parse_sizes(text: str) -> List[int]:
    """"10000,100000" -> [10000, 100000]: at least one size, each at least 2,800 (one MGET's worth)."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of sizes: {text!r}") from None
    if not sizes or min(sizes) < 2800:
        raise argparse.ArgumentTypeError(f"sizes must be 2800 or more: {text!r}")
    return sizes


async def fill(redis: Redis, count: int) -> None:
    """`count` records of RECORD_BYTES under the store's component keys, each value its own."""
    pad = b"x" * RECORD_BYTES
    for start in range(0, count, FILL_BATCH):
        await redis.mset({keys.component(node_xname(i)): pad[:RECORD_BYTES - 8] + b"%08d" % i
                          for i in range(start, min(count, start + FILL_BATCH))})


async def read_cost(url: str, count: int, runs: int) -> Dict[str, Any]:
    redis = Redis.from_url(url)
    try:
        await fill(redis, count)
        return await redis_alone(redis, count, runs)
    finally:
        await redis.aclose()


def measure(count: int, huge: bool, runs: int) -> Dict[str, Any]:
    """One throw-away Redis of `count` records: its µs per record read and its huge pages."""
    with tempfile.TemporaryDirectory(prefix="bos-keyspace-") as work:
        server = RedisServer(Path(work), extra_args=HUGE_ARGS if huge else (), env=HUGE_ENV if huge else None)
        try:
            result = asyncio.run(read_cost(server.url, count, runs))
            result["huge_page_kib"] = smaps_rollup_kib(server.proc.pid, "AnonHugePages")
            return result
        finally:
            server.stop()


def summarise(rounds: Sequence[Dict[str, Dict[str, Any]]], sizes: Sequence[int]) -> Dict[str, Any]:
    """Per mode and size: each round's median µs per record, their median, its ratio to the
    smallest size's, and the huge pages seen (the least of the rounds')."""
    out: Dict[str, Any] = {}
    for mode in rounds[0]:
        rows: Dict[str, Any] = {}
        for size in sizes:
            seen = [r[mode][str(size)] for r in rounds]
            rows[str(size)] = {"usec_per_record": round(median([s["median_usec_per_key"] for s in seen]), 3),
                               "rounds": [s["median_usec_per_key"] for s in seen],
                               "huge_page_kib": min(s["huge_page_kib"] for s in seen)}
        base = rows[str(sizes[0])]["usec_per_record"]
        for row in rows.values():
            row["vs_smallest"] = round(row["usec_per_record"] / base, 2) if base else None
        out[mode] = rows
    return out


def render(summary: Dict[str, Any]) -> str:
    lines = ["| Pages | Records | µs of Redis CPU per record read | vs the smallest | Rounds | Huge pages (MiB) |",
             "|---|---:|---:|---:|---|---:|"]
    for mode, rows in summary.items():
        for size, row in rows.items():
            rounds = " / ".join(f"{v:.3f}" for v in row["rounds"])
            ratio = "n/a" if row["vs_smallest"] is None else f"{row['vs_smallest']:.2f}x"
            lines.append(f"| {mode} | {int(size):,} | {row['usec_per_record']:.3f} | {ratio} "
                         f"| {rounds} | {row['huge_page_kib'] // 1024} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[10_000, 100_000, 1_000_000],
                        help="records per keyspace, comma-separated (default 10000,100000,1000000)")
    parser.add_argument("--rounds", type=int, default=2, help="times each size is measured, in turn")
    parser.add_argument("--runs", type=int, default=REDIS_ALONE_RUNS, help="MGETs per measurement")
    parser.add_argument("--huge-pages", action="store_true", help="also with Redis's heap on 2 MiB pages")
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.runs < 1:
        parser.error("--rounds and --runs must be at least 1")
    modes = {"4 KiB": False, **({"2 MiB": True} if args.huge_pages else {})}
    rounds: List[Dict[str, Dict[str, Any]]] = []
    for number in range(args.rounds):
        seen: Dict[str, Dict[str, Any]] = {mode: {} for mode in modes}
        for size in args.sizes:
            for mode, huge in modes.items():
                print(f"round {number + 1}: {size:,} records, {mode} pages ...", file=sys.stderr, flush=True)
                seen[mode][str(size)] = measure(size, huge, args.runs)
        rounds.append(seen)
    summary = summarise(rounds, args.sizes)
    print(render(summary))
    if args.out:
        args.out.write_text(json.dumps({"sizes": args.sizes, "record_bytes": RECORD_BYTES, "summary": summary,
                                        "rounds": rounds}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
