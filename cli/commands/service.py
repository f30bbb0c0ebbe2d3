"""Service-wide commands: `bos applystaged`, `bos options list|update`, `bos version`, `bos healthz`."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Dict

from bos_shared.schema import OPTION_FIELDS
from bos_shared.schema_types import Schema, SchemaError

from .. import __version__, output
from ..args import boolean, split_ids
from ..context import Context
from ..http import EXIT_API_ERROR, EXIT_FAILED_NODES, UsageError
from . import group, leaf


def cmd_applystaged(ctx: Context, args: argparse.Namespace) -> int:
    xnames = split_ids(args.xnames)
    if not xnames:
        raise UsageError("give the nodes to apply with --xnames")
    result = ctx.client.post("/applystaged", {"xnames": xnames})

    def human() -> str:
        lines = []
        for key in ("succeeded", "failed", "ignored"):
            ids = result.get(key) or []
            lines.append(f"{key.capitalize():<10} {len(ids):>5}  {output.preview_list(ids, 20) or '-'}")
        return "\n".join(lines)

    ctx.emit(result, human)
    return EXIT_FAILED_NODES if result.get("failed") else 0


def cmd_options_list(ctx: Context, args: argparse.Namespace) -> int:
    ctx.emit(ctx.client.get("/options"))
    return 0


def cmd_options_update(ctx: Context, args: argparse.Namespace) -> int:
    patch = {name: getattr(args, name) for name in OPTION_FIELDS if getattr(args, name) is not None}
    if not patch:
        raise UsageError("give at least one option to change, e.g. --default-retry-policy 5")
    options = ctx.client.patch("/options", patch)
    ctx.emit(options, lambda: "Options updated.\n" + output.key_values(options))
    return 0


def cmd_version(ctx: Context, args: argparse.Namespace) -> int:
    version = ctx.client.get("/version")
    api = ".".join(str(version.get(k, "?")) for k in ("major", "minor", "patch"))
    ctx.emit(version, lambda: f"BOS API  {api}  ({ctx.client.root})\nbos CLI  {__version__}")
    return 0


def cmd_healthz(ctx: Context, args: argparse.Namespace) -> int:
    health = ctx.client.get("/healthz", accept=(503,))
    ctx.emit(health, lambda: f"API       {health.get('apiStatus', '?')}\nDatabase  {health.get('dbStatus', '?')}")
    healthy = health.get("apiStatus") == "ok" and health.get("dbStatus") == "ok"
    return 0 if healthy else EXIT_API_ERROR


def option_type(name: str, schema: Schema) -> Callable[[str], Any]:
    """Parse a flag value by the option's wire type, then check it with the server's rule."""
    convert: Callable[[str], Any] = str
    if schema.json_type == "integer":
        convert = int
    elif schema.json_type == "boolean":
        convert = boolean

    def parse(text: str) -> Any:
        try:
            return schema.validate(convert(text), name)
        except (ValueError, SchemaError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    parse.__name__ = schema.json_type or "value"
    return parse


def register(subparsers: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    apply = leaf(subparsers, "applystaged", cmd_applystaged,
                 "Start the staged sessions of these nodes (POST /v2/applystaged)", common)
    apply.add_argument("create", nargs="?", choices=["create"], help=argparse.SUPPRESS)  # `cray ... applystaged create`
    apply.add_argument("--xnames", nargs="+", action="extend", metavar="XNAME", required=True,
                       help="comma- or space-separated xnames")

    actions = group(subparsers, "options", "Service-wide options")
    leaf(actions, "list", cmd_options_list, "Show all options", common)
    update = leaf(actions, "update", cmd_options_update, "Change options", common)
    for name, schema in OPTION_FIELDS.items():
        kw: Dict[str, Any] = {"dest": name, "type": option_type(name, schema), "default": None,
                              "help": f"default {schema.default!r}"}
        update.add_argument("--" + name.replace("_", "-"), metavar=schema.json_type.upper(), **kw)

    leaf(subparsers, "version", cmd_version, "Show the API and CLI versions", common)
    leaf(subparsers, "healthz", cmd_healthz, "Check the API and its database", common)
