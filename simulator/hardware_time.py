"""The simulated hardware's own time, node by node, so a benchmark subtracts what the hardware really needed.

Each hardware step a node completes (power on, boot, Soft-Off, Force-Off, one CFS
configuration attempt) adds the delay actually drawn for it (nominal ± jitter,
simulated seconds) to that node's tally, when the step completes. A node's steps
run one after another, and none of them waits for BOS once started, so the
largest tally since the last reset is the time a perfect orchestrator (one that
reacts at once and issues every node's request at the same instant) would need
for the job: `bench/boot.py` calls it the hardware time and counts everything
above it as orchestration overhead (docs/benchmarks.md). Steps that never
complete (an On overtaking a power-off, a boot cut short by a power-off) add
nothing; a failed configuration attempt counts, as the hardware spent it.

Beside the tallies, the wall times (since the reset) of each kind of event (a PCS
request reaching a node, a step done, a report accepted) make the session's
timeline: where BOS's own time went (`bench.boot`'s timeline). Each kind keeps its
first and last time and its deciles, which tell a spread bound by CPU (even) from
one bound by hand-offs between passes (steps).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

DECILES = 10  # quantiles of each kind of event in the summary: 10 %, 20 %, ... 90 %
KEPT_TIMES = 200_000  # times kept per kind for the deciles (a simulator never reset stays bounded)


class HardwareTime:
    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}
        self.steps = 0
        self.since = time.time()
        # kind -> (count, times): wall seconds since the reset, the first KEPT_TIMES of them and the last
        self.events: Dict[str, List[Any]] = {}

    def done(self, xname: str, sim_seconds: float, step: str = "step") -> None:
        """`xname` finished a hardware `step` that took `sim_seconds` of simulated time."""
        self.seconds[xname] = self.seconds.get(xname, 0.0) + sim_seconds
        self.steps += 1
        self.mark(step + " done")

    def mark(self, kind: str) -> None:
        """One event of `kind` now (one float appended: it runs for every node's every step; the
        times come in order, so the list stays sorted)."""
        now = time.time() - self.since
        seen = self.events.get(kind)
        if seen is None:
            self.events[kind] = [1, [now]]
            return
        seen[0] += 1
        times = seen[1]
        if len(times) < KEPT_TIMES:
            times.append(now)
        else:
            times[-1] = now

    def reset(self) -> None:
        self.seconds.clear()
        self.events.clear()
        self.steps = 0
        self.since = time.time()

    def summary(self, speed: float) -> Dict[str, Any]:
        """The slowest node's tally (simulated and wall seconds) and the mean, since the last reset."""
        out: Dict[str, Any] = {"since": round(self.since, 3), "speed": speed, "nodes": len(self.seconds),
                               "steps": self.steps, "max_seconds": 0.0, "max_wall_seconds": 0.0,
                               "mean_seconds": 0.0, "slowest": None,
                               "events": {kind: _spread(n, times) for kind, (n, times) in self.events.items()}}
        if self.seconds:
            slowest = max(self.seconds, key=self.seconds.__getitem__)
            top = self.seconds[slowest]
            out.update(max_seconds=round(top, 4), max_wall_seconds=round(top / speed, 4), slowest=slowest,
                       mean_seconds=round(sum(self.seconds.values()) / len(self.seconds), 4))
        return out


def _spread(count: int, times: List[float]) -> Dict[str, Any]:
    """First, last, count and deciles of one kind's event times (in order already; the deciles of
    the kept ones), all rounded alike, so the deciles lie between the first and the last (rounded
    to 2 digits, a decile of 0.0451 exceeded a last time of 0.045, itself 0.04 at 2 digits)."""
    kept = len(times)
    return {"first": round(times[0], 3), "last": round(times[-1], 3), "count": count,
            "deciles": [round(times[min(kept - 1, kept * k // DECILES)], 3) for k in range(1, DECILES)]}
