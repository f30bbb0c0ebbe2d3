"""Screenshot of the dashboard's session page during a simulated boot (docs/dashboard.png).

    .venv/bin/python -m tests.observe.screenshot --nodes 10204 --out docs/dashboard.png   # 10,000 compute nodes

Boots NODES simulated nodes (a few with injected faults, so failures show) through
the real stack and photographs the session page in headless Chromium once most
nodes are done and some are still on their way.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bos_sim.stack import scratch_dir
from tests.observe.browser import chromium
from tests.operators.stack import Stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard.png"))
    parser.add_argument("--done", type=float, default=0.7, help="share of nodes done when the picture is taken")
    args = parser.parse_args()
    stack = Stack(scratch_dir("bos-shot-"), nodes=args.nodes, speed=2.0)
    try:
        stack.set_options(max_boot_wait_time=60, max_power_on_wait_time=30, default_retry_policy=1)
        nodes = stack.take(len(stack.pool))
        broken = nodes[2600:2632] + nodes[5000::397]  # one chassis that never boots, and scattered failures
        stack.sim.set_node_faults(broken, fail_boot=True)
        stack.template("compute-23.4", nodes)
        stack.session("boot-compute", "compute-23.4", "boot")
        browser_gen = chromium()
        browser = next(browser_gen)
        browser.set_window_size(1400, 1500)
        browser.get(stack.api_server.url + "/dashboard/#/session/boot-compute")
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            raw = browser.execute_script("const m = document.getElementById('machine'); return m && m.dataset.counts;")
            counts = json.loads(raw) if raw else {}
            done = counts.get("stable", 0) + counts.get("failed", 0)
            if done >= args.done * len(nodes) and counts.get("failed", 0) > 32:
                break
            time.sleep(1)
        time.sleep(2)  # let the status card and failed table refresh
        browser.execute_script("window.scrollTo(0, 0)")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(args.out))
        print(f"wrote {args.out} ({counts})")
        browser_gen.close()
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
