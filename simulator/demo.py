"""`python -m bos_sim.demo`: boot a simulated cluster end to end through real BOS processes.

Starts redis-server, the API server, the simulator and the operators on free
loopback ports in a temporary directory, creates the session template of
`examples/session-template.json` (pointed at the simulator's image), starts a
`boot` session, shows its progress, prints the final extended status and
stops everything, also on Ctrl-C.

The dashboard URL is printed as soon as the API is up; with `--keep-running`
(`make demo KEEP=1`) on a terminal the stack stays up after the session until
Ctrl-C, so the page can be explored.

Exit status: 0 when the session completed and exactly the nodes expected to
succeed did (with injected failures, the nodes the simulator made faulty in a
way BOS cannot repair are expected to fail); 1 otherwise; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from bos_cli.main import main as bos

from .stack import Simulator, Stack, json_request, scratch_dir

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "session-template.json"
TEMPLATE_NAME = "demo-compute"
SESSION_NAME = "demo-boot"
# Faults BOS cannot repair: such nodes end `failed` (retry limit or CFS failure).
FATAL_FAULTS = ("fail_power_on", "fail_boot", "fail_config", "pcs_error")
RATE_FLAGS = ("fail_soft_off_rate", "fail_power_on_rate", "fail_boot_rate", "fail_cfs_rate", "pcs_error_rate")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bos_sim.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000, help="simulated nodes (default 1000)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulator speed factor (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the session (default 900)")
    parser.add_argument("--template", type=Path, default=EXAMPLE, help="session template JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) afterwards")
    parser.add_argument("--keep-running", action="store_true",
                        help="on a terminal, keep the stack up after the session until Ctrl-C (make demo KEEP=1)")
    for flag in RATE_FLAGS:
        parser.add_argument(f"--{flag.replace('_', '-')}", type=float, default=0.0, metavar="R",
                            help="share of nodes with this injected fault (0..1)")
    return parser.parse_args(argv)


def demo_options(speed: float) -> Dict[str, Any]:
    """BOS options for a short demo: quick passes, short waits before a retry, standard retry limit."""
    slowest = max(1, round(10 / speed))  # power-on 2 s + boot 5 s (+ margin) at this speed
    return {"polling_frequency": 5, "discovery_frequency": 5, "default_retry_policy": 3,
            "max_power_on_wait_time": 10 + 2 * slowest, "max_boot_wait_time": 20 + 4 * slowest,
            "max_power_off_wait_time": 10 + 2 * slowest}


class Api:
    """The few BOS API calls the demo makes (standard library only)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return json_request(method, self.base + path, body)


# --------------------------------------------------------------------------- setting up

def start_stack(stack: ExitStack, work: Path, args: argparse.Namespace) -> tuple:
    """Redis, simulator, API server and operators, stopped when `stack` closes."""
    rates = [arg for flag in RATE_FLAGS for arg in (f"--{flag.replace('_', '-')}", str(getattr(args, flag)))]
    print(f"starting the simulator ({args.nodes} nodes)...", flush=True)
    processes = stack.enter_context(Stack(work, nodes=args.nodes, seed=args.seed, speed=args.speed, sim_args=rates))
    print(f"dashboard: {dashboard_url(processes.api.url)}", flush=True)
    return processes.sim, Api(processes.api.url)


def dashboard_url(api_url: str) -> str:
    return f"{api_url}/dashboard/#/session/{SESSION_NAME}"


def keep_running(api: Api) -> None:
    """Keep the stack up until Ctrl-C, if someone is there to press it."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("--keep-running needs a terminal (Ctrl-C to stop); stopping now", flush=True)
        return
    try:  # before the prompt: a Ctrl-C right after it must land in this handler too
        print(f"\nthe stack stays up: dashboard {dashboard_url(api.base)}, API {api.base}/v2 "
              "(e.g. `bos --url " + api.base + " sessions list`); press Ctrl-C to stop", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        print("\nstopping", flush=True)


def wait_for_discovery(api: Api, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(api.call("GET", "/v2/components")) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"discovery did not import {count} nodes within {timeout:.0f}s")
        time.sleep(1)


def load_template(path: Path, sim: Simulator) -> Dict[str, Any]:
    """The example template with every boot set pointed at the simulator's (first) image."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; pass --template FILE")
    template = json.loads(path.read_text())
    image = json_request("GET", sim.urls["ims"] + "/images")[0]
    for boot_set in template["boot_sets"].values():
        boot_set["path"] = image["link"]["path"]
        boot_set["etag"] = image["link"]["etag"]
    return template


def start_session(api: Api, template: Dict[str, Any]) -> None:
    api.call("PUT", f"/v2/sessiontemplates/{TEMPLATE_NAME}", template)
    api.call("POST", "/v2/sessions", {"name": SESSION_NAME, "template_name": TEMPLATE_NAME, "operation": "boot"})


# --------------------------------------------------------------------------- progress

def follow(api: Api, timeout: float) -> None:
    """Follow the session exactly as an admin would: `bos sessions watch` (live bar, final report)."""
    print(f"$ bos sessions watch {SESSION_NAME}", flush=True)
    bos(["--url", api.base, "sessions", "watch", SESSION_NAME, "--timeout", str(int(timeout))])


# --------------------------------------------------------------------------- verdict

def expected_failures(sim: Simulator, components: List[str]) -> List[str]:
    faulty = sim.faults()["nodes"]
    return sorted(x for x in components if any(faulty.get(x, {}).get(kind) for kind in FATAL_FAULTS))


def component_counts(api: Api) -> Counter:
    return Counter(c.get("status", {}).get("status", "?")
                   for c in api.call("GET", f"/v2/components?session={SESSION_NAME}"))


def report(api: Api, sim: Simulator) -> bool:
    """Whether the outcome is the expected one: exactly the nodes with fatal injected faults failed."""
    session = api.call("GET", f"/v2/sessions/{SESSION_NAME}")
    if session["status"].get("error"):
        print(f"session error: {session['status']['error']}")
        return False
    members = [x for x in session.get("components", "").split(",") if x]
    counts = component_counts(api)
    doomed = expected_failures(sim, members)
    expected_ok = len(members) - len(doomed)
    print(f"\n{len(members)} nodes: {counts['stable']} stable (expected {expected_ok}), "
          f"{counts['failed']} failed (expected {len(doomed)} with injected faults)")
    return bool(members) and counts["stable"] == expected_ok and counts["failed"] == len(doomed)


def run(args: argparse.Namespace) -> int:
    work = scratch_dir("bos-demo-")
    ok = False
    try:
        with ExitStack() as stack:
            sim, api = start_stack(stack, work, args)
            api.call("PATCH", "/v2/options", demo_options(args.speed))
            print("waiting for discovery...", flush=True)
            wait_for_discovery(api, args.nodes)
            start_session(api, load_template(args.template, sim))
            print(f"session {SESSION_NAME} started", flush=True)
            follow(api, args.timeout)
            ok = report(api, sim)
            if args.keep_running:
                keep_running(api)
    finally:
        if args.keep or not ok:
            print(f"logs: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("demo succeeded" if ok else "demo FAILED")
    return 0 if ok else 1


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    # Ctrl-C and SIGTERM unwind through the ExitStack, which stops every process,
    # even when started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; everything was stopped")
        return 130
    except (RuntimeError, TimeoutError, FileNotFoundError) as exc:
        print(f"demo FAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
