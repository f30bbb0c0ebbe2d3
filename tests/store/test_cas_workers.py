"""No lost update across server processes (D2, README): two `--workers` share one port and
one Redis, so only the compare-and-set write can keep concurrent writers of one record
from overwriting each other (each process batches its own writes, but not the other's).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Dict, List

import requests

from bos_sim.stack import ApiServer, RedisServer

ROUNDS = 30
# Each writer owns one field of the same record and writes it ROUNDS times.
WRITERS: Dict[str, Callable[[int], Dict[str, Any]]] = {
    "error": lambda n: {"error": f"e{n}"},
    "retry_policy": lambda n: {"retry_policy": n},
    "staged_kernel": lambda n: {"staged_state": {"boot_artifacts": {"kernel": f"k{n}"}}},
    "staged_configuration": lambda n: {"staged_state": {"configuration": f"s{n}"}},
    "power_on_attempts": lambda n: {"event_stats": {"power_on_attempts": n}},
    "power_off_graceful_attempts": lambda n: {"event_stats": {"power_off_graceful_attempts": n}},
}


def final_values(body: Dict[str, Any]) -> Dict[str, Any]:
    return {"error": body["error"], "retry_policy": body["retry_policy"],
            "staged_kernel": body["staged_state"]["boot_artifacts"]["kernel"],
            "staged_configuration": body["staged_state"]["configuration"],
            "power_on_attempts": body["event_stats"]["power_on_attempts"],
            "power_off_graceful_attempts": body["event_stats"]["power_off_graceful_attempts"]}


def test_d2_writers_on_two_worker_processes_never_lose_an_update(tmp_path: Path, redis_server: RedisServer) -> None:
    api = ApiServer(tmp_path, redis_server.url, extra_args=["--workers", "2"])
    try:
        ids = [f"xw{n}" for n in range(8)]
        for cid in ids:
            assert requests.put(f"{api.url}/v2/components/{cid}", json={"enabled": False}, timeout=10).ok
        failures: List[str] = []

        def writer(make: Callable[[int], Dict[str, Any]]) -> None:
            for n in range(1, ROUNDS + 1):
                for cid in ids:
                    # a new connection each time: the kernel spreads them over both workers
                    resp = requests.patch(f"{api.url}/v2/components/{cid}", json=make(n), timeout=10)
                    if resp.status_code != 200:
                        failures.append(f"{cid}: {resp.status_code} {resp.text[:200]}")

        threads = [threading.Thread(target=writer, args=(make,)) for make in WRITERS.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures[:5]
        expected = {"error": f"e{ROUNDS}", "retry_policy": ROUNDS, "staged_kernel": f"k{ROUNDS}",
                    "staged_configuration": f"s{ROUNDS}", "power_on_attempts": ROUNDS,
                    "power_off_graceful_attempts": ROUNDS}
        lost = {cid: final_values(requests.get(f"{api.url}/v2/components/{cid}", timeout=10).json())
                for cid in ids}
        lost = {cid: values for cid, values in lost.items() if values != expected}
        assert not lost, f"lost updates: {lost}"
    finally:
        assert api.stop() == 0
