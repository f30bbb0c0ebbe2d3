"""Human views of the session-control extensions: a dry-run plan and a stop's cleanup report."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List, Mapping

from .output import Column, field, preview_list, table

BOOT_SET_COLUMNS = (
    Column("BOOT SET", field("name")),
    Column("NODES", field("node_count")),
    Column("KERNEL", field("boot_artifacts", "kernel"), max_width=60),
    Column("CONFIGURATION", field("configuration")),
    Column("KERNEL PARAMETERS", field("boot_artifacts", "kernel_parameters"), max_width=200),
)
REASON_COLUMNS = (
    Column("REASON", field("reason"), max_width=80),
    Column("BOOT SET", field("boot_set")),
    Column("COUNT", field("count")),
    Column("NODES", field("nodes"), max_width=80),
)


def plan_text(plan: Mapping[str, Any]) -> str:
    """Boot sets, excluded nodes grouped by reason, taken-over nodes and a summary line."""
    rows = [{"name": name, **entry} for name, entry in (plan.get("boot_sets") or {}).items()]
    lines = ["Dry run: nothing was changed.", "", table(BOOT_SET_COLUMNS, rows) if rows else "No boot set selects a node."]
    excluded = _by_reason(plan.get("excluded") or [])
    if excluded:
        lines += ["", "Excluded nodes:", table(REASON_COLUMNS, excluded)]
    taken = plan.get("taken_over") or {}
    if taken:
        lines += ["", "Taken over from running sessions:"]
        by_session: Dict[str, List[str]] = defaultdict(list)
        for node, session in taken.items():
            by_session[session].append(node)
        lines += [f"  {session}: {len(nodes)} nodes ({preview_list(sorted(nodes))})"
                  for session, nodes in sorted(by_session.items())]
    lines += [f"Warning: {w}" for w in plan.get("warnings") or []]
    summary = plan.get("summary") or {}
    lines += ["", f"Summary: {summary.get('nodes', 0)} nodes would be acted on, {summary.get('excluded', 0)} "
                  f"excluded, {summary.get('taken_over', 0)} taken over from running sessions."]
    return "\n".join(lines)


def _by_reason(excluded: List[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    groups: Dict[tuple, List[str]] = defaultdict(list)
    for entry in excluded:
        groups[(entry.get("reason", ""), entry.get("boot_set", ""))].append(entry.get("id", ""))
    return [{"reason": reason, "boot_set": boot_set, "count": len(ids), "nodes": preview_list(sorted(ids))}
            for (reason, boot_set), ids in sorted(groups.items())]


def stop_text(name: str, result: Mapping[str, Any]) -> str:
    cleanup = result.get("cleanup") or {}
    if not result.get("stopped"):
        return f"Session '{name}' had already completed; nothing to stop."
    lines = [f"Session '{name}' stopped."]
    for key, label in (("disabled", "Disabled"), ("configuration_cleared", "CFS configuration cleared"),
                       ("staged_cleared", "Staged state cleared")):
        ids = cleanup.get(key) or []
        lines.append(f"{label + ':':<27}{len(ids):>6}  {preview_list(ids) if ids else ''}".rstrip())
    caught = cleanup.get("mid_power_transition") or {}
    if caught:
        lines.append(f"{'Mid power transition:':<27}{len(caught):>6}  {preview_list(sorted(caught))}")
        lines.append("  (their PCS request was already sent; the node finishes that transition and BOS "
                     "leaves it there)")
    if cleanup.get("keep_configuration"):
        lines.append("CFS desired configuration was kept (--keep-configuration).")
    lines += [f"Error: {e}" for e in cleanup.get("configuration_errors") or []]
    if cleanup.get("actions_still_running"):
        lines.append(f"Warning: {cleanup['actions_still_running']} operator actions were still running "
                     "when the stop gave up waiting for them.")
    return "\n".join(lines)
