"""Per-component history (extension, api.md §3.4.6): every transition, in order, with reasons;
bounded in length; tenant-scoped; paged."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
import redis as redis_lib

from bos_server.store import keys
from bos_server.store.history import ENTRY_BYTES, decode
from tests.operators.stack import Stack
from tests.operators.test_lifecycle import boot

pytestmark = pytest.mark.slow


def history(cluster: Stack, node: str, **params: Any) -> List[Dict[str, Any]]:
    resp = cluster.api.get(f"/v2/components/{node}/history", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def statuses(entries: List[Dict[str, Any]]) -> List[str]:
    return [e["status"] for e in entries]


def test_reboot_with_a_failing_node(cluster: Stack) -> None:
    cluster.set_options(default_retry_policy=2, max_boot_wait_time=3)
    nodes = cluster.take(6)
    boot(cluster, "hist-first", nodes)
    broken, good = nodes[0], nodes[1]
    start = history(cluster, good)[-1]["id"]
    cluster.sim.set_node_faults([broken], fail_boot=True)
    boot(cluster, "hist-reboot", nodes, operation="reboot")

    stable = history(cluster, good, start_after=start)
    assert all(e["session"] == "hist-reboot" for e in stable)
    seen = statuses(stable)
    # The whole reboot, in order: off, on, stable again. No power_off_pending nor power_on_pending:
    # the status operator's S3/S6 and S2b patches are carried by the power operators' action updates
    # (operators.md §3, "S2b carried by power-on", "S3/S6 carried by power-off-graceful").
    order = ["power_off_gracefully_called", "power_on_called", "stable"]
    positions = [seen.index(s) for s in order]
    assert positions == sorted(positions), seen
    assert "power_off_pending" not in seen and "power_on_pending" not in seen, seen
    assert seen[-1] == "stable" and stable[-1]["phase"] == ""
    assert all(e["reason"] for e in stable)
    assert [e["id"] for e in stable] == sorted(e["id"] for e in stable)

    failed = history(cluster, broken, start_after=start)
    assert statuses(failed)[-1] == "failed"
    assert failed[-1]["error"] and any("error set" in e["reason"] for e in failed)
    # Two power-on attempts, each one a transition into power_on_called.
    assert statuses(failed).count("power_on_called") == 2
    assert failed[-1]["enabled"] is False


def test_history_is_bounded_and_paged(cluster: Stack) -> None:
    node = cluster.take(1)[0]
    for n in range(45):  # more changes than the default bound (30)
        resp = cluster.api.patch(f"/v2/components/{node}", json={"error": f"e{n}"})
        assert resp.status_code == 200
    redis = redis_lib.Redis.from_url(cluster.stack.redis.url)
    try:
        stored = redis.get(keys.component_history(node))  # trimmed past 30 x ENTRY_BYTES (history.py)
        assert 30 <= len(decode(stored)) and len(stored) <= 31 * ENTRY_BYTES
    finally:
        redis.close()
    first = history(cluster, node, page_size=20)
    rest = history(cluster, node, start_after=first[-1]["id"])
    assert len(first) == 20 and len(rest) == 10
    assert rest[-1]["error"] == "e44" and first[0]["error"] == "e15"


def test_unchanged_writes_append_nothing(cluster: Stack) -> None:
    node = cluster.take(1)[0]
    before = len(history(cluster, node))
    for _ in range(3):
        assert cluster.api.patch(f"/v2/components/{node}", json={"retry_policy": 4}).status_code == 200
    assert len(history(cluster, node)) == before


def test_bad_requests(cluster: Stack) -> None:
    node = cluster.take(1)[0]
    resp = cluster.api.get(f"/v2/components/{node}/history", params={"start_after": "yesterday"})
    assert resp.status_code == 400 and "start_after" in resp.json()["detail"]
    resp = cluster.api.get(f"/v2/components/{node}/history", params={"page_size": "0"})
    assert resp.status_code == 400
    resp = cluster.api.get("/v2/components/x9999c0s0b0n0/history")
    assert resp.status_code == 404 and resp.json()["detail"] == "Component 'x9999c0s0b0n0' does not exist"
