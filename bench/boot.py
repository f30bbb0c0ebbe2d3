"""End to end: wall time from `POST /v2/sessions` to session `complete`, for N simulated nodes.

One stack per (N, latency): Redis, the simulator with N nodes, the API and the
operators (simulator/stack.py). After discovery has created the N components,
a boot session of every node runs, then a reboot session of every node (the
nodes are on and booted by then, so the reboot powers them off and on again).

Latency "zero": every simulated hardware delay is 0 (pure orchestration
overhead). Latency "realistic": the simulator's default delays (power-on 2 s,
boot 5 s, soft-off 3 s, force-off 1 s, configure 3 s, jitter 10 %): nominally
10 s of hardware on one node's path for a boot and 13 s for a reboot. The
hardware time of a session is what the simulator drew: the slowest node's
completed steps, each with its jitter (`GET /sim/hardware-time`, reset at the
POST); the overhead is the wall time minus that (docs/benchmarks.md).

While the stack runs, RSS and CPU of Redis, the API (all worker processes),
the operators and the simulator are sampled; Redis `used_memory` is read after
the boot session.

    .venv/bin/python -m bench.boot --nodes 1000 [--latency zero|realistic] [--profile DIR] [--replicas N] [--breakdown]
                                  [--report-concurrency N] [--poll]

The wall time ends when the driver sees the session `complete`: it checks the store at each
change event that may have ended a wait (bench/changes.py), so within a few ms of the write;
`--poll` checks every 0.1 s instead, as before sitting 35 (each wall up to 0.1 s longer).

Each session also reports `counts`: what every process did per node, from the API's and the
operators' /metrics read before and after it (passes and seconds in passes per operator stay
absolute; records re-read, components acted on, lease events, service requests, API requests and
compare-and-set records written/conflicted are per node). Runs of the same tree that differ in
CPU but not in these counts did the same work at a different cost per unit (issue 13: the
bimodal 100k runs).

`--breakdown` adds Redis memory by kind of key after the first session (`MEMORY USAGE` of every
key: record, history, each index, leases, receipts; docs/metrics.md).

`--replicas N` runs N `bos-operators` processes side by side (docs/ha.md): the cost of
coordinating replicas is the wall time against `--replicas 1`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import requests
from redis import Redis

from bos_shared.options import DEFAULTS
from bos_shared.schema import SESSION_STATUSES
from bos_sim.config import DEFAULT_DELAYS
from bos_sim.inventory import DEFAULT_IMAGE_ID, GOOD_CONFIGS
from bos_sim.stack import Operators, Stack
from bos_server.metrics import FLUSH_SECONDS
from bos_server.store import keys

from .changes import ChangeEvents
from .common import Profiler, Watch, wait_for

ZERO_DELAYS = ["--power-on-delay", "0", "--boot-delay", "0", "--soft-off-delay", "0", "--force-off-delay", "0",
               "--configure-delay", "0", "--jitter", "0"]
MANIFEST = f"s3://boot-images/{DEFAULT_IMAGE_ID}/manifest.json"
HARDWARE_PATH = {"boot": ("power_on", "boot", "configure"),
                 "reboot": ("soft_off", "power_on", "boot", "configure")}
OPERATIONS = ("boot", "reboot")


def nominal_hardware_seconds(operation: str, latency: str) -> float:
    """One node's path with the nominal delays (no jitter): for reference next to the drawn time."""
    if latency == "zero":
        return 0.0
    return sum(DEFAULT_DELAYS[step] for step in HARDWARE_PATH[operation])


class Driver:
    """The client side of one end-to-end run (requests on loopback, Redis for cheap counts, the
    store's change events to see a session's milestones as they happen; `events=False`: the
    0.1 s poll alone, as before, to compare)."""

    def __init__(self, stack: Stack, events: bool = True) -> None:
        self.base = stack.api.url + "/v2"
        self.sim = stack.sim
        self.http = requests.Session()
        self.redis = Redis.from_url(stack.redis.url)
        self.metrics: Dict[str, str] = {"api": stack.api.url + "/metrics"}
        self.events = ChangeEvents(self.redis).start() if events else None

    def sleep(self, period: float) -> None:
        """The wait between two checks of a milestone: until the next change event that may have
        reached it (bench.changes), or `period` without the events."""
        if self.events is None:
            time.sleep(period)
        else:
            self.events.sleep(period)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.http.request(method, self.base + path, timeout=600, **kw)
        if resp.status_code >= 300:
            raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:300]}")
        return resp.json() if resp.content else None

    def components(self) -> int:
        return int(self.redis.zcard(keys.COMPONENT_IDS))

    def enabled(self) -> int:
        return int(self.redis.zcard(keys.COMPONENT_ENABLED))

    def used_memory(self) -> int:
        return int(self.redis.info("memory")["used_memory"])

    def key_breakdown(self) -> Dict[str, Dict[str, int]]:
        """Redis memory by kind of key (`MEMORY USAGE` of every key; a bench-only full scan)."""
        out: Dict[str, Dict[str, int]] = {}
        for key in self.redis.scan_iter(count=1000):
            kind = key_kind(key.decode(errors="replace"))
            row = out.setdefault(kind, {"keys": 0, "bytes": 0})
            row["keys"] += 1
            row["bytes"] += int(self.redis.memory_usage(key, samples=0) or 0)
        return dict(sorted(out.items(), key=lambda item: -item[1]["bytes"]))

    def command_stats(self) -> Dict[str, Dict[str, float]]:
        """Redis `INFO commandstats`: calls and CPU microseconds per command (scripts count as EVALSHA
        and FCALL, with the commands they run counted again under their own names)."""
        stats = self.redis.info("commandstats")
        return {name.split("_", 1)[1] if name.startswith("cmdstat_") else name:
                {"calls": float(row["calls"]), "usec": float(row["usec"])} for name, row in stats.items()}

    def session_status(self, name: str) -> str:
        """The session's status from the store's status index (one ZSCORE per status). Checked at
        each session event (polled every 0.1 s before): a
        `GET /v2/sessions/{name}` answers the whole record, whose `components` string is ~1.4 MB at
        100,000 nodes; fetching and parsing it ten times a second took the driver ~20 % of a core
        (7.5 % at 30,000), CPU the measured stack lost on a two-core machine."""
        member = keys.scoped_member(None, name)
        for status in SESSION_STATUSES:
            if self.redis.zscore(keys.sessions_by_status(status), member) is not None:
                return status
        raise RuntimeError(f"session {name} is in no status index")

    def record_sizes(self) -> Dict[str, int]:
        """One component as the API returns it and as Redis stores it (bytes)."""
        record = self.call("GET", "/components", params={"page_size": "1"})[0]
        stored = self.redis.memory_usage(keys.component(record["id"])) or 0
        return {"json_bytes": len(json.dumps(record, separators=(",", ":"))), "redis_value_bytes": int(stored)}

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
        self.http.close()
        self.redis.close()


_KINDS = re.compile(r"^(bos:(?:idx:comp:(?:session|staged|phase|status)|idx:[a-z-]+(?::[a-z-]+)?|lease:[a-z]+"
                    r"|decision:[a-z_]+|v1:[a-z-]+:[a-z-]+|[a-z-]+))")


def key_kind(key: str) -> str:
    """A key's kind: its name up to the variable part (`bos:comp`, `bos:idx:comp:phase`, `bos:lease:comp`)."""
    match = _KINDS.match(key)
    return match.group(1) if match else key


def redis_commands(before: Mapping[str, Mapping[str, float]], after: Mapping[str, Mapping[str, float]],
                   nodes: int, top: int = 8) -> Dict[str, Dict[str, float]]:
    """The commands that took most of Redis's CPU during a session: calls and microseconds per node."""
    rows = []
    for name, row in after.items():
        calls = row["calls"] - before.get(name, {}).get("calls", 0.0)
        usec = row["usec"] - before.get(name, {}).get("usec", 0.0)
        if calls > 0:
            rows.append((usec, name, calls))
    return {name: {"calls_per_node": round(calls / nodes, 2), "usec_per_node": round(usec / nodes, 1)}
            for usec, name, calls in sorted(rows, reverse=True)[:top]}


# Counters read from the API's and the operators' /metrics around each session (docs/metrics.md):
# what each operator did per node (passes, time in passes, components acted on, lease traffic), the
# API requests by route and the compare-and-set rounds' conflicts. A slow run shows here as more of
# something (issue 13: bimodal 100k boots).
COUNTED = {"bos_operator_passes_total": ("operator",), "bos_operator_pass_duration_seconds_sum": ("operator",),
           "bos_operator_components_acted_on_total": ("operator",),
           "bos_operator_components_read_total": ("operator",), "bos_operator_leases_total": ("event",),
           "bos_service_requests_total": ("service", "method"), "bos_service_retries_total": ("service",),
           "bos_store_component_writes_total": ("outcome",), "bos_http_requests_total": ("method", "route", "status")}


def scrape(url: str) -> Dict[str, float]:
    """The COUNTED samples of one /metrics page, keyed `name{label values}`; {} if it cannot be read."""
    from prometheus_client.parser import text_string_to_metric_families
    try:
        text = requests.get(url, timeout=30).text
    except requests.RequestException:
        return {}
    out: Dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = COUNTED.get(sample.name)
            if labels is not None:
                name = sample.name.replace("bos_", "", 1).replace("_total", "")
                key = f"{name}{{{','.join(sample.labels.get(label, '') for label in labels)}}}"
                out[key] = out.get(key, 0.0) + sample.value
    return out


def scrape_all(driver: "Driver") -> Dict[str, Dict[str, float]]:
    """Every process's counters, once their per-request tallies are in: a worker's counts reach
    the scrape files within FLUSH_SECONDS (server/metrics.py), and a scrape is answered by one
    worker only, so the other's last half second of writes could be missed, or counted in the
    next session (a clean-clone CI once saw 0.46 component writes per node)."""
    time.sleep(FLUSH_SECONDS + 0.1)  # the documented delivery bound, outside the timed window
    return {name: scrape(url) for name, url in driver.metrics.items()}


def counts_per_node(before: Mapping[str, float], after: Mapping[str, float], nodes: int) -> Dict[str, float]:
    """What changed between two scrapes, per node (passes and seconds stay absolute: they are per session)."""
    out: Dict[str, float] = {}
    for key, value in sorted(after.items()):
        delta = value - before.get(key, 0.0)
        if delta:
            absolute = key.startswith(("operator_passes", "operator_pass_duration"))
            out[key] = round(delta if absolute else delta / nodes, 3)
    return out


def run_session(driver: Driver, name: str, operation: str, nodes: int, timeout: float) -> Dict[str, Any]:
    driver.sim.hardware_time(reset=True)
    commands = driver.command_stats()
    counters = scrape_all(driver)
    if driver.events is not None:
        driver.events.counted()  # from the POST on
    cpu = time.process_time()
    started = time.monotonic()
    posted = time.time()
    driver.call("POST", "/sessions", json={"name": name, "template_name": "bench", "operation": operation})
    running: Optional[float] = None
    settled: Optional[float] = None  # wall time the driver first saw no enabled component

    def complete() -> bool:
        nonlocal running, settled
        status = driver.session_status(name)
        if running is None and status != "pending":
            running = time.monotonic()
        if settled is None and running is not None and driver.enabled() == 0:
            settled = time.time()
        return status == "complete"

    done = wait_for(complete, timeout, f"{operation} session of {nodes:,} nodes", period=0.1, sleep=driver.sleep)
    completed = time.time()
    cpu = time.process_time() - cpu
    events = driver.events.counted() if driver.events is not None else None
    status = driver.call("GET", f"/sessions/{name}/status")
    if status["managed_components_count"] != nodes or status["percent_successful"] != 100:
        raise RuntimeError(f"{operation} session of {nodes:,} nodes did not succeed: "
                           f"{json.dumps({k: status[k] for k in ('managed_components_count', 'percent_successful', 'error_summary')})}")
    wall = done - started
    hardware = driver.sim.hardware_time()  # every node is configured by now: nothing is still running
    after = scrape_all(driver)
    return {"wall_seconds": round(wall, 2),
            "setup_seconds": round((running or done) - started, 2),
            "managed": status["managed_components_count"], "percent_successful": status["percent_successful"],
            "hardware_seconds": round(hardware["max_wall_seconds"], 2),
            "hardware_mean_seconds": round(hardware["mean_seconds"] / hardware["speed"], 2),
            "overhead_seconds": round(wall - hardware["max_wall_seconds"], 2),
            "completed_unix": round(completed, 3),  # to line up with the stack's logs
            "driver_cpu_seconds": round(cpu, 3),  # the bench's own, taken from the measured stack's cores
            **({"change_events": events} if events else {}),
            "redis_commands": redis_commands(commands, driver.command_stats(), nodes),
            "counts": {name: counts_per_node(counters[name], after[name], nodes) for name in driver.metrics},
            "timeline": timeline(hardware, posted, (running or done) - started + posted, settled, completed),
            "phases": phases(hardware, posted, (running or done) - started + posted, settled, completed)}


def timeline(hardware: Mapping[str, Any], posted: float, running: float, settled: Optional[float],
             completed: float) -> Dict[str, Any]:
    """Where a session's wall time went, in seconds since the hardware clock's reset (just before the
    POST): the simulator's first/last of each kind of node event (a PCS request reaching a node, each
    step done, a report accepted) with its 10/50/90 % times, and BOS's own milestones as the driver saw
    them, woken by the change events (running, no component enabled any more, complete)."""
    since = hardware["since"]
    bos = {"POST sent": posted, "running (setup done)": running, "no component enabled": settled,
           "complete": completed}
    out: Dict[str, Any] = {k: round(v - since, 2) for k, v in bos.items() if v is not None}
    for kind, seen in sorted(hardware.get("events", {}).items(), key=lambda item: item[1]["first"]):
        deciles = seen.get("deciles") or []
        middle = f" p10/50/90 {deciles[0]:.2f}/{deciles[4]:.2f}/{deciles[8]:.2f}" if len(deciles) == 9 else ""
        out[kind] = f"{seen['first']:.2f} .. {seen['last']:.2f} ({seen['count']}){middle}"
    return out


def phases(hardware: Mapping[str, Any], posted: float, running: float, settled: Optional[float],
           completed: float) -> Dict[str, float]:
    """The session's wall time cut at its milestones, in order (seconds): POST -> setup done -> first
    power action at a node -> last On at a node -> last node booted -> last CFS configured -> no
    component enabled -> complete. The first three and the last two gaps are BOS's; the two between
    are the hardware's (power-on + boot, configure), widened by the last nodes' jitter."""
    since = hardware["since"]
    events = hardware.get("events", {})

    def first(kind: str) -> Optional[float]:
        return since + events[kind]["first"] if kind in events else None

    def last(kind: str) -> Optional[float]:
        return since + events[kind]["last"] if kind in events else None
    actions = [t for t in (first("On reached the node"), first("soft_off reached the node")) if t is not None]
    marks = [("setup (POST -> running)", posted, running),
             ("running -> first power action at a node", running, min(actions) if actions else None),
             ("first power action -> last On at a node", min(actions) if actions else None,
              last("On reached the node")),
             ("last On -> last node booted", last("On reached the node"), last("boot done")),
             ("last node booted -> last CFS configured", last("boot done"), last("configure done")),
             ("last CFS configured -> no component enabled", last("configure done"), settled),
             ("no component enabled -> complete", settled, completed)]
    return {name: round(end - start, 2) for name, start, end in marks if start is not None and end is not None}


def run_stack(nodes: int, latency: str, *, operations: Sequence[str] = OPERATIONS, timeout: float = 1800,
              api_workers: int = 2, profile: Optional[Path] = None, keep: bool = False,
              log=print, replicas: int = 1, breakdown: bool = False,
              report_concurrency: Optional[int] = None, events: bool = True) -> Dict[str, Any]:
    """Start a stack of `nodes`, run each operation once; returns timings, memory and record sizes.

    `report_concurrency` overrides the simulator's node reports in flight (its default otherwise), so a run
    can be repeated with an earlier default (64 before 8080cdc) and compared. `events=False` sees the
    milestones by the 0.1 s poll alone (before sitting 35: each wall up to 0.1 s longer)."""
    work = Path(tempfile.mkdtemp(prefix=f"bos-bench-e2e-{nodes}-"))
    sim_args = list(ZERO_DELAYS if latency == "zero" else [])
    result: Dict[str, Any] = {"nodes": nodes, "latency": latency, "api_workers": api_workers}
    if report_concurrency is not None:
        sim_args += ["--report-concurrency", str(report_concurrency)]
        result["report_concurrency"] = report_concurrency
    if replicas != 1:
        result["operator_replicas"] = replicas
    if not events:
        result["detection"] = "0.1 s poll"
    try:
        with Stack(work, nodes=nodes, sim_args=sim_args, sim_timeout=600, operators=False,
                   api_args=["--workers", str(api_workers)], env={"BOS_LOG_LEVEL": "WARNING"}) as stack:
            driver = Driver(stack, events=events)
            try:
                baseline = driver.used_memory()
                driver.call("PATCH", "/options", json=dict(DEFAULTS))
                operators = [stack.adopt(Operators(work / f"ops{i}" if i else work / "ops", stack.bos_url,
                                                   stack.redis.url, stack.sim.urls, env=stack.sim.env()))
                             for i in range(replicas)]
                driver.metrics["operators"] = operators[0].metrics_url
                pids = {"redis": stack.redis.proc.pid, "api": stack.api.proc.pid,
                        "operators": operators[0].proc.pid, "simulator": stack.sim.proc.pid}
                pids.update({f"operators{i + 1}": op.proc.pid for i, op in enumerate(operators[1:], 1)})
                started = time.monotonic()
                with Watch(pids) as watch:
                    wait_for(lambda: driver.components() >= nodes, 600, "discovery", period=0.2)
                    result["discovery_seconds"] = round(time.monotonic() - started, 2)
                    driver.call("PUT", "/sessiontemplates/bench", json={
                        "cfs": {"configuration": GOOD_CONFIGS[0]},
                        "boot_sets": {"compute": {"path": MANIFEST, "type": "s3", "node_groups": ["compute", "uan"],
                                                  "rootfs_provider": "sbps", "rootfs_provider_passthrough": "sbps:v1:x"}}})
                    result["discovery_cpu_seconds"] = watch.count_cpu_from_here()
                    for operation in operations:
                        log(f"  {operation} session, {nodes:,} nodes, {latency} latency ...")
                        profiler = Profiler(profile / f"{nodes}-{latency}-{operation}", pids) if profile else None
                        try:
                            timing = run_session(driver, f"bench-{operation}", operation, nodes, timeout)
                        finally:
                            if profiler:
                                profiler.stop()
                        timing["hardware_nominal_seconds"] = nominal_hardware_seconds(operation, latency)
                        result[operation] = timing
                        log(f"    {timing['wall_seconds']:.2f} s (setup {timing['setup_seconds']:.2f} s)")
                        if operation == operations[0]:
                            used = driver.used_memory()
                            result["redis_used_memory_bytes"] = used
                            result["redis_bytes_per_component"] = round((used - baseline) / nodes, 1)
                            result["record"] = driver.record_sizes()
                            if breakdown:
                                result["redis_keys"] = driver.key_breakdown()
                result["processes"] = watch.result()
            finally:
                driver.close()
    finally:
        if keep:
            result["logs"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--latency", choices=["zero", "realistic"], default="zero")
    parser.add_argument("--operation", choices=OPERATIONS, action="append",
                        help="boot and/or reboot (default: both, boot first)")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of every process into this folder")
    parser.add_argument("--keep", action="store_true", help="keep the stack's logs")
    parser.add_argument("--replicas", type=int, default=1, help="bos-operators processes side by side")
    parser.add_argument("--breakdown", action="store_true",
                        help="after the first session: Redis memory by kind of key (MEMORY USAGE of every key)")
    parser.add_argument("--report-concurrency", type=int,
                        help="node reports the simulator keeps in flight (default: the simulator's own)")
    parser.add_argument("--poll", action="store_true",
                        help="see each milestone by the 0.1 s poll alone, not the change events (the timing before "
                             "sitting 35, to compare)")
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    if args.report_concurrency is not None and args.report_concurrency < 1:
        parser.error("--report-concurrency must be at least 1")
    result = run_stack(args.nodes, args.latency, operations=args.operation or OPERATIONS, timeout=args.timeout,
                       api_workers=args.api_workers, profile=args.profile, keep=args.keep, replicas=args.replicas,
                       breakdown=args.breakdown, report_concurrency=args.report_concurrency,
                       events=not args.poll)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
