"""Settings from flags and environment (spec README "Deployment defaults")."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from bos_shared.ages import parse_duration

from .api.body_gate import DEFAULT_PERMITS
from .auth import config as auth_config
from .auth.config import AuthSettings, TlsSettings


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass
class ServerSettings:
    host: str
    port: int
    redis_url: str
    tapms_url: str
    ims_url: str
    s3_url: str
    log_level: str
    token_retention: str
    token_sweep_seconds: float
    workers: int
    auth: AuthSettings = field(default_factory=AuthSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    history_max_entries: int = 30
    history_max_age: str = "7d"
    metrics: bool = True
    hsm_url: str = "http://cray-smd/hsm/v2"  # dry-run node selection (extension)
    cfs_url: str = "http://cray-cfs-api/v3"  # a session stop clears desired configuration (extension)
    large_body_concurrency: int = DEFAULT_PERMITS  # requests with large bodies handled at once per worker (api/body_gate.py)

    @classmethod
    def parse(cls, argv: "list[str] | None" = None) -> "ServerSettings":
        parser = argparse.ArgumentParser(prog="bos-server", description="BOS v2 API server")
        parser.add_argument("--host", default=env("BOS_HOST", "0.0.0.0"), help="bind address (BOS_HOST)")
        parser.add_argument("--port", type=int, default=int(env("BOS_PORT", "9000")), help="listen port (BOS_PORT)")
        parser.add_argument("--redis-url", default=env("BOS_REDIS_URL", "redis://cray-bos-db:6379"),
                            help="Redis URL, redis:// or rediss://, password in the URL (BOS_REDIS_URL)")
        parser.add_argument("--tapms-url", default=env("BOS_TAPMS_URL", "http://cray-tapms/v1alpha3"))
        parser.add_argument("--ims-url", default=env("BOS_IMS_URL", "http://cray-ims/v3"))
        parser.add_argument("--s3-url", default=os.environ.get("BOS_S3_URL", ""),
                            help="S3 endpoint (default S3_PROTOCOL://S3_GATEWAY; keys from S3_ACCESS_KEY/S3_SECRET_KEY)")
        # Read access for dry-run node selection, write access to CFS for a session stop
        # (extensions, docs/deviations.md "Session control"); defaults as the operators'.
        parser.add_argument("--hsm-url", default=env("BOS_HSM_URL", "http://cray-smd/hsm/v2"))
        parser.add_argument("--cfs-url", default=env("BOS_CFS_URL", "http://cray-cfs-api/v3"))
        parser.add_argument("--log-level", default=env("BOS_LOG_LEVEL", "INFO"))
        parser.add_argument("--token-retention", default=env("BOS_TOKEN_RETENTION", "30d"),
                            help="keep unreferenced BSS token records this long (D4)")
        parser.add_argument("--token-sweep-seconds", type=float,
                            default=float(env("BOS_TOKEN_SWEEP_SECONDS", "3600")))
        parser.add_argument("--workers", type=int, default=int(env("BOS_WORKERS", "1")),
                            help="server processes sharing the port (SO_REUSEPORT); one per core (BOS_WORKERS)")
        auth_config.add_arguments(parser)
        parser.add_argument("--history-max-entries", type=int,
                            default=int(env("BOS_HISTORY_MAX_ENTRIES", "30")),
                            help="entries kept per component history, 0 turns history off (BOS_HISTORY_MAX_ENTRIES)")
        parser.add_argument("--history-max-age", default=env("BOS_HISTORY_MAX_AGE", "7d"),
                            help="history entries older than this are dropped (BOS_HISTORY_MAX_AGE)")
        parser.add_argument("--no-metrics", dest="metrics", action="store_false",
                            default=env("BOS_METRICS", "true").lower() not in ("0", "false", "no", "off"),
                            help="do not collect Prometheus metrics; /metrics answers 404 (BOS_METRICS=false)")
        parser.add_argument("--large-body-concurrency", type=int,
                            default=int(env("BOS_LARGE_BODY_CONCURRENCY", str(DEFAULT_PERMITS))),
                            help="requests with bodies of 64 KiB or more (bulk writes) each worker handles at once; "
                                 "the others wait, unread, in arrival order; 0 = no limit (BOS_LARGE_BODY_CONCURRENCY)")
        args = parser.parse_args(argv)
        if args.workers < 1:
            parser.error("--workers must be at least 1")
        if args.large_body_concurrency < 0:
            parser.error("--large-body-concurrency must be 0 or more")
        if args.history_max_entries < 0:
            parser.error("--history-max-entries must be 0 or more")
        if not parse_duration(args.history_max_age):
            parser.error(f"--history-max-age: {args.history_max_age!r} is not a duration like 7d or 12h")
        auth, tls = auth_config.from_args(parser, args)
        return cls(args.host, args.port, args.redis_url, args.tapms_url, args.ims_url, args.s3_url,
                   args.log_level, args.token_retention, args.token_sweep_seconds, args.workers, auth, tls,
                   args.history_max_entries, args.history_max_age, args.metrics,
                   hsm_url=args.hsm_url, cfs_url=args.cfs_url, large_body_concurrency=args.large_body_concurrency)
