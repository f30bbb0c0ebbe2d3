"""One module per API resource; each registers its sub-commands on the parser."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from ..context import Context

Handler = Callable[[Context, argparse.Namespace], int]


def leaf(subparsers: "argparse._SubParsersAction", name: str, handler: Handler, help_text: str,
         common: argparse.ArgumentParser, **kw: Any) -> argparse.ArgumentParser:
    """A runnable sub-command that also accepts the global options after its name.

    `cray bos v2 sessions list --format json` puts `--format` last; accepting
    global options on every leaf keeps that muscle memory working.
    """
    parser = subparsers.add_parser(name, help=help_text, description=help_text, parents=[common], **kw)
    parser.set_defaults(handler=handler)
    return parser


def group(subparsers: "argparse._SubParsersAction", name: str, help_text: str,
          **kw: Any) -> "argparse._SubParsersAction":
    """A command group (`sessions`, `components`...) whose action is required."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text, **kw)
    actions = parser.add_subparsers(title="actions", dest="action", metavar="ACTION")
    actions.required = True
    return actions
