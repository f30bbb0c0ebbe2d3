"""Computed component status (api.md §2.3) and the session extended status (§2.9)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional

from .times import epoch, render_duration, utcnow

STABLE = "stable"


def component_status(record: Mapping[str, Any]) -> str:
    """The computed `status.status`; first matching rule wins."""
    status = record.get("status") or {}
    override = status.get("status_override") or ""
    if override:
        return override  # rule 1
    phase = status.get("phase") or ""
    last_action = record.get("last_action") or {}
    action = last_action.get("action")
    if phase == "powering_on":
        if action == "powering_on" and last_action.get("failed") is not True:
            return "power_on_called"  # rule 2
        return "power_on_pending"  # rule 3
    if phase == "powering_off":
        if action == "powering_off_gracefully":
            return "power_off_gracefully_called"  # rule 4
        if action == "powering_off_forcefully":
            return "power_off_forcefully_called"  # rule 5
        return "power_off_pending"  # rule 6
    if phase == "configuring":
        return "configuring"  # rule 7
    return STABLE  # rule 8


def status_view(record: Mapping[str, Any]) -> Dict[str, Any]:
    """The `status` object as emitted: phase and override defaulted, computed status added."""
    status = dict(record.get("status") or {})
    status.setdefault("phase", "")
    status.setdefault("status_override", "")
    status["status"] = component_status(record)
    return status


def _percent(count: int, total: int) -> float:
    return round(100.0 * count / total, 2) if total else 0.0


def error_summary(by_error: Mapping[str, Iterable[str]]) -> Dict[str, Dict[str, Any]]:
    """Per distinct error: count and the 10 lexically smallest IDs, then `...` (D20)."""
    summary = {}
    for error, ids in by_error.items():
        ordered = sorted(ids)
        listed = ",".join(ordered[:10]) + ("..." if len(ordered) > 10 else "")
        summary[error] = {"count": len(ordered), "list": listed}
    return summary


def member_counts(members: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    """The counts the extended status needs, from member records."""
    counts: Dict[str, Any] = {"members": 0, "successful": 0, "failed": 0,
                              "phases": {"powering_on": 0, "powering_off": 0, "configuring": 0}, "errors": {}}
    for record in members:
        counts["members"] += 1
        computed = component_status(record)
        counts["successful"] += computed == STABLE
        counts["failed"] += computed == "failed"
        status = record.get("status") or {}
        if record.get("enabled") is True and status.get("status_override") != "on_hold":
            phase = status.get("phase") or ""
            if phase in counts["phases"]:
                counts["phases"][phase] += 1
        if record.get("error"):
            counts["errors"].setdefault(record["error"], []).append(record["id"])
    return counts


def extended_status(session: Mapping[str, Any], members: Iterable[Mapping[str, Any]],
                    staged_count: int, now: Optional[float] = None) -> Dict[str, Any]:
    """The extended status of a session from its live member records (api.md §2.9).

    `members` are the components whose `session` is the session (C); `staged_count`
    is |S|, the components staged for it.
    """
    return extended_status_from_counts(session, member_counts(members), staged_count, now)


def extended_status_from_counts(session: Mapping[str, Any], counts: Mapping[str, Any], staged_count: int,
                                now: Optional[float] = None) -> Dict[str, Any]:
    """The extended status from `member_counts`-shaped counts (the store can count without decoding)."""
    total = counts["members"] + staged_count
    phases = counts["phases"]
    sess_status = session.get("status") or {}
    start, end = sess_status.get("start_time"), sess_status.get("end_time")
    result: Dict[str, Any] = {}
    if sess_status.get("status"):
        result["status"] = sess_status["status"]
    result.update({
        "managed_components_count": total,
        "phases": {"percent_complete": _percent(counts["successful"] + counts["failed"], total),
                   "percent_powering_on": _percent(phases["powering_on"], total),
                   "percent_powering_off": _percent(phases["powering_off"], total),
                   "percent_configuring": _percent(phases["configuring"], total)},
        "percent_successful": _percent(counts["successful"], total),
        "percent_failed": _percent(counts["failed"], total),
        "percent_staged": _percent(staged_count, total),
        "error_summary": error_summary(counts["errors"]),
        "timing": {"start_time": start, "end_time": end, "duration": _duration(start, end, now)},
    })
    return result


def _duration(start: Optional[str], end: Optional[str], now: Optional[float]) -> str:
    begin = epoch(start)
    if begin is None:
        return "0:00:00"
    finish = epoch(end) if end else None
    if finish is None:
        finish = now if now is not None else utcnow().timestamp()
    return render_duration(int(finish) - int(begin))
