"""`bos components list|describe|update|delete|history`."""

from __future__ import annotations

import argparse
from typing import Any, Dict, List, Mapping, Sequence
from urllib.parse import quote

from .. import output, summary
from ..args import boolean, load_object, non_negative_int, split_ids
from ..context import Context
from ..http import UsageError
from ..output import Column, field
from . import group, leaf

ROW_LIMIT = 50
PAGE_SIZE = 1000

COMPONENT_COLUMNS = (
    Column("ID", field("id")),
    Column("ENABLED", field("enabled")),
    Column("PHASE", field("status", "phase")),
    Column("STATUS", lambda r: summary.status_of(r)),
    Column("LAST ACTION", field("last_action", "action")),
    Column("SESSION", field("session")),
    Column("ERROR", field("error"), max_width=50),
)


def _path(component_id: str) -> str:
    return "/components/" + quote(component_id, safe="")


def list_params(args: argparse.Namespace) -> Dict[str, str]:
    """Query parameters of GET /v2/components; lists are one comma-separated string."""
    params: Dict[str, str] = {}
    ids = split_ids(args.ids)
    if ids:
        params["ids"] = ",".join(ids)
    statuses = split_ids(args.status)
    if statuses:
        params["status"] = ",".join(statuses)
    for key in ("session", "staged_session", "phase"):
        if getattr(args, key):
            params[key] = getattr(args, key)
    if args.enabled is not None:
        params["enabled"] = "true" if args.enabled else "false"
    return params


def listing_text(records: Sequence[Mapping[str, Any]], rows: str) -> str:
    """Counts first; rows too when few enough, or asked for (`--rows`), not with `--summary`."""
    text = summary.summary_text(summary.count(records))
    if not records or rows == "none":
        return text
    if rows == "auto" and len(records) > ROW_LIMIT:
        return (text + f"\n\n{len(records)} rows not shown: add --rows to list them, "
                "or narrow with --status, --phase, --session, --enabled or --ids.")
    return text + "\n\n" + output.table(COMPONENT_COLUMNS, records)


def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    records = ctx.client.components(list_params(args), args.page_size)
    ctx.emit(records, lambda: listing_text(records, args.rows))
    return 0


def cmd_describe(ctx: Context, args: argparse.Namespace) -> int:
    ctx.emit(ctx.client.get(_path(args.id)))
    return 0


HISTORY_COLUMNS = (
    Column("TIME", field("time")),
    Column("STATUS", field("status")),
    Column("PHASE", field("phase")),
    Column("LAST ACTION", lambda e: (e.get("last_action") or "") + (" (failed)" if e.get("last_action_failed") else "")),
    Column("SESSION", field("session")),
    Column("REASON", field("reason"), max_width=80),
    Column("ERROR", field("error"), max_width=50),
)
HISTORY_PAGE = 1000


def cmd_history(ctx: Context, args: argparse.Namespace) -> int:
    """Every page of the component's history (api.md §3.4.6), oldest first; `--last N` keeps the newest N."""
    entries: List[Mapping[str, Any]] = []
    params: Dict[str, Any] = {"page_size": HISTORY_PAGE}
    while True:
        page = ctx.client.get(_path(args.id) + "/history", params)
        entries.extend(page)
        if len(page) < HISTORY_PAGE:
            break
        params["start_after"] = page[-1]["id"]
    if args.last:
        entries = entries[-args.last:]
    ctx.emit(entries, lambda: output.table(HISTORY_COLUMNS, entries) if entries
             else f"No history for {args.id} (nothing changed within the retention period).")
    return 0


def build_patch(args: argparse.Namespace) -> Dict[str, Any]:
    patch: Dict[str, Any] = load_object(args.file) if args.file else {}
    if args.enabled is not None:
        patch["enabled"] = args.enabled
    if args.clear_error:
        patch["error"] = ""
    elif args.error is not None:
        patch["error"] = args.error
    if args.retry_policy is not None:
        patch["retry_policy"] = args.retry_policy
    if not patch:
        raise UsageError("nothing to change: give --enabled, --clear-error, --error, --retry-policy or --file")
    return patch


def _targets(args: argparse.Namespace) -> Dict[str, str]:
    """The bulk filter (api.md §3.3.3): by IDs or by session, never both."""
    ids = split_ids(list(args.ids) + list(args.filter_ids or []))
    if ids and args.filter_session:
        raise UsageError("give component IDs or --filter-session, not both")
    if args.filter_session:
        return {"session": args.filter_session}
    if not ids:
        raise UsageError("give the component IDs to update (or --filter-ids / --filter-session)")
    return {"ids": ",".join(ids)}


def cmd_update(ctx: Context, args: argparse.Namespace) -> int:
    patch = build_patch(args)
    targets = _targets(args)
    ids = targets.get("ids", "").split(",")
    if "ids" in targets and len(ids) == 1:
        record = ctx.client.patch(_path(ids[0]), patch)
        ctx.emit(record, lambda: "Updated 1 component.\n\n" + output.table(COMPONENT_COLUMNS, [record]))
        return 0
    records = ctx.client.patch("/components", {"patch": patch, "filters": targets})
    ctx.emit(records, lambda: f"Updated {len(records)} components."
             + ("\n\n" + output.table(COMPONENT_COLUMNS, records) if records else ""))
    return 0


def cmd_delete(ctx: Context, args: argparse.Namespace) -> int:
    for component_id in split_ids(args.ids):
        ctx.client.delete(_path(component_id))
        if ctx.human:
            ctx.say(f"Component '{component_id}' deleted.")
    return 0


def register(subparsers: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    actions = group(subparsers, "components", "Components: BOS's record of each node", aliases=["component"])
    listing = leaf(actions, "list", cmd_list, "List components (counts first, then rows)", common)
    listing.add_argument("--ids", nargs="+", action="extend", metavar="ID", help="comma- or space-separated xnames")
    listing.add_argument("--session", metavar="NAME", help="components of this session")
    listing.add_argument("--staged-session", metavar="NAME", help="components staged by this session")
    listing.add_argument("--enabled", type=boolean, metavar="true|false")
    listing.add_argument("--phase", choices=summary.ACTIVE_PHASES)
    listing.add_argument("--status", nargs="+", action="extend", metavar="STATUS",
                         help="computed status, e.g. failed or power_on_pending,configuring")
    rows = listing.add_mutually_exclusive_group()
    rows.add_argument("--rows", dest="rows", action="store_const", const="all", default="auto",
                      help=f"list every row (default: rows only when at most {ROW_LIMIT})")
    rows.add_argument("--summary", dest="rows", action="store_const", const="none", help="counts only")
    listing.add_argument("--page-size", type=non_negative_int, default=PAGE_SIZE, metavar="N",
                         help=f"components per request (default {PAGE_SIZE}; 0 = all at once)")

    leaf(actions, "describe", cmd_describe, "Show one component", common).add_argument("id")

    history = leaf(actions, "history", cmd_history, "What a node went through: its changes, oldest first", common)
    history.add_argument("id")
    history.add_argument("--last", type=non_negative_int, default=0, metavar="N", help="only the newest N changes")

    update = leaf(actions, "update", cmd_update, "Enable/disable, clear errors, set the retry policy", common)
    update.add_argument("ids", nargs="*", metavar="ID", help="one or more xnames (comma- or space-separated)")
    update.add_argument("--filter-ids", nargs="+", action="extend", metavar="ID", help="more xnames to update")
    update.add_argument("--filter-session", metavar="NAME", help="update every component of this session")
    update.add_argument("--enabled", type=boolean, metavar="true|false",
                        help="true: BOS acts on the node again; false: BOS leaves it alone")
    err = update.add_mutually_exclusive_group()
    err.add_argument("--clear-error", action="store_true", help="set error to \"\"")
    err.add_argument("--error", metavar="TEXT")
    update.add_argument("--retry-policy", type=non_negative_int, metavar="N", help="attempts per action")
    update.add_argument("--file", metavar="FILE", help="any other fields as a JSON/YAML patch (`-` for stdin)")

    delete = leaf(actions, "delete", cmd_delete, "Delete component records", common)
    delete.add_argument("ids", nargs="+", metavar="ID")
