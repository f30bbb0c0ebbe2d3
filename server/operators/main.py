"""`bos-operators`: run the BOS operators in the foreground.

    bos-operators --bos-url http://api:9000/v2 --redis-url redis://redis:6379/0 \\
        --hsm-url ... --pcs-url ... --bss-url ... --cfs-url ... --ims-url ... --tapms-url ...
    bos-operators --only power-on,power-off-graceful ...
    bos-operators --check-liveness        # the liveness probe (exit 0 or 1)

Every option also comes from the environment (BOS_API_URL, BOS_REDIS_URL,
BOS_HSM_URL, ..., S3_PROTOCOL/S3_GATEWAY/S3_ACCESS_KEY/S3_SECRET_KEY,
BOS_OPERATOR_LOG_LEVEL, BOS_LIVENESS_FILE, LIVENESS_DELTA_MAX, BOS_OPERATOR_LEASE).
Several replicas may run side by side (docs/ha.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING, List, Optional, Sequence

import uvloop
from redis.exceptions import RedisError

from .. import metrics
from ..runtime import tune_gc
from ..store.version import UnsupportedRedis, check_version
from . import registry
from .claims import DEFAULT_LEASE, LocalClaims, RedisClaims
from .runner import Runner, check_liveness, level_of
from .services import DEFAULT_URLS, Endpoints, Services

if TYPE_CHECKING:
    from redis.asyncio import Redis

DEFAULT_METRICS_PORT = 9465
EXIT_CONFIG = 78  # EX_CONFIG: a configuration error that a restart does not mend
ENV_URLS = {"bos": "BOS_API_URL", "hsm": "BOS_HSM_URL", "pcs": "BOS_PCS_URL", "bss": "BOS_BSS_URL",
            "cfs": "BOS_CFS_URL", "ims": "BOS_IMS_URL", "tapms": "BOS_TAPMS_URL"}


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="bos-operators", description="Run the BOS v2 operators.")
    parser.add_argument("--bos-url", "--api-url", dest="bos_url", default=env.get(ENV_URLS["bos"], DEFAULT_URLS["bos"]),
                        help="BOS API base URL (root or .../v2) [BOS_API_URL]")
    parser.add_argument("--redis-url", default=env.get("BOS_REDIS_URL"),
                        help="Redis URL: token records and change events [BOS_REDIS_URL]")
    for svc in ("hsm", "pcs", "bss", "cfs", "ims", "tapms"):
        parser.add_argument(f"--{svc}-url", default=env.get(ENV_URLS[svc], DEFAULT_URLS[svc]),
                            help=f"{svc.upper()} base URL [{ENV_URLS[svc]}]")
    parser.add_argument("--s3-url", default=env.get("BOS_S3_URL"),
                        help="S3 endpoint (default S3_PROTOCOL://S3_GATEWAY) [BOS_S3_URL]")
    parser.add_argument("--auth-token", default=env.get("BOS_AUTH_TOKEN"), help="optional bearer token")
    parser.add_argument("--only", default=env.get("BOS_OPERATORS", ""),
                        help="comma-separated operators to run (default all): " + ", ".join(sorted(registry.OPERATORS)))
    parser.add_argument("--log-level", default=env.get("BOS_OPERATOR_LOG_LEVEL", "INFO"))
    parser.add_argument("--liveness-file", default=env.get("BOS_LIVENESS_FILE", "/tmp/timestamp"))
    parser.add_argument("--recheck", type=float, default=_env_float("BOS_OPERATOR_RECHECK", 1.0),
                        help="seconds between status re-checks while nodes are in flight (never more "
                             "than polling_frequency) [BOS_OPERATOR_RECHECK]")
    parser.add_argument("--stuck-after", type=float, default=_env_float("BOS_OPERATOR_STUCK_AFTER", 1800.0),
                        help="a pass running longer than this stops the liveness writes")
    parser.add_argument("--stop-grace", type=float, default=_env_float("BOS_OPERATOR_STOP_GRACE", 5.0),
                        help="seconds a running pass may take to finish after SIGTERM [BOS_OPERATOR_STOP_GRACE]")
    parser.add_argument("--lease", type=float, default=_env_float("BOS_OPERATOR_LEASE", DEFAULT_LEASE),
                        help="seconds a replica holds the components it works on without renewing "
                             "(renewed every third of it); a stopped replica's work is taken over "
                             "after at most this plus --recheck [BOS_OPERATOR_LEASE]")
    parser.add_argument("--metrics-port", type=int, default=int(_env_float("BOS_METRICS_PORT", DEFAULT_METRICS_PORT)),
                        help=f"serve Prometheus metrics at :PORT/metrics; 0 turns them off "
                             f"(default {DEFAULT_METRICS_PORT}) [BOS_METRICS_PORT]")
    parser.add_argument("--metrics-host", default=env.get("BOS_METRICS_HOST", "0.0.0.0"),
                        help="address of the metrics endpoint [BOS_METRICS_HOST]")
    parser.add_argument("--check-liveness", action="store_true",
                        help="exit 0 if the liveness file is younger than LIVENESS_DELTA_MAX s, else 1")
    return parser.parse_args(argv)


async def redis_supported(redis: "Redis") -> bool:
    """False only for a reachable Redis older than 7.0; an unreachable one is waited for later."""
    try:
        await asyncio.wait_for(check_version(redis), 5.0)
    except UnsupportedRedis as exc:
        logging.getLogger("bos.operators").critical("%s", exc)
        return False
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        logging.getLogger("bos.operators").warning("Redis not reachable yet (version not checked): %s", exc)
    return True


def operator_names(only: str) -> List[str]:
    return [n.strip().replace("_", "-") for n in only.split(",") if n.strip()]


async def _run(args: argparse.Namespace) -> int:
    endpoints = Endpoints(bos=args.bos_url, hsm=args.hsm_url, pcs=args.pcs_url, bss=args.bss_url,
                          cfs=args.cfs_url, ims=args.ims_url, tapms=args.tapms_url, s3=args.s3_url,
                          redis=args.redis_url, token=args.auth_token)
    redis = None
    claims: LocalClaims = LocalClaims()
    if args.redis_url:
        from ..store.packing import connection_class
        from ..store.redis_url import redis_from_url
        # hiredis' C packer, as in the API: the claim scripts send one argument per component
        redis = redis_from_url(args.redis_url, **connection_class(args.redis_url))
        if not await redis_supported(redis):
            return EXIT_CONFIG
        claims = RedisClaims(redis, lease=args.lease)
    else:
        logging.getLogger("bos.operators").warning(
            "No Redis URL: power-on cannot record BSS tokens, operators only poll, and no other "
            "replica may run (no coordination store)")
    services = Services.build(endpoints, redis)
    operators = registry.build(operator_names(args.only))
    runner = Runner(operators, services, redis_url=args.redis_url, liveness_file=args.liveness_file,
                    recheck=args.recheck, stuck_after=args.stuck_after, grace=args.stop_grace,
                    claims=claims)
    return await runner.run()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.check_liveness:
        return check_liveness(args.liveness_file, _env_float("LIVENESS_DELTA_MAX", 20.0))
    logging.basicConfig(level=level_of(args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        registry.build(operator_names(args.only))
    except KeyError as exc:
        print(f"bos-operators: unknown operator(s): {exc.args[0]}", file=sys.stderr)
        return 2
    if args.metrics_port:
        try:
            serve_metrics(args.metrics_host, args.metrics_port)
        except OSError as exc:
            print(f"bos-operators: cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {exc}",
                  file=sys.stderr)
            return 2
    tune_gc()
    # uvloop runs the loop and the sockets in C: the operators' requests to the API, PCS, CFS
    # and Redis cost less CPU than on asyncio's loop (issue 13; the API runs on it too).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_run(args))


def serve_metrics(host: str, port: int) -> None:
    """Prometheus metrics of this process at http://HOST:PORT/metrics (a daemon thread)."""
    from prometheus_client import start_http_server
    metrics.init()
    start_http_server(port, addr=host)


if __name__ == "__main__":
    sys.exit(main())
