"""`bos sessions create|list|describe|delete|status|watch`."""

from __future__ import annotations

import argparse
import re
from typing import Any, Dict, List, Mapping
from urllib.parse import quote

from bos_shared.schema import SESSION_STATUSES

from .. import output, report, watch
from ..args import add_flag_bool, age, count_or_percent, operation, positive_float, positive_int
from ..plan import plan_text, stop_text
from ..context import Context
from ..http import CliError, UsageError
from ..output import Column, field
from . import group, leaf

DEFAULT_INTERVAL = 2.0


def _path(name: str) -> str:
    return "/sessions/" + quote(name, safe="")


def _node_count(session: Mapping[str, Any]) -> str:
    components = session.get("components") or ""
    return str(len([c for c in components.split(",") if c])) if components else "-"


def session_columns(sessions: List[Mapping[str, Any]]) -> List[Column]:
    columns = [Column("NAME", field("name"))]
    if any(s.get("tenant") for s in sessions):
        columns.append(Column("TENANT", field("tenant")))
    columns += [
        Column("OPERATION", lambda s: s.get("operation", "") + (" (staged)" if s.get("stage") else "")),
        Column("TEMPLATE", field("template_name")),
        Column("STATUS", field("status", "status")),
        Column("STARTED", field("status", "start_time")),
        Column("ENDED", field("status", "end_time")),
        Column("NODES", _node_count),
        Column("LIMIT", field("limit"), max_width=24),
        Column("ERROR", field("status", "error"), max_width=50),
    ]
    return columns


def _filters(args: argparse.Namespace) -> Dict[str, str]:
    params = {"status": args.status, "min_age": args.min_age, "max_age": args.max_age}
    return {k: v for k, v in params.items() if v is not None}


def cmd_create(ctx: Context, args: argparse.Namespace) -> int:
    body: Dict[str, Any] = {"template_name": args.template_name, "operation": args.operation}
    for key in ("name", "limit", "stage", "include_disabled", "max_in_flight", "max_failed"):
        if getattr(args, key) is not None:  # only what was given: API defaults apply
            body[key] = getattr(args, key)
    if args.dry_run:
        plan = ctx.client.post("/sessions", body, params={"dry_run": "true"})
        ctx.emit(plan, lambda: plan_text(plan))
        return 0
    session = ctx.client.post("/sessions", body)
    name = session["name"]
    ctx.emit(session, lambda: f"Session '{name}' created.\n" + output.key_values(session))
    return _follow(ctx, args, name)


def _follow(ctx: Context, args: argparse.Namespace, name: str) -> int:
    """After a create: watch the new session with --watch, else say how to."""
    if not args.watch:
        if ctx.human:
            ctx.say(f"\nFollow it with: bos sessions watch {name}")
        return 0
    if ctx.human:
        ctx.say("")
    return watch.watch_session(ctx, name, args.interval, args.timeout, final_json=False)


def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    sessions = ctx.client.get("/sessions", _filters(args))
    ctx.emit(sessions, lambda: output.table(session_columns(sessions), sessions) if sessions
             else "No sessions.")
    return 0


def cmd_describe(ctx: Context, args: argparse.Namespace) -> int:
    ctx.emit(ctx.client.get(_path(args.name)))
    return 0


def cmd_delete(ctx: Context, args: argparse.Namespace) -> int:
    filters = _filters(args)
    if args.name and filters:
        raise UsageError("give either a session name or filters (--status/--min-age/--max-age), not both")
    if args.name:
        ctx.client.delete(_path(args.name))
        if ctx.human:
            ctx.say(f"Session '{args.name}' deleted.")
        return 0
    if not filters:
        raise UsageError("give a session name, or filters (--status/--min-age/--max-age) to delete many")
    ctx.client.delete("/sessions", filters)
    if ctx.human:
        what = " ".join(f"{k}={v}" for k, v in filters.items())
        ctx.say(f"Deleted sessions matching {what}" + ("" if "status" in filters else " status=complete") + ".")
    return 0


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    ext = ctx.client.get(_path(args.name) + "/status")
    if not ctx.human:
        ctx.emit(ext)
        return 0
    session = ctx.client.get(_path(args.name))
    failed = 0
    if float(ext.get("percent_failed") or 0.0) > 0:
        failed = len(ctx.client.components({"session": args.name, "status": "failed"}))
    hint = report.retry_hint(args.name, session, failed)
    ctx.emit(ext, lambda: report.extended_status_text(ext, args.name, session) + (f"\n{hint}" if hint else ""))
    return 0


def cmd_stop(ctx: Context, args: argparse.Namespace) -> int:
    result = ctx.client.post(_path(args.name) + "/stop", {"keep_configuration": args.keep_configuration})
    ctx.emit(result, lambda: stop_text(args.name, result))
    return 0


def cmd_retry(ctx: Context, args: argparse.Namespace) -> int:
    """Seed 003: a new session like NAME, limited to NAME's failed nodes, named NAME-retry-N."""
    session = ctx.client.get(_path(args.name))
    failed = sorted(c["id"] for c in ctx.client.components({"session": args.name, "status": "failed"}))
    if not failed:
        raise CliError(f"session '{args.name}' has no failed nodes: nothing to retry")
    body: Dict[str, Any] = {"name": retry_name(ctx, args.name), "template_name": session["template_name"],
                            "operation": session["operation"], "limit": ",".join(failed)}
    for key in ("stage", "include_disabled", "max_in_flight", "max_failed"):
        if session.get(key) is not None:
            body[key] = session[key]
    created = ctx.client.post("/sessions", body)
    name = created["name"]
    ctx.emit(created, lambda: f"Session '{name}' created: {session['operation']} of the {len(failed)} failed "
                              f"nodes of '{args.name}'.\n" + output.key_values(created))
    return _follow(ctx, args, name)


def retry_name(ctx: Context, name: str) -> str:
    """`NAME-retry-N` with the first N not taken (a retry of a retry keeps the original name)."""
    base = re.sub(r"-retry-[0-9]+$", "", name)
    taken = {s.get("name") for s in ctx.client.get("/sessions")}
    number = 1
    while f"{base}-retry-{number}" in taken:
        number += 1
    return f"{base}-retry-{number}"


def cmd_watch(ctx: Context, args: argparse.Namespace) -> int:
    return watch.watch_session(ctx, args.name, args.interval, args.timeout, final_json=True)


def _add_watch_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=positive_float, default=DEFAULT_INTERVAL, metavar="SECONDS",
                        help=f"seconds between polls (default {DEFAULT_INTERVAL:g})")
    parser.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                        help="stop watching after this long (exit 5); the session carries on")


def _add_filters(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--status", choices=SESSION_STATUSES, help=f"only {what} sessions in this state")
    parser.add_argument("--min-age", type=age, metavar="AGE", help="only sessions older than AGE (30m, 6h, 7d, 2w)")
    parser.add_argument("--max-age", type=age, metavar="AGE", help="only sessions younger than AGE")


def register(subparsers: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    actions = group(subparsers, "sessions", "Sessions: boot, reboot or shut down the nodes of a template",
                    aliases=["session"])
    create = leaf(actions, "create", cmd_create, "Start a session", common)
    create.add_argument("--template-name", required=True, metavar="NAME")
    create.add_argument("--operation", required=True, type=operation, metavar="boot|reboot|shutdown")
    create.add_argument("--limit", help="comma-separated xnames, groups, roles; &x intersects, !x removes")
    add_flag_bool(create, "--stage", "only stage the change; apply later with `bos applystaged`")
    add_flag_bool(create, "--include-disabled", "also act on nodes disabled in HSM")
    create.add_argument("--name", help="session name (default: a random UUID)")
    create.add_argument("--max-in-flight", type=positive_int, metavar="N",
                        help="at most N nodes in a power transition or booting at once (rolling waves)")
    create.add_argument("--max-failed", type=count_or_percent, metavar="N|N%",
                        help="stop starting nodes once more than N (or N%% of the) nodes have failed")
    create.add_argument("--dry-run", action="store_true",
                        help="show what the session would do (nodes, boot artifacts, kernel parameters, "
                             "excluded nodes and why); change nothing")
    create.add_argument("--watch", action="store_true", help="follow the session until it completes")
    _add_watch_flags(create)
    stop = leaf(actions, "stop", cmd_stop, "Stop a session and clean up after it", common)
    stop.add_argument("name")
    stop.add_argument("--keep-configuration", action="store_true",
                      help="leave the CFS desired configuration this session set")
    retry = leaf(actions, "retry", cmd_retry, "Re-run a session on its failed nodes (NAME-retry-N)", common)
    retry.add_argument("name")
    retry.add_argument("--watch", action="store_true", help="follow the new session until it completes")
    _add_watch_flags(retry)

    listing = leaf(actions, "list", cmd_list, "List sessions", common)
    _add_filters(listing, "list")
    leaf(actions, "describe", cmd_describe, "Show one session", common).add_argument("name")
    delete = leaf(actions, "delete", cmd_delete,
                  "Delete a session, or every session matching filters (default status: complete)", common)
    delete.add_argument("name", nargs="?")
    _add_filters(delete, "delete")
    leaf(actions, "status", cmd_status, "Show a session's extended status", common).add_argument("name")
    watcher = leaf(actions, "watch", cmd_watch, "Follow a session with a live progress bar", common)
    watcher.add_argument("name")
    _add_watch_flags(watcher)
