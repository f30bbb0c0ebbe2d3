"""The stored form of a component record: default-valued fields left out (issue 13, Redis memory).

Most records carry `"event_stats"` with three zero counters, an empty `"error"` and a
`"status"` with an empty phase and override: about 150 of a booted record's ~690 bytes,
enough to move it down one allocator size class. `pack` leaves those values out and
`unpack` puts them back, so every reader sees the record that was written. The
actual state's BSS token, once a node has booted, is the desired state's: stored
as `1` (36 bytes less). A record
that did not have one of these fields at all stores it as `0`, a value the schema
never allows there (api.md §2.1), so the two forms map one to one.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

from bos_shared.components import zero_event_stats

Record = Dict[str, Any]
ABSENT = 0  # stored for a field the record does not have
SAME_TOKEN = 1  # stored for an actual-state BSS token equal to the desired state's


_ZERO_EVENT_STATS = zero_event_stats()
_IDLE_STATUS = {"status_override": "", "phase": ""}

# Each default made by copying a constant (every record read of a listing of 100,000 makes two).
DEFAULTS: Tuple[Tuple[str, Callable[[], Any]], ...] = (
    ("event_stats", _ZERO_EVENT_STATS.copy), ("status", _IDLE_STATUS.copy), ("error", str))
_MISSING = object()


_DEFAULT_VALUES = tuple((name, default()) for name, default in DEFAULTS)  # compared with, never handed out


def pack(record: Record) -> Record:
    """The record as stored (a copy when anything is left out or marked absent)."""
    stored = record
    for name, default in _DEFAULT_VALUES:
        value = record.get(name, _MISSING)
        if value is _MISSING or value == default:
            if stored is record:
                stored = dict(record)
            if value is _MISSING:
                stored[name] = ABSENT
            else:
                del stored[name]
    if _same_token(record):
        if stored is record:
            stored = dict(record)
        stored["actual_state"] = dict(record["actual_state"], bss_token=SAME_TOKEN)
    return stored


def _same_token(record: Record) -> bool:
    """The actual state's BSS token is the desired state's (every node after its boot)."""
    actual, desired = record.get("actual_state"), record.get("desired_state")
    return (isinstance(actual, dict) and isinstance(desired, dict) and isinstance(actual.get("bss_token"), str)
            and bool(actual["bss_token"]) and actual["bss_token"] == desired.get("bss_token"))


def unpack(stored: Record) -> Record:
    """The record as written, in place: defaults put back, absent markers removed."""
    actual = stored.get("actual_state")
    if isinstance(actual, dict) and actual.get("bss_token") == SAME_TOKEN and type(actual["bss_token"]) is int:
        actual["bss_token"] = stored["desired_state"]["bss_token"]
    for name, default in DEFAULTS:
        value = stored.get(name, _MISSING)
        if value is _MISSING:
            stored[name] = default()
        elif type(value) is int and value == ABSENT:
            del stored[name]
    return stored
