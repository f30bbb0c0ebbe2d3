"""Paired A/B of end-to-end sessions (issue 13): two checkouts' stacks, interleaved, compared pair by pair.

A realistic 10,000-node session's overhead moves by 0.3-0.6 s from one run to the next on a
shared two-core machine: the host's speed drifts within minutes (the same session's operators'
CPU took 0.72 s in one run and 1.05 s in the next), so two sides measured one after the other,
or a median of three runs each, say more about the hour than about the code. Here each pair
runs both sides back to back, in the order base-new, new-base, base-new, ... (a drift in speed
favours neither side), and each operation's paired difference (new - base) is reported with
its median, beside each side's median and how many pairs the new side won.

Each side is a checkout with its own `make venv`; its own `bench.boot` runs its own stack
(`<checkout>/.venv/bin/python -m bench.boot`), so a side's driver is that checkout's too
(`--base-args` / `--new-args`, e.g. `--poll` for the same detection on both sides). Beside the
overhead, each run's head is shown: POST to the last power action that reached a node (a
boot's last `On`, a reboot's last Soft-Off), where the overhead of a realistic session is
(docs/benchmarks-history.md, "Where a realistic session's overhead is"); and each process's CPU over
the stack ("cpu"), paired the same way.

    .venv/bin/python -m bench.ab_boot --base /tmp/base [--new .] [--pairs 6] [--nodes 10000]
                                      [--latency realistic] [--base-args=--poll] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .boot import OPERATIONS

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("base", "new")
FIGURES = ("overhead", "head", "setup")
LAST_ACTION = {"boot": "On reached the node", "reboot": "soft_off reached the node"}


def order(pairs: int) -> Iterator[Tuple[int, str]]:
    """(pair, side) in the order they run: base first in odd pairs, new first in even ones."""
    for pair in range(pairs):
        for side in (SIDES if pair % 2 == 0 else SIDES[::-1]):
            yield pair, side


def last_of(spread: Any) -> Optional[float]:
    """The last time of a timeline spread ("1.64 .. 2.16 (10000) p10/50/90 ..."), or None. Read from
    the text because that is all a result carries, an older checkout's (the base side) too."""
    if not isinstance(spread, str) or " .. " not in spread:
        return None
    try:
        return float(spread.split(" .. ", 1)[1].split()[0])
    except ValueError:
        return None


def figures(timing: Dict[str, Any], operation: str) -> Dict[str, Optional[float]]:
    """One session's overhead, setup and head (POST to the last power action at a node)."""
    timeline = timing.get("timeline") or {}
    last, posted = last_of(timeline.get(LAST_ACTION[operation])), timeline.get("POST sent")
    head = round(last - posted, 2) if last is not None and isinstance(posted, (int, float)) else None
    return {"overhead": timing.get("overhead_seconds"), "setup": timing.get("setup_seconds"), "head": head}


def cpu_seconds(run: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """Each process's CPU over the run's whole stack (discovery, boot and reboot): where a change
    moved the work, which the overheads alone do not show (sitting 42: the simulator's CPU halved
    with the overheads unchanged)."""
    return {name: proc.get("cpu_seconds") for name, proc in (run.get("processes") or {}).items()}


def _paired(base: Sequence[Dict[str, Optional[float]]], new: Sequence[Dict[str, Optional[float]]],
            name: str) -> List[Tuple[float, float]]:
    """(base, new) values of figure `name`, pair by pair; a pair missing it on either side is left out."""
    out: List[Tuple[float, float]] = []
    for base_run, new_run in zip(base, new):
        b, n = base_run.get(name), new_run.get(name)
        if b is not None and n is not None:
            out.append((b, n))
    return out


def _row(paired: List[Tuple[float, float]]) -> Dict[str, Any]:
    """Each side's values and median, the paired differences (new - base), their median, and in how
    many pairs the new side's value was the lower."""
    diffs = [round(n - b, 2) for b, n in paired]
    return {"base": [b for b, _ in paired], "new": [n for _, n in paired],
            "base_median": round(statistics.median(b for b, _ in paired), 2),
            "new_median": round(statistics.median(n for _, n in paired), 2),
            "differences": diffs, "difference_median": round(statistics.median(diffs), 2),
            "new_lower": sum(1 for d in diffs if d < 0), "pairs": len(diffs)}


def _rows(per_run: Dict[str, List[Dict[str, Optional[float]]]], names: Sequence[str]) -> Dict[str, Any]:
    rows: Dict[str, Any] = {}
    for name in names:
        paired = _paired(per_run["base"], per_run["new"], name)
        if paired:
            rows[name] = _row(paired)
    return rows


def compare(runs: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Any]:
    """Per operation and figure, then per process's CPU ("cpu"), the paired comparison (`_row`)."""
    out: Dict[str, Any] = {}
    pairs = min(len(runs["base"]), len(runs["new"]))
    for operation in OPERATIONS:
        out[operation] = _rows({side: [figures(run[operation], operation) for run in runs[side][:pairs]]
                                for side in SIDES}, FIGURES)
    cpu = {side: [cpu_seconds(run) for run in runs[side][:pairs]] for side in SIDES}
    out["cpu"] = _rows(cpu, sorted({name for side in SIDES for run in cpu[side] for name in run}))
    return out


def one_run(checkout: Path, nodes: int, latency: str, extra: Sequence[str]) -> Dict[str, Any]:
    argv = [str(checkout / ".venv" / "bin" / "python"), "-m", "bench.boot", "--nodes", str(nodes),
            "--latency", latency, *extra]
    done = subprocess.run(argv, cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0 or "{" not in done.stdout:
        raise RuntimeError(f"{' '.join(argv)} in {checkout} failed ({done.returncode}): {done.stderr[-2000:]}")
    result: Dict[str, Any] = json.loads(done.stdout[done.stdout.index("{"):])
    return result


def lines(result: Dict[str, Any]) -> Iterator[str]:
    for operation, rows in result["comparison"].items():
        for name, row in rows.items():
            yield (f"{operation:6} {name:8} base {row['base_median']:.2f} s, new {row['new_median']:.2f} s; "
                   f"new - base median {row['difference_median']:+.2f} s, new lower in {row['new_lower']} of "
                   f"{row['pairs']} pairs (differences {' '.join(f'{d:+.2f}' for d in row['differences'])})")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (with its own .venv)")
    parser.add_argument("--new", type=Path, default=ROOT, help="this side's checkout (default: this one)")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--latency", default="realistic", choices=("zero", "realistic"))
    parser.add_argument("--base-args", default="", help="further bench.boot arguments of the base side")
    parser.add_argument("--new-args", default="", help="further bench.boot arguments of the new side")
    parser.add_argument("--out", type=Path, help="write every run and the comparison here (JSON)")
    args = parser.parse_args(argv)
    checkouts = {"base": args.base.resolve(), "new": args.new.resolve()}
    extra = {"base": shlex.split(args.base_args), "new": shlex.split(args.new_args)}
    runs: Dict[str, List[Dict[str, Any]]] = {side: [] for side in SIDES}
    for pair, side in order(args.pairs):
        result = one_run(checkouts[side], args.nodes, args.latency, extra[side])
        runs[side].append(result)
        print(f"pair {pair + 1} {side}: " + ", ".join(
            f"{op} overhead {result[op]['overhead_seconds']:.2f} s" for op in OPERATIONS if op in result),
            f"({time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)
    result = {"workload": f"bench.boot --nodes {args.nodes} --latency {args.latency}, {args.pairs} interleaved pairs",
              "checkouts": {side: str(path) for side, path in checkouts.items()},
              "comparison": compare(runs), "runs": runs}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    for line in lines(result):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
