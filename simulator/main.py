"""`bos-sim`: one process serving HSM, PCS, BSS, CFS, IMS, S3, TAPMS and the control API.

Each service listens on its own free loopback port under its real base path,
so unmodified clients only need a different host and port. When everything
listens, one `<service> <url>` line per service is printed and, with
`--urls-file`, the same map is written atomically as JSON (launchers wait for
that file). SIGTERM or SIGINT stop everything and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import uvloop
from aiohttp import web

from . import bss, cfs, control, hsm, ims, pcs, tapms
from .cluster import Cluster
from .config import DEFAULT_DELAYS, REPORT_CONCURRENCY, SimConfig
from .httputil import build_app
from .inventory import Inventory, InventoryError, generate, load
from .s3 import MotoS3, S3Proxy

LOG = logging.getLogger("bos_sim")

# CLI rate flag -> NodeFaults field.
RATE_FLAGS = {"fail_soft_off_rate": "ignore_soft_off", "fail_power_on_rate": "fail_power_on",
              "fail_boot_rate": "fail_boot", "fail_cfs_rate": "fail_config", "pcs_error_rate": "pcs_error"}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bos-sim", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10, help="generate an inventory of N nodes (default 10)")
    parser.add_argument("--inventory", type=Path, help="YAML/JSON inventory file (instead of --nodes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of all jitter and injected failures")
    parser.add_argument("--speed", type=float, default=1.0, help="divide every delay by F")
    parser.add_argument("--jitter", type=float, default=0.1, help="relative delay jitter (default 0.1)")
    parser.add_argument("--bos-url", help="BOS API base URL nodes report to, e.g. http://127.0.0.1:9000/v2")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--urls-file", type=Path, help="write the service URLs here as JSON when ready")
    parser.add_argument("--real-reporters", type=int, default=0, metavar="K",
                        help="the first K booted nodes run the real bos-reporter --once")
    parser.add_argument("--report-concurrency", type=int, default=REPORT_CONCURRENCY,
                        help=f"parallel node reports (default {REPORT_CONCURRENCY})")
    parser.add_argument("--cfs-retry-limit", type=int, default=3, help="CFS default retry policy (default 3)")
    parser.add_argument("--record-limit", type=int, default=1000, help="requests remembered per service")
    parser.add_argument("--log-level", default=os.environ.get("BOS_SIM_LOG_LEVEL", "INFO"))
    for kind, default in DEFAULT_DELAYS.items():
        flag = kind.replace("_", "-")
        parser.add_argument(f"--{flag}-delay", type=float, dest=f"delay_{kind}", default=None,
                            help=f"seconds (default {default:g})")
    parser.add_argument("--fail-soft-off-rate", type=float, default=0.0, help="share of nodes ignoring Soft-Off")
    parser.add_argument("--fail-power-on-rate", type=float, default=0.0, help="share of nodes that never power on")
    parser.add_argument("--fail-boot-rate", type=float, default=0.0, help="share of nodes that power on but never boot")
    parser.add_argument("--fail-cfs-rate", type=float, default=0.0, help="share of nodes whose configuration fails")
    parser.add_argument("--pcs-error-rate", type=float, default=0.0, help="share of nodes with a PCS error string")
    args = parser.parse_args(argv)
    _check(parser, args)
    return args


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.speed <= 0:
        parser.error("--speed must be positive")
    if args.real_reporters < 0 or args.report_concurrency < 1:
        parser.error("--real-reporters must be >= 0 and --report-concurrency >= 1")
    for flag in RATE_FLAGS:
        if not 0.0 <= getattr(args, flag) <= 1.0:
            parser.error(f"--{flag.replace('_', '-')} must be between 0 and 1")


def build_config(args: argparse.Namespace, inventory: Inventory) -> SimConfig:
    delays = dict(DEFAULT_DELAYS)
    delays.update(inventory.delays)
    delays.update({kind: getattr(args, f"delay_{kind}") for kind in DEFAULT_DELAYS
                   if getattr(args, f"delay_{kind}") is not None})
    return SimConfig(seed=args.seed, speed=args.speed, jitter=args.jitter, delays=delays,
                     rates={field: getattr(args, flag) for flag, field in RATE_FLAGS.items()},
                     bos_url=args.bos_url, real_reporters=args.real_reporters,
                     report_concurrency=args.report_concurrency, cfs_retry_limit=args.cfs_retry_limit,
                     record_limit=args.record_limit, host=args.host)


def tune_gc() -> None:
    """Keep the garbage collector off the node table (up to 100,000 long-lived nodes).

    `gc.freeze()` moves everything alive now out of the collector's generations,
    and a larger gen-0 threshold lets the JSON bodies of each request die before
    they are traced (same settings as the BOS processes, bos_server/runtime.py).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def bind(host: str) -> socket.socket:
    """A listening socket on a free port chosen by the kernel."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def service_apps(cluster: Cluster, proxy: S3Proxy) -> Dict[str, Tuple[web.Application, str]]:
    """(application, base path) per service."""
    def app(name: str, base: str, style: str, routes: List[web.RouteDef]) -> Tuple[web.Application, str]:
        application = build_app(name, base, style, cluster.recorder, cluster.service_faults)
        application.add_routes(routes)
        return application, base

    return {
        "hsm": app("hsm", hsm.BASE, "problem", hsm.make_routes(cluster)),
        "pcs": app("pcs", "", "problem", pcs.make_routes(cluster.pcs)),
        "bss": app("bss", bss.BASE, "problem", bss.make_routes(cluster.bss)),
        "cfs": app("cfs", cfs.BASE, "problem", cfs.make_routes(cluster.cfs)),
        "ims": app("ims", ims.BASE, "problem", ims.make_routes(cluster.ims)),
        "tapms": app("tapms", tapms.BASES[0], "message", tapms.make_routes(cluster.tenants)),
        "s3": app("s3", "", "s3", proxy.routes()),
    }


def write_urls(path: Path, urls: Dict[str, str]) -> None:
    """Atomically: launchers poll for the file and must never read half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(urls, indent=2) + "\n")
    os.replace(tmp, path)


class Simulator:
    """Owns the listening sites, moto, the scheduler task and the reporters of one run."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.host = cluster.config.host
        self.moto = MotoS3(self.host)
        self.proxy: Optional[S3Proxy] = None
        self.runners: List[web.AppRunner] = []
        self.urls: Dict[str, str] = {}
        self._scheduler_task: Optional[asyncio.Task] = None

    async def start(self) -> Dict[str, str]:
        loop = asyncio.get_running_loop()
        moto_url = await loop.run_in_executor(None, self.moto.start)
        await loop.run_in_executor(None, self.moto.load, self.cluster.s3_objects)
        self.proxy = S3Proxy(moto_url)
        await self.proxy.start()
        for name, (app, base) in service_apps(self.cluster, self.proxy).items():
            self.urls[name] = await self._serve(app) + base
        self.urls["control"] = await self._serve(control.make_app(self.cluster, lambda: dict(self.urls))) + control.BASE
        self._wire_bss()
        self._scheduler_task = asyncio.create_task(self.cluster.scheduler.run())
        await self.cluster.reporting.start()
        return dict(self.urls)

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sock = bind(self.host)
        await web.SockSite(runner, sock, backlog=1024).start()
        self.runners.append(runner)
        return f"http://{_url_host(self.host)}:{sock.getsockname()[1]}"

    def _wire_bss(self) -> None:
        """Boot scripts point at the simulated S3 and BSS endpoints."""
        store = self.cluster.bss
        store.s3_http_url = self.urls["s3"]
        store.base_url = self.urls["bss"]
        store.metadata_url = self.urls["bss"][: -len(bss.BASE)]

    async def stop(self) -> None:
        if self._scheduler_task is not None:
            self._scheduler_task.cancel()
            await asyncio.gather(self._scheduler_task, return_exceptions=True)
        await self.cluster.reporting.stop()
        for runner in reversed(self.runners):
            await runner.cleanup()
        if self.proxy is not None:
            await self.proxy.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.moto.stop)


async def run(args: argparse.Namespace) -> int:
    inventory = load(args.inventory) if args.inventory else generate(args.nodes, args.seed)
    cluster = Cluster(inventory, build_config(args, inventory))
    del inventory  # the live state is all that is needed from here on
    tune_gc()
    sim = Simulator(cluster)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        urls = await sim.start()
        for name, url in urls.items():
            print(f"{name} {url}", flush=True)
        if args.urls_file:
            write_urls(args.urls_file, urls)
        LOG.info("simulating %d nodes (speed %g, seed %d); ready", len(cluster.nodes), cluster.config.speed,
                 cluster.config.seed)
        await stop.wait()
        LOG.info("stopping")
    finally:
        await sim.stop()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # uvloop: the simulated nodes' reports and the services' answers cost less CPU in C (issue 13)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(run(args))
    except InventoryError as exc:
        LOG.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
