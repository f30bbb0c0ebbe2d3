"""Run-time settings of one simulator process (delays, speed, seed, failure rates).

Kept apart from the inventory: the inventory says *what* the cluster is, this
says *how fast and how badly* it behaves, and the CLI and an inventory file's
`delays:` section both feed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

# Default delays in simulated seconds (services.md §9.1).
DEFAULT_DELAYS: Dict[str, float] = {
    "power_on": 2.0,
    "boot": 5.0,
    "soft_off": 3.0,
    "force_off": 1.0,
    "configure": 3.0,
}

REPORT_CONCURRENCY = 256  # default parallel node reports (SimConfig.report_concurrency)

# Per-node fault kinds that CLI rates may assign (faults.NodeFaults field names).
RATE_FAULTS = ("ignore_soft_off", "fail_power_on", "fail_boot", "fail_config", "pcs_error")


@dataclass
class SimConfig:
    """Everything that tunes behaviour but is not inventory."""

    seed: int = 0
    speed: float = 1.0
    jitter: float = 0.1
    delays: Dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DELAYS))
    # Probability per node (0..1) of each persistent per-node fault, decided from the seed.
    rates: Dict[str, float] = field(default_factory=lambda: {kind: 0.0 for kind in RATE_FAULTS})
    bos_url: Optional[str] = None
    real_reporters: int = 0
    # Node reports in flight at once (keep-alive connections). A real cluster's nodes report
    # independently, thousands at once after a boot wave; 64 shared senders let the API's write
    # batcher (server/store/write_batcher.py) coalesce at most ~32 reports per worker, and a
    # 100,000-node boot's reports queued behind them (issue 13: at 50,000 nodes 256 cut the
    # stack's CPU from 31.9 s to 26.2 s and the boot from 38.7 s to 24.6 s).
    report_concurrency: int = REPORT_CONCURRENCY
    cfs_retry_limit: int = 3
    record_limit: int = 1000
    record_body_limit: int = 1 << 20
    host: str = "127.0.0.1"
    pcs_error_text: str = "permission denied - system credentials failed"

    def delay(self, kind: str) -> float:
        return self.delays.get(kind, DEFAULT_DELAYS.get(kind, 1.0))
