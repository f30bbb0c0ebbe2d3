"""Memory of component histories at scale: `python bench/history_memory.py [--components 100000]`.

Appends history entries for N components through the store's own compare-and-set
script (cas.py, the path every component write takes) into a scratch redis-server,
and reports Redis's used memory per component for one boot's worth of entries and
for a full history (the default bound). The history keys alone are measured: the
component records are written once before the baseline is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import redis as redis_lib
from redis.asyncio import Redis

from bos_server.store import keys
from bos_server.store.cas import CasWriter, Write
from bos_server.store.history import HistorySettings, decode, entry
from bos_sim.inventory import node_xname
from bos_sim.stack import RedisServer

SESSION = "3f6c0d2e-9b1f-4c55-8a0e-2f0e4b6c7d8a"
# One boot's transitions as the operators write them (status, phase, last action)
STEPS = [("power_on_pending", "powering_on", "session_setup"), ("power_on_called", "powering_on", "powering_on"),
         ("configuring", "configuring", "powering_on"), ("stable", "", "powering_on")]


def record(component_id: str, step: int) -> dict:
    status, phase, action = STEPS[step % len(STEPS)]
    return {"id": component_id, "enabled": True, "session": SESSION, "error": "",
            "status": {"phase": phase, "status_override": ""}, "last_action": {"action": action, "failed": False},
            "event_stats": {"power_on_attempts": step}}


async def fill(url: str, count: int, entries: int, settings: HistorySettings) -> None:
    redis = Redis.from_url(url)
    writer = CasWriter(redis, settings)
    try:
        for start in range(0, count, 500):
            ids = [node_xname(i) for i in range(start, min(count, start + 500))]
            for step in range(entries):
                writes = [Write(f"scratch:{i}", i, "", None, history=entry(record(i, step - 1) if step else None,
                                                                          record(i, step))) for i in ids]
                await writer.apply(writes)  # the records themselves are not stored (value None)
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--components", type=int, default=100_000)
    args = parser.parse_args()
    settings = HistorySettings()
    with tempfile.TemporaryDirectory() as where:
        server = RedisServer(Path(where))
        client = redis_lib.Redis.from_url(server.url)
        try:
            for entries in (8, settings.max_entries):
                client.flushall()
                before = int(client.info("memory")["used_memory"])
                asyncio.run(fill(server.url, args.components, entries, settings))
                grown = int(client.info("memory")["used_memory"]) - before
                sample = len(decode(client.get(keys.component_history(node_xname(0))) or b""))
                print(f"{args.components} components x {sample} history entries: {grown / 2**20:.0f} MiB "
                      f"({grown / args.components:.0f} bytes per component)")
        finally:
            client.close()
            server.stop()


if __name__ == "__main__":
    main()
