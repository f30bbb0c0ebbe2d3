"""`bos-server`: run the BOS v2 API in the foreground (SIGTERM stops it cleanly)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import sys
import tempfile
from typing import AsyncIterator, Optional

from aiohttp import web
from redis.exceptions import RedisError

from bos_shared import __version__ as VERSION
from bos_shared.ages import parse_duration

from . import auth, metrics
from .api.app import create_app
from .api.context import Context
from .api.transport import run_app
from .clients.cfs import CfsClient
from .clients.hsm import HsmClient
from .clients.ims import ImsClient
from .clients.rest import JsonClient
from .clients.s3 import S3Client, S3Settings
from .clients.tapms import TapmsClient
from .component_writes import UNKNOWN_TOKENS
from .config import ServerSettings
from .workers import PortTaken, claim_port, run_workers
from .logs import apply_level, configure
from .runtime import trim_malloc_periodically, tune_gc, tune_malloc
from .store import Store
from .store.history import HistorySettings, sweep_if_due as sweep_history_if_due
from .store.redis_url import redis_from_url
from .store.token_sweep import sweep_if_due
from .store.version import UnsupportedRedis, check_version

LOG = logging.getLogger("bos_server")
MAX_REQUEST_LINE = 1024 * 1024  # D8: at least 600 KiB
EXIT_CONFIG = 78  # EX_CONFIG, as the reporter (R4): systemd units do not restart on it


def build_context(settings: ServerSettings) -> Context:
    tapms = JsonClient("TAPMS", settings.tapms_url, retries=10, read_timeout=10.0, budget=5.0)  # D5
    ims = JsonClient("IMS", settings.ims_url, retries=4, read_timeout=20.0, budget=30.0)
    s3 = S3Client(S3Settings.from_env(settings.s3_url or None))
    history = HistorySettings(settings.history_max_entries, float(parse_duration(settings.history_max_age) or 0))
    hsm = JsonClient("HSM", settings.hsm_url, retries=4, read_timeout=20.0, budget=30.0)
    cfs = JsonClient("CFS", settings.cfs_url, retries=4, read_timeout=20.0, budget=30.0)
    return Context(Store.connect(settings.redis_url, history), TapmsClient(tapms), ImsClient(ims), s3, VERSION,
                   hsm=HsmClient(hsm), cfs=CfsClient(cfs))


async def _token_sweeper(context: Context, settings: ServerSettings) -> None:
    """The hourly retention sweeps: token records and blobs (D4), quiet component histories."""
    retention = parse_duration(settings.token_retention) or 30 * 86400
    redis, period = context.store.redis, settings.token_sweep_seconds
    while True:
        for name, sweep in (("Token", lambda: sweep_if_due(redis, retention, period)),
                            ("History", lambda: sweep_history_if_due(redis, context.store.components.history, period))):
            try:
                await sweep()
            except (RedisError, OSError) as exc:
                LOG.warning("%s sweep skipped: %s", name, exc)
        await asyncio.sleep(period)


async def _follow_log_level(context: Context) -> None:
    """Apply the `logging_level` option in this process within 2 s of a change (D3)."""
    while True:
        try:
            apply_level((await context.store.options.get())["logging_level"])
        except (RedisError, OSError):
            pass  # Redis is down: keep the current level; data endpoints already answer 503
        await asyncio.sleep(1.0)


async def _require_redis_version(context: Context) -> None:
    """Once Redis first answers, refuse to go on serving an unsupported version (exit 78)."""
    while True:
        try:
            await check_version(context.store.redis)
            return
        except UnsupportedRedis as exc:
            LOG.critical("%s", exc)
            os._exit(EXIT_CONFIG)  # a configuration error: restarting does not help
        except (RedisError, OSError):
            await asyncio.sleep(1.0)  # not reachable yet (D6): data endpoints answer 503 meanwhile


def _lifecycle(context: Context, settings: ServerSettings):
    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_token_sweeper(context, settings)),
                 asyncio.create_task(_follow_log_level(context)),
                 asyncio.create_task(_require_redis_version(context)),
                 asyncio.create_task(trim_malloc_periodically())]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await context.tapms.http.close()
        await context.ims.http.close()
        await context.s3.close()
        for client in (context.hsm, context.cfs):
            if client is not None:
                await client.http.close()
        await context.store.close()
    return lifecycle


def main(argv: Optional[list] = None) -> None:
    settings = ServerSettings.parse(argv)
    try:
        redis_from_url(settings.redis_url)  # no connection yet: only the URL's form is checked
    except ValueError as exc:
        sys.exit(f"bos-server: error: --redis-url {settings.redis_url!r}: {exc}")
    os.environ.setdefault("BOS_LOG_LEVEL", settings.log_level)
    configure("BOS_LOG_LEVEL")
    try:
        guard = claim_port(settings.port)  # held until this process exits
    except PortTaken as exc:
        sys.exit(f"bos-server: {exc}")
    if settings.workers > 1:
        code = run_workers(settings.workers, lambda: serve(settings, reuse_port=True), guard,
                           remove=_multiprocess_metrics(settings.metrics))
        sys.exit(code)
    serve(settings)


def _multiprocess_metrics(enabled: bool) -> Optional[str]:
    """Workers write their metrics to files in one directory, so /metrics adds them up.

    A directory given in PROMETHEUS_MULTIPROC_DIR is used as is (and must be emptied
    by whoever restarts the server); otherwise a fresh one is made, and returned to be
    removed when the server stops.
    """
    if not enabled or os.environ.get(metrics.MULTIPROC_ENV):
        return None
    where = tempfile.mkdtemp(prefix="bos-metrics-")
    os.environ[metrics.MULTIPROC_ENV] = where
    return where


def serve(settings: ServerSettings, reuse_port: bool = False) -> None:
    if settings.metrics:
        metrics.init()
    context = build_context(settings)
    app = create_app(context, auth.build_middleware(settings.auth), settings.large_body_concurrency)
    app.cleanup_ctx.append(_lifecycle(context, settings))
    app.on_cleanup.append(auth.flush_audit)
    app.on_cleanup.append(_flush_metrics)
    app.on_cleanup.append(_flush_unknown_tokens)
    tune_gc()
    tune_malloc()  # with the periodic trim of _lifecycle
    tls = tls_context(settings)
    LOG.info("BOS API %s listening on %s://%s:%d (Redis %s, authentication %s)", VERSION,
             "https" if tls else "http", settings.host, settings.port, settings.redis_url,
             "on" if settings.auth.enabled else "off")
    run_app(app, host=settings.host, port=settings.port, reuse_port=reuse_port, ssl_context=tls, access_log=None,
            max_line_size=MAX_REQUEST_LINE, max_field_size=MAX_REQUEST_LINE)


async def _flush_metrics(_app: web.Application) -> None:
    """The last requests' counts reach the scrape files (the other workers still serve them)."""
    metrics.flush()


async def _flush_unknown_tokens(_app: web.Application) -> None:
    """The reports of unknown tokens counted since the last warning are named before the worker ends."""
    UNKNOWN_TOKENS.flush()


def tls_context(settings: ServerSettings) -> Optional[ssl.SSLContext]:
    """HTTPS for sites without a gateway (`--tls-cert/--tls-key`); None serves plain HTTP."""
    if not settings.tls.enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(settings.tls.cert), settings.tls.key)
    except (OSError, ssl.SSLError) as exc:
        LOG.error("Cannot load the TLS certificate %s / key %s: %s", settings.tls.cert, settings.tls.key, exc)
        sys.exit(78)  # EX_CONFIG: a restart loop would not help
    return context


if __name__ == "__main__":
    main()
