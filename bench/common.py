"""What every benchmark shares: statistics, process sampling, machine facts, profiling.

Nothing here knows about BOS; `boot.py` and `api_store.py` measure, `report.py`
writes the results up, `run.py` strings them together for `make bench`.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
BIN = Path(sys.executable).parent


# -- statistics ---------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rounded(value: float, digits: int = 4) -> float:
    return round(value, digits)


# -- processes ----------------------------------------------------------------------------------

def _children(pid: int) -> List[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def process_tree(pid: int) -> List[int]:
    """`pid` and all its descendants (the API's SO_REUSEPORT workers are forked children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(_children(current))
    return found


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * PAGE
    except OSError:
        return 0


def machine_busy() -> float:
    """CPU seconds all cores of the machine have been busy since boot (/proc/stat; idle and iowait
    excluded): what other work took during a measurement is this minus the measured processes'."""
    with open("/proc/stat") as handle:
        ticks = [int(x) for x in handle.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICKS


def steal_seconds() -> float:
    """CPU seconds the hypervisor ran something else while this machine's cores wanted to run
    (/proc/stat's steal, all cores, since boot). A virtual machine's slow phases show here: the
    same commit measured 1.1-1.5x the CPU per request in a run with ~5 minutes of steal (issue 13)."""
    with open("/proc/stat") as handle:
        fields = handle.readline().split()
    return int(fields[8]) / TICKS if len(fields) > 8 else 0.0


SPEED_PROBE_ADDITIONS = 10_000_000


def speed_probe() -> float:
    """Seconds this interpreter takes for SPEED_PROBE_ADDITIONS additions in a loop: the host's speed
    for pure-Python work at this moment. The same host ran such a loop (at module level, slower
    than this one) in 0.81-0.91 s in one hour and ~1.6 s in another, with no steal and no load, and
    every CPU figure of a run moved with it (issue 13): the figure tells a slow hour from a slower
    commit."""
    started = time.perf_counter()
    total = 0
    for n in range(SPEED_PROBE_ADDITIONS):
        total += n
    return time.perf_counter() - started


MEMORY_PROBE_MIB = 256
MEMORY_PROBE_READS = 2_000_000


def memory_probe() -> float:
    """Nanoseconds one read at a random place in MEMORY_PROBE_MIB of memory costs beyond one in a
    32 KiB array, both in the same Python loop: the host's memory latency at this moment. In an hour
    when the speed probe's loop ran as fast as ever, Redis alone read a record 2-3x slower than in
    another and every process's CPU per node moved with it (sitting 39): the loop fits in the
    caches, Redis' keyspace at 100,000 nodes does not."""
    def loop(entries: int) -> float:
        values = array("q", bytes(8 * entries))
        step, at, total = 2654435761 % entries, 0, 0
        started = time.perf_counter()
        for _ in range(MEMORY_PROBE_READS):
            at = (at + step) % entries
            total += values[at]
        return time.perf_counter() - started
    large, small = loop(MEMORY_PROBE_MIB * 1024 * 1024 // 8), loop(4096)
    return max(0.0, large - small) / MEMORY_PROBE_READS * 1e9


IPC_PROBE_ROUND_TRIPS = 20_000


def ipc_probe() -> float:
    """Microseconds one byte's round trip between two processes over a socket pair takes: the host's
    cost of waking another process, which every HTTP call between the stack's processes pays. In an
    afternoon when the loop read as in the morning's fast hour and the memory probe alike before every
    part, every process's CPU per node was 1.6-2x the morning's (sitting 39): neither probe saw it."""
    ours, theirs = socket.socketpair()
    child = os.fork()
    if child == 0:  # echoes IPC_PROBE_ROUND_TRIPS bytes back, then leaves without cleanup
        ours.close()
        for _ in range(IPC_PROBE_ROUND_TRIPS):
            theirs.sendall(theirs.recv(1))
        os._exit(0)
    theirs.close()
    started = time.perf_counter()
    for _ in range(IPC_PROBE_ROUND_TRIPS):
        ours.sendall(b"x")
        ours.recv(1)
    took = time.perf_counter() - started
    ours.close()
    os.waitpid(child, 0)
    return took / IPC_PROBE_ROUND_TRIPS * 1e6


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def smaps_rollup_kib(pid: int, field: str) -> int:
    """One field of the process's /proc/<pid>/smaps_rollup, in KiB (0 when unreadable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size: each shared page divided among the processes mapping it."""
    return smaps_rollup_kib(pid, "Pss") * 1024


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


# PSS (smaps_rollup) walks every page table: ~30 ms of the sampler's CPU per reading of the
# stack's seven processes, 6 % of a core at two readings a second, which the measured stack
# lost on a two-core machine. It is read when a tree's RSS reaches a new peak (by PSS_STEP),
# where the PSS peak usually is, and every PSS_EVERY samples besides.
PSS_EVERY = 5
PSS_STEP = 1 << 20


@dataclass
class Watch:
    """RSS (peak, last) and CPU seconds of a few named process trees, sampled in a thread."""

    pids: Dict[str, int]
    period: float = 0.5
    peak: Dict[str, int] = field(default_factory=dict)
    last: Dict[str, int] = field(default_factory=dict)
    cpu_start: Dict[str, float] = field(default_factory=dict)
    pss_peak: Dict[str, int] = field(default_factory=dict)
    samples: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.monotonic()
        self.cpu_start = {name: tree_cpu(pid) for name, pid in self.pids.items()}
        self._sample()

    def _sample(self) -> None:
        self.samples += 1
        for name, pid in self.pids.items():
            procs = process_tree(pid)  # one walk of /proc for both sums, over the same processes
            rss = sum(rss_bytes(p) for p in procs)  # forked workers' shared pages count twice
            self.last[name] = rss
            rising = rss >= self.peak.get(name, 0) + PSS_STEP
            self.peak[name] = max(self.peak.get(name, 0), rss)
            if rising or self.samples % PSS_EVERY == 1:
                # PSS: the forked workers' shared pages counted once
                self.pss_peak[name] = max(self.pss_peak.get(name, 0), sum(pss_bytes(p) for p in procs))

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._sample()

    def __enter__(self) -> "Watch":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.seconds = time.monotonic() - self.started

    def count_cpu_from_here(self) -> Dict[str, float]:
        """Count each tree's CPU from now on; returns what it used until now. The end-to-end stacks
        call it when discovery is done, so that their "boot + reboot" CPU is the sessions' alone
        (as the Work rows' counts are) and not the discovery's bulk writes as well. RSS peaks are
        still those of the whole run (a memory limit's figure: the worst moment)."""
        now = {name: tree_cpu(pid) for name, pid in self.pids.items()}
        used = {name: round(now[name] - self.cpu_start[name], 2) for name in now}
        self.cpu_start = now
        return used

    def result(self) -> Dict[str, Dict[str, float]]:
        out = {}
        for name, pid in self.pids.items():
            cpu = tree_cpu(pid) - self.cpu_start[name]
            out[name] = {"rss_peak_mib": round(self.peak[name] / 2 ** 20, 1),
                         "rss_end_mib": round(self.last[name] / 2 ** 20, 1),
                         "pss_peak_mib": round(self.pss_peak[name] / 2 ** 20, 1),
                         "cpu_seconds": round(cpu, 2)}  # /proc counts 10 ms ticks: 0.1 s was 5 % of a 10,000-node run
        return out


# -- profiling ----------------------------------------------------------------------------------

class Profiler:
    """py-spy attached to running processes (flame graph SVG + collapsed stacks per process)."""

    def __init__(self, out_dir: Path, pids: Dict[str, int], rate: int = 50) -> None:
        self.procs: List[subprocess.Popen] = []
        exe = shutil.which("py-spy") or str(BIN / "py-spy")
        if not Path(exe).exists():
            print("py-spy is not installed (pip install py-spy): not profiling", file=sys.stderr, flush=True)
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            for fmt, suffix in (("raw", "txt"),):
                argv = [exe, "record", "--pid", str(pid), "--subprocesses", "--rate", str(rate),
                        "--format", fmt, "--output", str(out_dir / f"{name}.{suffix}"), "--nonblocking"]
                self.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)  # let py-spy attach before the measured work starts

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


# -- the machine --------------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    return 0.0


def _redis_version() -> str:
    exe = shutil.which("redis-server")
    if exe is None:
        return "not installed"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip()


def _wrk_version() -> Optional[str]:
    exe = shutil.which("wrk")
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).split("Copyright")[0].strip() or "unknown"


def machine() -> Dict[str, object]:
    import aiohttp
    import redis
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
            "os": platform.platform(), "python": platform.python_version(), "redis": _redis_version(),
            "aiohttp": aiohttp.__version__, "redis_py": redis.__version__, "wrk": _wrk_version()}


def wait_for(check: Callable[[], bool], timeout: float, what: str, period: float = 0.1,
             sleep: Callable[[float], None] = time.sleep) -> float:
    """Check until `check()` is true; returns the monotonic time it first was. Between checks
    `sleep(period)`: a fixed poll, or a wait that an event ends early (bench.changes)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        sleep(period)
