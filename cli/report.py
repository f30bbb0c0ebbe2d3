"""Human views of a session: its extended status and its failed nodes.

Shared by `bos sessions status` and the end of `--watch`, so an admin sees the
same report whether they followed the session live or looked afterwards.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional

from .output import Column, field, table

BAR_WIDTH = 30
PHASE_KEYS = (("powering_off", "percent_powering_off"), ("powering_on", "percent_powering_on"),
              ("configuring", "percent_configuring"))

FAILED_COLUMNS = (
    Column("ID", field("id")),
    Column("LAST ACTION", field("last_action", "action")),
    Column("ATTEMPTS", lambda r: attempts(r)),
    Column("ERROR", field("error"), max_width=120),
)


def attempts(record: Mapping[str, Any]) -> str:
    """`on 3 / off 1+2` style counters: how hard BOS tried before giving up."""
    stats = record.get("event_stats") or {}
    on = stats.get("power_on_attempts", 0)
    soft = stats.get("power_off_graceful_attempts", 0)
    hard = stats.get("power_off_forceful_attempts", 0)
    return f"on {on}, off {soft}+{hard}"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(round(fraction * width))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def share(percent: Any, total: int) -> str:
    """`4/10 (40.0%)`: counts are what admins act on, percentages what the API reports."""
    pct = float(percent or 0.0)
    return f"{round(pct * total / 100.0)}/{total} ({pct:.1f}%)"


def extended_status_text(ext: Mapping[str, Any], name: Optional[str] = None,
                         session: Optional[Mapping[str, Any]] = None) -> str:
    """The extended status (api.md §2.9) as a short block of aligned lines."""
    total = int(ext.get("managed_components_count") or 0)
    phases = ext.get("phases") or {}
    timing = ext.get("timing") or {}
    complete = float(phases.get("percent_complete") or 0.0)
    lines = []
    if name:
        lines.append(f"Session      {name}")
    lines.append(f"Status       {ext.get('status', '-')}")
    if session:
        lines.append(f"Operation    {session.get('operation', '-')} (template {session.get('template_name', '-')}"
                     + (", staged" if session.get("stage") else "") + ")")
    lines += [
        f"Components   {total} managed",
        f"Progress     {bar(complete / 100.0)} {complete:.1f}% complete",
        f"Succeeded    {share(ext.get('percent_successful'), total)}",
        f"Failed       {share(ext.get('percent_failed'), total)}",
        f"Staged       {share(ext.get('percent_staged'), total)}",
        "In progress  " + ", ".join(f"{label} {share(phases.get(key), total)}" for label, key in PHASE_KEYS),
        f"Started      {timing.get('start_time') or '-'}",
        f"Ended        {timing.get('end_time') or '-'}",
        f"Duration     {timing.get('duration') or '-'}",
    ]
    error = ((session or {}).get("status") or {}).get("error")
    if error:
        lines.append(f"Error        {error}")
    lines += error_summary_lines(ext.get("error_summary") or {})
    return "\n".join(lines)


def error_summary_lines(summary: Mapping[str, Any]) -> List[str]:
    if not summary:
        return []
    lines = ["Errors"]
    for message, entry in summary.items():
        lines.append(f"  {entry.get('count', 0):>5}  {message}")
        lines.append(f"         nodes: {entry.get('list', '')}")
    return lines


def failed_nodes_text(records: Iterable[Mapping[str, Any]]) -> str:
    rows = sorted(records, key=lambda r: r.get("id", ""))
    if not rows:
        return "No failed nodes."
    return f"Failed nodes ({len(rows)}):\n" + table(FAILED_COLUMNS, rows)


def retry_hint(name: str, session: Mapping[str, Any], failed: int) -> str:
    """Seed 003: a session that ended with failures names the exact command that retries them."""
    if not failed or (session.get("status") or {}).get("status") != "complete":
        return ""
    return f"Retry the {failed} failed node{'s' if failed != 1 else ''} with: bos sessions retry {name}"
