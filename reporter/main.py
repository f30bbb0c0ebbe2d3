"""`bos-reporter`: validate the inputs (reporter.md §3, §7), then report (§5).

Exit statuses (§8): 0 nothing to report (or `--once` succeeded), 1 `--once`
failed or an unexpected crash, 78 configuration error (systemd does not restart).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Dict, List, Mapping, NoReturn, Optional, Sequence, Tuple

from bos_shared.cmdline import parse_cmdline

from . import __version__, schedule
from .agent import Agent
from .config import (ConfigError, DEFAULT_LOG_LEVEL, Settings, config_path, load_settings, log_level_of)
from .identity import NO_IDENTITY_MESSAGE, node_identity
from .logs import configure_logging
from .watch import SleepWaiter

log = logging.getLogger("bos_reporter")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 78  # EX_CONFIG; RestartPreventExitStatus=78 in the unit (R4)
NO_TOKEN_MESSAGE = ("No bss_referral_token on the kernel command line; this boot was not set up by BOS, "
                    "nothing to report")


class Parser(argparse.ArgumentParser):
    """Usage errors are configuration errors: exit 78, so a bad unit file cannot crash-loop."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}\n")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = Parser(prog="bos-reporter", description="Report the booted BOS state of this node to the BOS API.")
    parser.add_argument("--once", action="store_true",
                        help="report once (bounded attempts), exit 0 on success and 1 on failure")
    parser.add_argument("--attempts", type=int, default=3, metavar="N", help="attempts with --once (default 3)")
    parser.add_argument("--cmdline-file", metavar="FILE", help="kernel command line (default /proc/cmdline)")
    parser.add_argument("--api-url", metavar="URL", help="BOS v2 API base URL, e.g. https://host/apis/bos/v2")
    parser.add_argument("--token-file", metavar="FILE", help="read the bearer token from FILE, not the token command")
    parser.add_argument("--config", metavar="FILE", help="config file (default /etc/bos-reporter/bos-reporter.conf)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    if args.attempts < 1:
        parser.error("--attempts must be at least 1")
    return args


def flag_values(args: argparse.Namespace) -> Dict[str, Optional[str]]:
    """Flags under the names of the settings they override."""
    return {"BOS_REPORTER_CMDLINE": args.cmdline_file, "BOS_REPORTER_ENDPOINT": args.api_url,
            "BOS_REPORTER_TOKEN_FILE": args.token_file}


def read_cmdline(path: str) -> Dict[str, str]:
    try:
        with open(path, "rb") as handle:
            return parse_cmdline(handle.read())
    except OSError as exc:
        raise ConfigError(f"cannot read the kernel command line {path}: {exc.strerror or exc}") from exc


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    configure_logging(DEFAULT_LOG_LEVEL)
    try:
        return run(args, os.environ)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_FAILED
    except Exception:  # last resort: log it; systemd restarts us after RestartSec
        log.critical("bos-reporter crashed.", exc_info=True)
        return EXIT_FAILED


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config_file = config_path(env, args.config)
    settings, warnings = load_settings(env, flag_values(args), config_file)
    params = read_cmdline(settings.cmdline_file)
    warnings += apply_log_level(params)
    for warning in warnings:
        log.warning("%s", warning)
    xname = node_identity(params, settings.values)
    if xname is None:
        raise ConfigError(NO_IDENTITY_MESSAGE)  # R4
    bss_token = params.get("bss_referral_token", "").strip()
    if not bss_token:
        log.warning("%s", NO_TOKEN_MESSAGE)  # R5
        return EXIT_OK
    period, period_warning = period_of(params)
    if period_warning:
        log.warning("%s", period_warning)
    if args.once:
        return report_once(settings, params, xname, bss_token, period, args.attempts)
    return report_forever(settings, params, xname, bss_token, period, env, args, config_file)


def apply_log_level(params: Mapping[str, str]) -> List[str]:
    level = log_level_of(params.get("bos_log_level"))
    if level is None:
        configure_logging(DEFAULT_LOG_LEVEL)
        return [f"bos_log_level={params['bos_log_level']!r} is not one of DEBUG, INFO, WARNING, ERROR, "
                "CRITICAL; using WARNING"]
    configure_logging(level)
    return []


def period_of(params: Mapping[str, str]) -> Tuple[float, Optional[str]]:
    """Period from `bos_update_frequency`, and a warning if it had to fall back to 4h (R3)."""
    value = params.get("bos_update_frequency")
    seconds = schedule.frequency_seconds(value)
    warning = None
    if seconds is None:
        seconds = schedule.DEFAULT_FREQUENCY_SECONDS
        if value is not None:
            warning = (f"bos_update_frequency={value!r} is not a positive whole number followed by s, m, h, d "
                       f"or w; using {schedule.DEFAULT_FREQUENCY}")
    return schedule.period_seconds(seconds), warning


def report_once(settings: Settings, params: Dict[str, str], xname: str, bss_token: str, period: float,
                attempts: int) -> int:
    agent = Agent(settings, params, xname, bss_token, period, waiter_factory=lambda _s: SleepWaiter())
    log.info("Reporting once as '%s' to %s with the %s.", xname, settings.endpoint, agent.tokens.describe())
    try:
        return EXIT_OK if agent.report_until_success(max_attempts=attempts) else EXIT_FAILED
    finally:
        agent.close()


def report_forever(settings: Settings, params: Dict[str, str], xname: str, bss_token: str, period: float,
                   env: Mapping[str, str], args: argparse.Namespace, config_file: str) -> int:
    signal.signal(signal.SIGTERM, _stop)
    agent = Agent(settings, params, xname, bss_token, period,
                  reload=lambda: load_settings(env, flag_values(args), config_file))
    log.info("Reporting as '%s' to %s with the %s.", xname, settings.endpoint, agent.tokens.describe())
    try:
        agent.run()
    finally:
        agent.close()
    return EXIT_OK


def _stop(signum: int, _frame: object) -> None:
    log.info("Stopping on signal %d.", signum)
    raise SystemExit(EXIT_OK)


if __name__ == "__main__":
    sys.exit(main())
