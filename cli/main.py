"""`bos`: the command line. Parses arguments, runs one command, maps failures to exit codes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import List, NoReturn, Optional, Sequence, TextIO

from . import __version__
from .args import InputError
from .commands import components, service, sessions, templates, v1
from .config import (DEFAULT_TIMEOUT, DEFAULT_URL, ENV_CA_BUNDLE, ENV_FORMAT, ENV_TENANT, ENV_TIMEOUT,
                     ENV_TOKEN_FILE, ENV_URL, FORMATS, ConfigError, resolve)
from .context import Context
from .http import EXIT_INTERRUPTED, EXIT_USAGE, CliError

EPILOG = f"""\
connection settings (flag, else environment variable, else default):
  --url URL                 {ENV_URL:<15} API root; /v2/... is appended (default {DEFAULT_URL});
                                            behind the gateway: https://api-gw-service-nmn.local/apis/bos
  --token-file FILE         {ENV_TOKEN_FILE:<15} bearer token: a raw token or a `cray init` JSON token file
  --tenant NAME             {ENV_TENANT:<15} sent as Cray-Tenant-Name
  --ca-bundle FILE          {ENV_CA_BUNDLE:<15} CA certificates for HTTPS (PEM)
  --request-timeout SECONDS {ENV_TIMEOUT:<15} seconds per HTTP request (default {DEFAULT_TIMEOUT:g})
  --format FORMAT           {ENV_FORMAT:<15} table (default), json (exactly the API's JSON) or yaml
Global options work before or after the command (`bos sessions list --format json`).

exit codes: 0 success; 1 the API refused the request (or is unhealthy); 2 usage error;
3 cannot reach the API; 4 nodes failed (watch, applystaged); 5 watch timed out; 130 interrupted.
"""

GLOBAL_OPTIONS = (
    ("--url", {"metavar": "URL", "help": f"BOS API root [{ENV_URL}]"}),
    ("--token-file", {"metavar": "FILE", "help": f"bearer token file [{ENV_TOKEN_FILE}]"}),
    ("--tenant", {"metavar": "NAME", "help": f"tenant [{ENV_TENANT}]"}),
    ("--ca-bundle", {"metavar": "FILE", "help": f"CA bundle for HTTPS [{ENV_CA_BUNDLE}]"}),
    ("--request-timeout", {"metavar": "SECONDS", "help": f"seconds per HTTP request [{ENV_TIMEOUT}]"}),
    ("--format", {"choices": FORMATS, "help": f"output format [{ENV_FORMAT}]"}),
)


class Parser(argparse.ArgumentParser):
    """argparse with a two-line error instead of a screenful of usage."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see `{self.prog} --help`)\n")


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    for flag, kw in GLOBAL_OPTIONS:
        parser.add_argument(flag, default=default, **kw)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bos", description="Drive the Boot Orchestration Service (BOS v2) from the shell.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bos CLI {__version__}")
    _global_options(parser, None)
    # The same options after the sub-command; SUPPRESS keeps an earlier value when absent.
    common = Parser(add_help=False)
    group = common.add_argument_group("global options")
    for flag, kw in GLOBAL_OPTIONS:
        group.add_argument(flag, default=argparse.SUPPRESS, **kw)
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    commands.required = True
    templates.register(commands, common)
    sessions.register(commands, common)
    components.register(commands, common)
    service.register(commands, common)
    v1.register(commands, common)
    return parser


def parse(argv: Sequence[str], err: TextIO) -> argparse.Namespace:
    """Parse, sending argparse's own messages to `err` (tests capture it)."""
    with contextlib.redirect_stderr(err):
        return build_parser().parse_args(list(argv))


def make_context(args: argparse.Namespace, out: TextIO, err: TextIO) -> Context:
    settings = resolve(url=args.url, token_file=args.token_file, tenant=args.tenant,
                       ca_bundle=args.ca_bundle, timeout=args.request_timeout)
    fmt = args.format or os.environ.get(ENV_FORMAT) or "table"
    if fmt not in FORMATS:
        raise ConfigError(f"{ENV_FORMAT}={fmt} is not one of {', '.join(FORMATS)}")
    return Context(settings=settings, fmt=fmt, out=out, err=err)


def run(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    try:
        args = parse(argv, err)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    try:
        ctx = make_context(args, out, err)
        return args.handler(ctx, args)
    except (ConfigError, InputError) as exc:
        err.write(f"bos: error: {exc}\n")
        return EXIT_USAGE
    except CliError as exc:
        err.write(f"bos: error: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        err.write("\nbos: interrupted\n")
        return EXIT_INTERRUPTED


def main(argv: Optional[List[str]] = None, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """Entry point of the `bos` script; also called in-process by the tests."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return run(sys.argv[1:] if argv is None else argv, out, err)
    except BrokenPipeError:  # `bos components list --rows | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
