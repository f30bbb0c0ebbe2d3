"""The table's growth column: each row's per-item figure against the same row's at the smallest size
(issue 13: "cost grows linearly or better from 10k to 100k in every line"), and Redis' own per-record
cost at each keyspace size beside it, so the table tells BOS's growth from the server's."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402


def e2e(nodes: int, wall: float, api_cpu: float) -> Dict[str, Any]:
    return {"boot": {"wall_seconds": wall, "setup_seconds": 1.0},
            "processes": {"api": {"cpu_seconds": api_cpu, "rss_peak_mib": 100.0}}}


def api(seed_seconds: float, reporter_cpu_ms: float, mget_usec: float) -> Dict[str, Any]:
    reporter = {"median_rate_per_s": 10_000, "median_p50_ms": 6.0, "median_p99_ms": 10.0,
                "median_api_cpu_ms_per_request": reporter_cpu_ms}
    return {"reporter": {"same": reporter}, "load": {"seconds": seed_seconds, "batch": 1000},
            "bulk_patch": {"median_ms": 40.0, "items": 2800},
            "redis_mget": {"keys": 2800, "median_usec_per_key": mget_usec}}


def results() -> Dict[str, Any]:
    return {"e2e": {"zero": {"10000": e2e(10_000, 2.0, 3.0), "100000": e2e(100_000, 25.0, 27.0)}},
            "api": {"10000": api(0.15, 0.130, 0.5), "100000": api(1.8, 0.117, 1.1)}}


def by_row(size: str) -> Dict[str, str]:
    return {row[0]: row[4] for row in report.rows(results()) if row[1] == size}


def test_each_row_at_a_larger_size_shows_its_per_item_figure_against_the_smallest_sizes() -> None:
    small, large = by_row("10,000"), by_row("100,000")
    assert set(small.values()) == {""}  # the base
    assert large["End to end: boot, zero hardware latency"] == "1.25×"  # 250 against 200 µs/node
    assert large["CPU: API (all workers), boot + reboot"] == "0.90×"
    assert large["Seed: `PUT /v2/components`, 1,000 per request, sequential"] == "1.20×"
    assert large["Bulk `PATCH /v2/components`, 2,800 items with desired state (2 KiB kernel parameters)"] == "1.00×"
    assert large["Peak RSS: API (all workers), boot + reboot"] == "0.10×"
    assert large["Reporter `PATCH /v2/components/{id}`, (c) same token as stored"] == "0.90×"  # API CPU per request


def test_redis_alone_gives_its_own_cost_per_record_at_each_keyspace() -> None:
    rows = {(row[0], row[1]): row for row in report.rows(results())}
    name = "Redis alone: `MGET` of 2,800 stored records at random (no BOS code)"
    assert rows[(name, "10,000")][3] == "0.50 µs/record"
    assert rows[(name, "100,000")][4] == "2.20×"


def test_the_markdown_table_has_the_growth_column() -> None:
    header, rule, *lines = report.markdown_table(results()).splitlines()
    assert header.split(" | ")[4] == "Per item vs the smallest size"
    assert all(line.count("|") == rule.count("|") for line in lines)


def stack(reads: float, leases: float) -> Dict[str, Any]:
    """One zero-latency stack's counts per node, half in the boot and half in the reboot."""
    counts = {"operators": {"operator_components_read{status}": reads / 2, "operator_leases{asked}": leases / 2,
                            "operator_passes{status}": 9.0},
              "api": {"http_requests{PATCH,/v2/components/{component_id},204}": 1.0,
                      "http_requests{PATCH,/v2/components,200}": 0.002}}
    return {"boot": {"counts": counts}, "reboot": {"counts": counts}}


def test_the_work_per_node_has_rows_of_its_own_so_its_growth_is_told_from_its_cost() -> None:
    """The stack's work per node (records read, leases, API requests: bench/boot.py counts), boot
    and reboot together and the median over the size's stacks, beside the CPU rows: per node the
    same work at both sizes reads 1.00x even where its CPU per node grew."""
    data = results()
    data["e2e"]["zero"]["10000"]["runs"] = [stack(6.0, 8.0), stack(5.0, 7.0), stack(7.0, 9.0)]
    data["e2e"]["zero"]["100000"]["runs"] = [stack(6.0, 8.0)]
    rows = {(row[0], row[1]): row for row in report.rows(data)}
    reads = "Work: records the status operator read, boot + reboot"
    assert rows[(reads, "10,000")][2] == "6.00 per node (median of 3 stacks: 6.00 / 5.00 / 7.00)"
    assert rows[(reads, "10,000")][3] == "6.00/node"
    assert rows[(reads, "100,000")][4] == "1.00×"
    assert rows[("Work: component leases asked, boot + reboot", "100,000")][3] == "8.00/node"
    assert rows[("Work: API requests, boot + reboot", "100,000")][3] == "2.00/node"  # 2 x (1.0 + 0.002)
    written = rows[("Work: component records written, boot + reboot", "100,000")]  # never moved: none written
    assert (written[2], written[4]) == ("0.00 per node", "")
