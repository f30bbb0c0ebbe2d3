"""Where each process's CPU per node goes, at two or more sizes: `perf record -a` over a boot and a
reboot (zero latency), split by process and C function.

The "CPU: ..." rows of `make bench` grow 1.1-1.3x per node from 10,000 to 100,000 nodes while the
"Work" rows (records read, leases asked, records written, API requests per node) do not. This
tells whether that growth is more work (the interpreter's loop, Lua, sorted-set depth: functions
whose time per node would grow with it) or the same work on a larger heap (hash-table look-ups,
the allocator, the collector: functions that wait on memory once the data no longer fits the
caches). Sampling starts when the first session is posted (the stack's start-up and discovery are
left out) and stops when the last has completed; `cpu-clock` is a software event, so it works in
a virtual machine without hardware counters.

Redis as Debian ships it is stripped: its C functions read `[unknown]`. To name them, build the
same version with symbols and put it first on PATH (the stack starts the first `redis-server` it
finds), e.g. `apt-get source redis && make -C redis-7.0.15 CFLAGS=-g` and
`PATH=$PWD/redis-7.0.15/src:$PATH`.

    .venv/bin/python -m bench.cpu_split [--nodes 10000 --nodes 100000] [--top 12] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .boot import run_stack
from .common import process_tree

HZ = 499
ROLES = (("bos-operators", "operators"), ("bos-server", "api"), ("bos-sim", "simulator"),
         ("redis-server", "redis"))
SAMPLE = re.compile(r"^\s*(?P<pid>\d+)\s+[0-9a-f]+\s+(?P<sym>.+?)\s+\((?P<dso>[^()]*)\)\s*$")
Key = Tuple[str, str]  # (role, "function [library]")


def role_of(cmdline: str) -> Optional[str]:
    """The stack process a command line belongs to (None: the bench itself, perf, anything else)."""
    for marker, role in ROLES:
        if marker in cmdline:
            return role
    return None


def stack_roles(root: int) -> Dict[int, str]:
    """pid -> role of every stack process under `root` (the API's workers count as the API)."""
    roles = {}
    for pid in process_tree(root):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        role = role_of(cmdline)
        if role:
            roles[pid] = role
    return roles


def tally(lines: Iterable[str], roles: Dict[int, str]) -> Counter[Key]:
    """Samples per (role, function) from `perf script -F pid,ip,sym,dso` lines."""
    counts: Counter[Key] = Counter()
    for line in lines:
        match = SAMPLE.match(line)
        if match is None or int(match["pid"]) not in roles:
            continue
        counts[(roles[int(match["pid"])], f"{match['sym']} [{match['dso'].rsplit('/', 1)[-1].strip('[]')}]")] += 1
    return counts


def per_node_us(samples: float, nodes: int) -> float:
    return samples / HZ / nodes * 1e6


def split(runs: Dict[int, Counter[Key]], top: int) -> Dict[str, Any]:
    """Per role: CPU per node at each size, its growth, and the functions whose time per node grew
    or shrank most between the smallest and the largest size (µs per node)."""
    small, large = min(runs), max(runs)
    out: Dict[str, Any] = {}
    for _marker, role in ROLES:
        at = {n: per_node_us(sum(c for (r, _f), c in counts.items() if r == role), n) for n, counts in runs.items()}
        if not at[small]:
            continue
        functions = {f for n in (small, large) for (r, f) in runs[n] if r == role}
        rows = sorted(((per_node_us(runs[small][(role, f)], small), per_node_us(runs[large][(role, f)], large), f)
                       for f in functions), key=lambda row: row[1] - row[0], reverse=True)
        out[role] = {"us_per_node": {str(n): round(v, 1) for n, v in at.items()},
                     "growth": round(at[large] / at[small], 2),
                     "grew": [[f, round(a, 1), round(b, 1)] for a, b, f in rows[:top]],
                     "shrank": [[f, round(a, 1), round(b, 1)] for a, b, f in rows[::-1][:3]]}
    return out


class Recorder:
    """`perf record -a` from the first session's start (the `log` callback of `run_stack`)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.roles: Dict[int, str] = {}

    def log(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        if self.proc is None and " session, " in message:
            self.roles = stack_roles(os.getpid())
            self.proc = subprocess.Popen(["perf", "record", "-a", "-F", str(HZ), "-e", "cpu-clock", "-o",
                                          str(self.data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> Optional[Counter[Key]]:
        """Stop perf and tally its samples; None if no session started (perf never ran)."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=120)
        script = subprocess.run(["perf", "script", "-i", str(self.data), "-F", "pid,ip,sym,dso"],
                                capture_output=True, text=True, check=True).stdout
        return tally(script.splitlines(), self.roles)


def measure(nodes: int) -> Counter[Key]:
    with tempfile.TemporaryDirectory(prefix="bos-cpu-split-") as work:
        recorder = Recorder(Path(work) / "perf.data")
        try:
            run_stack(nodes, "zero", log=recorder.log)
        finally:
            counts = recorder.stop()  # perf never outlives the run
        if counts is None:  # the stack's log wording changed: fail, not an empty split
            raise RuntimeError("no session started: nothing recorded")
        return counts


def render(result: Dict[str, Any]) -> str:
    lines = []
    for role, row in result.items():
        sizes = " -> ".join(f"{v:.1f}" for v in row["us_per_node"].values())
        lines.append(f"{role}: {sizes} µs of CPU per node ({row['growth']:.2f}x)")
        for f, a, b in row["grew"]:
            lines.append(f"  {a:7.1f} {b:7.1f} {b - a:+6.1f}  {f}")
        lines.append("  ...")
        for f, a, b in row["shrank"]:
            lines.append(f"  {a:7.1f} {b:7.1f} {b - a:+6.1f}  {f}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, action="append", help="sizes (default: 10000 and 100000)")
    parser.add_argument("--top", type=int, default=12, help="functions shown per process")
    parser.add_argument("--out", type=Path, help="write the split as JSON here too")
    args = parser.parse_args(argv)
    sizes = sorted(set(args.nodes or [10000, 100000]))
    if len(sizes) < 2:
        parser.error("give at least two sizes")
    if shutil.which("perf") is None:
        parser.error("perf is not installed (Debian: linux-perf)")
    result = split({n: measure(n) for n in sizes}, args.top)
    print(render(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
