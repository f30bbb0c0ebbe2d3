"""`bos sessiontemplates list|describe|create|update|delete|validate|template`."""

from __future__ import annotations

import argparse
from typing import Any, Dict, Mapping
from urllib.parse import quote

from bos_shared.schema import ARCHES

from .. import output
from ..args import add_flag_bool, load_object, split_ids
from ..context import Context
from ..http import UsageError
from ..output import Column, field
from . import group, leaf

SELECTORS = (("node_list", "list"), ("node_groups", "groups"), ("node_roles_groups", "roles"))
DEFAULT_BOOT_SET = "compute"
# Boot-set flags: (flag, field, is a list).
BOOT_SET_FLAGS = (
    ("--path", "path", False), ("--type", "type", False), ("--etag", "etag", False),
    ("--kernel-parameters", "kernel_parameters", False), ("--node-list", "node_list", True),
    ("--node-groups", "node_groups", True), ("--node-roles-groups", "node_roles_groups", True),
    ("--arch", "arch", False), ("--rootfs-provider", "rootfs_provider", False),
    ("--rootfs-provider-passthrough", "rootfs_provider_passthrough", False),
)


def _path(name: str) -> str:
    return "/sessiontemplates/" + quote(name, safe="")


def selector_text(boot_set: Mapping[str, Any]) -> str:
    """`roles:Compute groups:a,b list:3 nodes`: which nodes a boot set names, in one cell."""
    parts = []
    for key, label in SELECTORS:
        values = boot_set.get(key) or []
        if not values:
            continue
        shown = f"{len(values)} nodes" if key == "node_list" and len(values) > 3 else ",".join(values)
        parts.append(f"{label}:{shown}")
    return " ".join(parts)


def _nodes(template: Mapping[str, Any]) -> str:
    return "; ".join(selector_text(bs) for bs in (template.get("boot_sets") or {}).values())


TEMPLATE_COLUMNS = (
    Column("NAME", field("name")),
    Column("TENANT", field("tenant")),
    Column("BOOT SETS", lambda t: ",".join(t.get("boot_sets") or {})),
    Column("NODES", _nodes, max_width=50),
    Column("CFS", field("cfs", "configuration")),
    Column("DESCRIPTION", field("description"), max_width=50),
)


def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    templates = ctx.client.get("/sessiontemplates")
    ctx.emit(templates, lambda: output.table(TEMPLATE_COLUMNS, templates) if templates
             else "No session templates.")
    return 0


def cmd_describe(ctx: Context, args: argparse.Namespace) -> int:
    ctx.emit(ctx.client.get(_path(args.name)))
    return 0


def _boot_set_from_flags(args: argparse.Namespace) -> Dict[str, Any]:
    boot_set: Dict[str, Any] = {}
    for _flag, key, is_list in BOOT_SET_FLAGS:
        value = getattr(args, key)
        if value is not None:
            boot_set[key] = split_ids(value) if is_list else value
    if args.boot_set_cfs_configuration is not None:
        boot_set["cfs"] = {"configuration": args.boot_set_cfs_configuration}
    return boot_set


def build_body(args: argparse.Namespace, creating: bool) -> Dict[str, Any]:
    """The PUT/PATCH body: the --file document with the flags laid over it."""
    body: Dict[str, Any] = load_object(args.file) if args.file else {}
    if args.description is not None:
        body["description"] = args.description
    if args.enable_cfs is not None:
        body["enable_cfs"] = args.enable_cfs
    if args.cfs_configuration is not None:
        body["cfs"] = {"configuration": args.cfs_configuration}
    flags = _boot_set_from_flags(args)
    if flags or args.boot_set:
        name = args.boot_set or DEFAULT_BOOT_SET
        boot_sets = body.setdefault("boot_sets", {})
        existing = boot_sets.get(name) or {}
        if creating and "type" not in existing and "type" not in flags:
            flags["type"] = "s3"  # the only usable type; the API requires it (api.md §2.8)
        boot_sets[name] = dict(existing, **flags)
    return body


def _saved(ctx: Context, template: Mapping[str, Any], verb: str) -> None:
    ctx.emit(template, lambda: f"Session template '{template.get('name')}' {verb}.\n"
             + output.key_values(template))


def cmd_create(ctx: Context, args: argparse.Namespace) -> int:
    template = ctx.client.put(_path(args.name), build_body(args, creating=True))
    _saved(ctx, template, "saved")
    return 0


def cmd_update(ctx: Context, args: argparse.Namespace) -> int:
    body = build_body(args, creating=False)
    if not body:
        raise UsageError("nothing to update: give --file or at least one field flag")
    template = ctx.client.patch(_path(args.name), body)
    _saved(ctx, template, "updated")
    return 0


def cmd_delete(ctx: Context, args: argparse.Namespace) -> int:
    ctx.client.delete(_path(args.name))
    if ctx.human:
        ctx.say(f"Session template '{args.name}' deleted.")
    return 0


def cmd_validate(ctx: Context, args: argparse.Namespace) -> int:
    verdict = ctx.client.get("/sessiontemplatesvalid/" + quote(args.name, safe=""))
    ctx.emit(verdict, lambda: f"{args.name}: {verdict}")
    return 0


def cmd_template(ctx: Context, args: argparse.Namespace) -> int:
    skeleton = ctx.client.get("/sessiontemplatetemplate")
    # Even in table mode print JSON: the point is `bos sessiontemplates template > t.json`.
    ctx.emit(skeleton, lambda: output.to_json(skeleton))
    return 0


def _add_body_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", metavar="FILE",
                        help="template as JSON or YAML (`-` for stdin); flags below override it")
    parser.add_argument("--description")
    add_flag_bool(parser, "--enable-cfs", "configure nodes with CFS after boot")
    parser.add_argument("--cfs-configuration", metavar="NAME", help="template-wide CFS configuration")
    bs = parser.add_argument_group("one boot set from flags (merged into --file's boot_sets)")
    bs.add_argument("--boot-set", metavar="NAME", help=f"boot set to create or change (default {DEFAULT_BOOT_SET})")
    for flag, key, is_list in BOOT_SET_FLAGS:
        kw: Dict[str, Any] = {"dest": key}
        if is_list:
            kw.update(nargs="+", action="extend", metavar="NAME", help="comma- or space-separated")
        if key == "arch":
            kw["choices"] = ARCHES
        bs.add_argument(flag, **kw)
    bs.add_argument("--boot-set-cfs-configuration", metavar="NAME", help="per-boot-set CFS configuration")


def register(subparsers: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    actions = group(subparsers, "sessiontemplates", "Session templates: what to boot, and where",
                    aliases=["sessiontemplate", "templates"])
    leaf(actions, "list", cmd_list, "List session templates", common)
    leaf(actions, "describe", cmd_describe, "Show one session template", common).add_argument("name")
    create = leaf(actions, "create", cmd_create, "Create or replace a session template (PUT)", common)
    create.add_argument("name")
    _add_body_flags(create)
    update = leaf(actions, "update", cmd_update, "Change fields of a session template (PATCH)", common)
    update.add_argument("name")
    _add_body_flags(update)
    leaf(actions, "delete", cmd_delete, "Delete a session template", common).add_argument("name")
    leaf(actions, "validate", cmd_validate, "Check a template's boot sets, artifacts and images",
         common).add_argument("name")
    leaf(actions, "template", cmd_template, "Print an example template to start from", common)
