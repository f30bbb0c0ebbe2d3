"""`bos v1 session ...` and `bos v1 sessiontemplate ...`: the commands of the v1 runbooks (v1.md §7).

Same shapes as `cray bos v1 ...`; `--format json` prints the API's JSON unchanged.
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import quote

from bos_shared.schema_v1 import CATEGORIES, OPERATIONS

from .. import output
from ..args import add_flag_bool, load_object
from ..context import Context
from ..http import Client, UsageError
from ..output import Column, field
from . import group, leaf


class V1Client(Client):
    """The CLI's HTTP client with paths relative to `<root>/v1`."""

    def url(self, path: str) -> str:
        return f"{self.root}/v1{path}"


def _client(ctx: Context) -> V1Client:
    return V1Client(ctx.settings)


def _q(text: str) -> str:
    return quote(text, safe="")


def operation(text: str) -> str:
    """Any letter case, sent as typed (the API echoes it, v1.md §2.3)."""
    if text.strip().lower() not in OPERATIONS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(OPERATIONS)}, not '{text}'")
    return text.strip()


# -- sessions --

def cmd_session_create(ctx: Context, args: argparse.Namespace) -> int:
    body: Dict[str, Any] = {"operation": args.operation}
    if args.template_name:
        body["templateName"] = args.template_name
    elif args.template_uuid:
        body["templateUuid"] = args.template_uuid
    else:
        raise UsageError("give --template-name")
    if args.limit:
        body["limit"] = args.limit
    created = _client(ctx).post("/session", body)
    sid = str(created["links"][0]["href"]).rsplit("/", 1)[-1]
    ctx.emit(created, lambda: f"v1 session {sid} created ({created['operation']} of {created['templateName']}).\n"
             f"Follow it with: bos v1 session status {sid}")
    return 0


def cmd_session_list(ctx: Context, args: argparse.Namespace) -> int:
    ids = _client(ctx).get("/session")
    ctx.emit(ids, lambda: "\n".join(ids) if ids else "No v1 sessions.")
    return 0


def cmd_session_describe(ctx: Context, args: argparse.Namespace) -> int:
    ctx.emit(_client(ctx).get("/session/" + _q(args.id)))
    return 0


def cmd_session_delete(ctx: Context, args: argparse.Namespace) -> int:
    _client(ctx).delete("/session/" + _q(args.id))
    if ctx.human:
        ctx.say(f"v1 session {args.id} deleted (its nodes are no longer driven).")
    return 0


def _counts(phase: Mapping[str, Any]) -> Dict[str, int]:
    return {c["name"]: len(c.get("node_list") or []) for c in phase.get("categories") or []}


PHASE_COLUMNS = (Column("BOOT SET", field("boot_set")), Column("PHASE", field("phase")),
                 *(Column(c.upper(), field(c)) for c in CATEGORIES),
                 Column("ERRORS", field("errors"), max_width=70))


def _phase_rows(boot_set: Mapping[str, Any]) -> List[Dict[str, Any]]:
    rows = []
    for phase in boot_set.get("phases") or []:
        errors = "; ".join(f"{m}: {len(n)}" for m, n in (phase.get("errors") or {}).items())
        rows.append({"boot_set": boot_set["name"], "phase": phase["name"], **_counts(phase), "errors": errors})
    return rows


def _meta_line(meta: Mapping[str, Any]) -> str:
    state = "complete" if meta.get("complete") else ("running" if meta.get("in_progress") else "not started")
    times = f"started {meta.get('start_time') or '-'}" + (f", stopped {meta['stop_time']}" if meta.get("stop_time") else "")
    return f"{state}, {meta.get('error_count', 0)} errors; {times}"


def _session_text(status: Mapping[str, Any], boot_sets: List[Mapping[str, Any]]) -> str:
    meta = status.get("metadata") or {}
    lines = [f"v1 session {status['id']}: {_meta_line(meta)}"]
    for overlap in meta.get("overlaps") or []:
        lines.append(f"took over {overlap['nodes']} nodes from running session {overlap['session']}")
    rows = [row for bs in boot_sets for row in _phase_rows(bs)]
    lines.append(output.table(PHASE_COLUMNS, rows) if rows else "No boot-set status yet.")
    for hint in meta.get("retry_hints") or []:
        lines += ["Failed nodes can be retried with:", f"  {hint}"]
    return "\n".join(lines)


def cmd_session_status(ctx: Context, args: argparse.Namespace) -> int:
    client = _client(ctx)
    path = "/session/" + _q(args.id) + "/status"
    parts = [p for p in (args.boot_set, args.phase, args.category) if p]
    data = client.get(path + "".join("/" + _q(p) for p in parts))
    if not ctx.human:
        ctx.emit(data)
        return 0
    if not parts:
        boot_sets = [client.get(f"{path}/{_q(b)}") for b in data.get("boot_sets") or []]
        ctx.emit(data, lambda: _session_text(data, boot_sets))
    elif len(parts) == 1:
        ctx.emit(data, lambda: f"boot set {data['name']}: {_meta_line(data.get('metadata') or {})}\n"
                 + output.table(PHASE_COLUMNS, _phase_rows(data)))
    elif len(parts) == 2:
        ctx.emit(data, lambda: _phase_text(data))
    else:
        ctx.emit(data, lambda: "\n".join(data.get("node_list") or []) or f"No nodes are {data['name']}.")
    return 0


def _phase_text(phase: Mapping[str, Any]) -> str:
    lines = [f"phase {phase['name']}: {_meta_line(phase.get('metadata') or {})}"]
    lines.append(output.table((Column("CATEGORY", field("name")), Column("COUNT", lambda c: len(c["node_list"])),
                               Column("NODES", field("node_list"), max_width=90)), phase.get("categories") or []))
    for message, nodes in (phase.get("errors") or {}).items():
        lines.append(f"error: {message}: {output.preview_list(nodes)}")
    return "\n".join(lines)


# -- session templates --

TEMPLATE_COLUMNS = (Column("NAME", field("name")), Column("TENANT", field("tenant")),
                    Column("BOOT SETS", lambda t: ",".join(t.get("boot_sets") or {})),
                    Column("ORDINALS", lambda t: " ".join(
                        f"{n}:{bs.get('boot_ordinal', '-')}/{bs.get('shutdown_ordinal', '-')}"
                        for n, bs in (t.get("boot_sets") or {}).items())),
                    Column("CFS", field("cfs", "configuration")))


def cmd_template_list(ctx: Context, args: argparse.Namespace) -> int:
    templates = _client(ctx).get("/sessiontemplate")
    ctx.emit(templates, lambda: output.table(TEMPLATE_COLUMNS, templates) if templates else "No session templates.")
    return 0


def cmd_template_describe(ctx: Context, args: argparse.Namespace) -> int:
    ctx.emit(_client(ctx).get("/sessiontemplate/" + _q(args.name)))
    return 0


def template_body(args: argparse.Namespace) -> Dict[str, Any]:
    body: Dict[str, Any] = load_object(args.file) if args.file else {}
    for flag, key in (("name", "name"), ("description", "description"), ("enable_cfs", "enable_cfs")):
        value: Optional[Any] = getattr(args, flag)
        if value is not None:
            body[key] = value
    if args.cfs_configuration is not None:
        body["cfs"] = {**(body.get("cfs") or {}), "configuration": args.cfs_configuration}
    if not body.get("name"):
        raise UsageError("give --name (or a `name` in --file)")
    return body


def cmd_template_create(ctx: Context, args: argparse.Namespace) -> int:
    name = _client(ctx).post("/sessiontemplate", template_body(args))
    ctx.emit(name, lambda: f"Session template '{name}' created.")
    return 0


def cmd_template_delete(ctx: Context, args: argparse.Namespace) -> int:
    _client(ctx).delete("/sessiontemplate/" + _q(args.name))
    if ctx.human:
        ctx.say(f"Session template '{args.name}' deleted.")
    return 0


def register(subparsers: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    v1 = group(subparsers, "v1", "BOS v1 sessions and session templates (run on the v2 engine)")
    sessions = group(v1, "session", "v1 sessions: boot, reboot, shutdown or configure a template's nodes")
    create = leaf(sessions, "create", cmd_session_create, "Start a v1 session", common)
    create.add_argument("--template-name", metavar="NAME")
    create.add_argument("--template-uuid", metavar="NAME", help="deprecated spelling of --template-name")
    create.add_argument("--operation", required=True, type=operation, metavar="boot|reboot|shutdown|configure")
    create.add_argument("--limit", help="comma-separated xnames, groups, roles; &x intersects, !x removes")
    leaf(sessions, "list", cmd_session_list, "List v1 session IDs", common)
    leaf(sessions, "describe", cmd_session_describe, "Show one v1 session", common).add_argument("id")
    leaf(sessions, "delete", cmd_session_delete, "Delete a v1 session (stops it)", common).add_argument("id")
    status = leaf(sessions, "status", cmd_session_status,
                  "Status tree: per boot set and phase, nodes per category", common)
    status.add_argument("id")
    status.add_argument("boot_set", nargs="?")
    status.add_argument("phase", nargs="?")
    status.add_argument("category", nargs="?")

    templates = group(v1, "sessiontemplate", "Session templates through the v1 API (the same store as v2)")
    leaf(templates, "list", cmd_template_list, "List session templates", common)
    leaf(templates, "describe", cmd_template_describe, "Show one session template", common).add_argument("name")
    tcreate = leaf(templates, "create", cmd_template_create, "Create or replace a template (v1 body)", common)
    tcreate.add_argument("--file", metavar="FILE", help="v1 template as JSON or YAML (`-` for stdin)")
    tcreate.add_argument("--name")
    tcreate.add_argument("--description")
    add_flag_bool(tcreate, "--enable-cfs", "configure nodes with CFS after boot")
    tcreate.add_argument("--cfs-configuration", metavar="NAME")
    leaf(templates, "delete", cmd_template_delete, "Delete a session template", common).add_argument("name")
