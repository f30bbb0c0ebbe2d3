"""`make bench`: every benchmark on the real stack, then JSON, plots and docs/benchmarks.md.

    .venv/bin/python bench/run.py                  # full: 1k/10k/100k (about 25 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick          # smoke sizes, under two minutes
    .venv/bin/python bench/run.py --api-sizes 10000 --e2e-sizes 1000,10000 --latencies zero
    .venv/bin/python bench/run.py --only e2e       # re-run one part, keep the other's results
    .venv/bin/python bench/run.py --realistic-runs 5   # median of 5 realistic-latency stacks (default 3)

Parts: `api` (bench/api_store.py: reporter load, queries, bulk PATCH, Redis memory,
once per --api-sizes entry) and `e2e` (bench/boot.py: boot and reboot sessions per
--e2e-sizes entry and latency, with process memory; a realistic-latency stack
--realistic-runs times, reported by its median run per operation). Results go to
<out>/results.json (small: medians and per-run values only), <out>/scaling.png
and the generated part of --doc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median, median_low
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` from anywhere
    sys.path.insert(0, str(ROOT))

from bench import api_store, boot, report  # noqa: E402
from bench.common import ipc_probe, machine, memory_probe, speed_probe, steal_seconds  # noqa: E402

FULL = {"api_sizes": [1_000, 10_000, 100_000], "e2e_sizes": [1_000, 10_000, 100_000],
        "runs": 7, "full_runs": 5, "load_seconds": 10.0, "load_runs": 3, "realistic_runs": 3,
        "zero_runs": 3}
QUICK = {"api_sizes": [1_000], "e2e_sizes": [200], "runs": 3, "full_runs": 2, "load_seconds": 2.0,
         "load_runs": 2, "realistic_runs": 1, "zero_runs": 1}


def sizes(text: str) -> List[int]:
    values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive sizes")
    return values


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes (1,000 components, 200-node sessions)")
    parser.add_argument("--api-sizes", type=sizes, help="component counts of the API/store part")
    parser.add_argument("--e2e-sizes", type=sizes, help="node counts of the end-to-end part")
    parser.add_argument("--latencies", default="zero,realistic", help="zero and/or realistic")
    parser.add_argument("--realistic-max", type=int, default=0,
                        help="skip realistic-latency sessions above this many nodes (0 = none skipped)")
    parser.add_argument("--realistic-runs", type=int,
                        help="realistic-latency stacks per size, reported by the median run of each operation "
                             "(default 3; quick: 1): one run's overhead varies by 0.1-0.4 s with the machine's load")
    parser.add_argument("--zero-runs", type=int,
                        help="zero-latency stacks per size, each operation reported by its median run and each "
                             "process's CPU by its median (default 3; quick: 1): one run's operators' CPU at 10,000 "
                             "nodes moved by a tenth between stacks, and with it the growth column")
    parser.add_argument("--only", choices=["api", "e2e"], help="run one part; the other's results are kept")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results, quick: bench/results/quick)")
    parser.add_argument("--doc", type=Path, help="document whose generated part is rewritten (default "
                        "docs/benchmarks.md; quick: <out>/benchmarks.md, so a smoke run never replaces the full table)")
    parser.add_argument("--e2e-timeout", type=float, default=1800, help="seconds per session")
    parser.add_argument("--profile", type=Path, help="py-spy profiles of every e2e session into this folder")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    api_store.add_arguments(parser)
    parser.set_defaults(runs=None, full_runs=None, load_seconds=None, load_runs=None)
    args = parser.parse_args(argv)
    for name in ("realistic_runs", "zero_runs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    preset = QUICK if args.quick else FULL
    for name, value in preset.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    args.latencies = [x.strip() for x in args.latencies.split(",") if x.strip()]
    if not set(args.latencies) <= {"zero", "realistic"}:
        parser.error("--latencies takes zero and/or realistic")
    args.out = args.out or (ROOT / "bench" / "results" / ("quick" if args.quick else ""))
    args.doc = args.doc or (args.out / "benchmarks.md" if args.quick else ROOT / "docs" / "benchmarks.md")
    return args


def log(text: str) -> None:
    print(text, flush=True)


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


Probes = Optional[List[Dict[str, Any]]]


def probe_host(probes: Probes, part: str) -> None:
    """The host's three probes (bench/common.py) before `part`, into `probes` (None: not probed). A
    per-item figure is divided by the same row's at the smallest size, measured minutes earlier:
    when the host's speed moved in between, the probes beside each part show it."""
    if probes is not None:
        probes.append({"part": part, "loop_seconds": round(speed_probe(), 2), "memory_ns": round(memory_probe()),
                       "ipc_us": round(ipc_probe(), 1)})


def run_api(args: argparse.Namespace, probes: Probes = None) -> Dict[str, Any]:
    out = {}
    for count in args.api_sizes:
        probe_host(probes, f"API/store, {count:,}")
        log(f"API/store, {count:,} components (bos-server --workers {args.workers}):")
        out[str(count)] = asyncio.run(api_store.run_size(count, args, log))
    return out


def run_e2e(args: argparse.Namespace, probes: Probes = None) -> Dict[str, Any]:
    """Each latency's stacks, the sizes taken in turn (10,000, 100,000, 10,000, ...): the growth
    column divides a size's per-node figures by the smallest size's, and the host's speed drifts
    from one minute to the next (docs/benchmarks.md, "Noise"), so that each size's runs are spread
    over the same minutes and a drift moves every size alike, not one size's three runs."""
    out: Dict[str, Dict[str, Any]] = {}
    for latency in args.latencies:
        sizes = []
        for nodes in args.e2e_sizes:
            if latency == "realistic" and args.realistic_max and nodes > args.realistic_max:
                log(f"end to end, {nodes:,} nodes, realistic latency: skipped (--realistic-max)")
            else:
                sizes.append(nodes)
        count = args.realistic_runs if latency == "realistic" else args.zero_runs
        runs: Dict[int, List[Dict[str, Any]]] = {nodes: [] for nodes in sizes}
        for run in range(count):
            for nodes in sizes:
                if not run:
                    probe_host(probes, f"end to end, {nodes:,}, {latency}")
                log(f"end to end, {nodes:,} nodes, {latency} latency" + (f", run {run + 1} of {count}:" if count > 1
                                                                          else ":"))
                runs[nodes].append(boot.run_stack(nodes, latency, timeout=args.e2e_timeout, api_workers=args.workers,
                                                  profile=args.profile, log=log))
        for nodes in sizes:
            out.setdefault(latency, {})[str(nodes)] = median_run(runs[nodes])
    return out


def median_run(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Several stacks of one size and latency as one result: each operation's timing is that of the
    run with the median overhead share (with zero hardware latency: the median overhead, its wall
    time), the lower of the middle two for an even count: a run that happened, with its phases and
    counts; plus every run's overhead (`runs_overhead_seconds`, `runs_overhead_percent`) and the
    chosen run's number (`run`, from 1). The stack's own figures are those of the first operation's
    median run, but for each process's CPU, the median of the runs' (the growth column's CPU per
    node: one stack's figure moved by a tenth), and its peak RSS, the largest of the runs' (a
    limit's figure: the worst run). `runs` keeps every run whole. One run is returned as it is."""
    if len(runs) == 1:
        return runs[0]
    out: Dict[str, Any] = {}
    for operation in (op for op in boot.OPERATIONS if op in runs[0]):
        timings = [run[operation] for run in runs]
        shares = [_median_key(timing) for timing in timings]
        index = shares.index(median_low(shares))
        if not out:  # the stack's own figures: those of the first operation's median run
            out = dict(runs[index])
        out[operation] = {**timings[index], "run": index + 1,
                          "runs_overhead_seconds": [timing["overhead_seconds"] for timing in timings],
                          "runs_overhead_percent": [round(100 * report.overhead_share(timing), 1) for timing in timings]}
    if all("processes" in run for run in runs):
        out["processes"] = _processes(runs)
    out["runs"] = list(runs)
    return out


def _median_key(timing: Dict[str, Any]) -> float:
    """What a run's operation is ranked by: its overhead share, or with no hardware time its overhead."""
    return report.overhead_share(timing) if timing.get("hardware_seconds") else timing["overhead_seconds"]


def _processes(runs: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Each process's figures over several stacks: its CPU the median, its peak RSS the largest."""
    out: Dict[str, Dict[str, Any]] = {}
    for name in runs[0]["processes"]:
        figures = [run["processes"].get(name, {}) for run in runs]
        merged = dict(figures[0])
        cpu = [f["cpu_seconds"] for f in figures if f.get("cpu_seconds") is not None]
        if cpu:
            merged["cpu_seconds"] = round(median(cpu), 2)
            merged["runs_cpu_seconds"] = cpu
        rss = [f["rss_peak_mib"] for f in figures if f.get("rss_peak_mib") is not None]
        if rss:
            merged["rss_peak_mib"] = max(rss)
        out[name] = merged
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load_start = list(os.getloadavg())  # other work on the machine distorts every wall time
    steal_start = steal_seconds()  # and so does the hypervisor's, which no load average shows
    probes: List[Dict[str, Any]] = []  # and the host's own speed, which neither shows (probe_host)
    probe_host(probes, "start")
    results_file = args.out / "results.json"
    previous: Dict[str, Any] = {}
    if args.only and results_file.exists():
        previous = json.loads(results_file.read_text())
    results: Dict[str, Any] = {
        "meta": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "mode": "quick" if args.quick else "full",
                 "revision": git_revision(), "machine": machine(),
                 "settings": {"api_sizes": args.api_sizes, "e2e_sizes": args.e2e_sizes, "latencies": args.latencies,
                              "runs": args.runs, "full_runs": args.full_runs, "load_seconds": args.load_seconds,
                              "load_runs": args.load_runs, "connections": args.connections,
                              "realistic_runs": args.realistic_runs, "zero_runs": args.zero_runs,
                              "api_workers": args.workers, "e2e_sizes_in_turn": True,
                              "e2e_cpu": "sessions"}},
        "api": previous.get("api", {}), "e2e": previous.get("e2e", {})}
    if args.only in (None, "api"):
        results["api"] = run_api(args, probes)
    if args.only in (None, "e2e"):
        results["e2e"] = run_e2e(args, probes)
    probe_host(probes, "end")
    results["meta"]["probes"] = probes
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    results["meta"]["load_average"] = {"start": load_start, "end": list(os.getloadavg())}
    results["meta"]["steal_seconds"] = round(steal_seconds() - steal_start, 1)
    results["meta"]["speed_probe_seconds"] = {"start": probes[0]["loop_seconds"], "end": probes[-1]["loop_seconds"]}
    results["meta"]["memory_probe_ns"] = {"start": probes[0]["memory_ns"], "end": probes[-1]["memory_ns"]}
    if args.only and previous:
        kept = "e2e" if args.only == "api" else "api"
        results["meta"]["kept"] = {kept: (previous.get("meta", {}).get("kept", {}).get(kept)
                                          or previous.get("meta", {}).get("date", "?"))}
    args.out.mkdir(parents=True, exist_ok=True)
    results["targets"] = report.evaluate(results)
    results_file.write_text(json.dumps(results, indent=1) + "\n")
    plots = [] if args.no_plots else report.plot(results, args.out)
    report.write_doc(results, args.doc, plots)
    log("")
    log(report.table(results))
    log(f"\nresults: {results_file}; document: {args.doc}; {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
