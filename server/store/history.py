"""Per-component history (extension, deviations.md "Component history").

Every change of a component's phase, computed status, last action, error,
session, enabled flag or desired/actual boot state appends one entry to a capped
Redis list of that component. The entry is appended by the same Lua script,
in the same atomic step, as the record write it describes (cas.py), and only
if that write was applied. Entries are bounded in count (`LTRIM`) and in age
(older entries are popped on append, and the whole list expires when the
component has been quiet for the age bound), both set by bos-server flags.

A capped list, not a stream: Redis preallocates 4 KiB for every stream, 400 MiB
at 100,000 components before the first entry; a short list costs its entries
(bench/history_memory.py, docs/metrics.md). Each element is `<ms>-<seq> <json>`:
the id (Redis clock, increasing per component) is written by the script, the
JSON array of FIELDS by `entry()`.

Writes that change none of the tracked fields (a reporter re-reporting the same
boot, a timestamp refresh) append nothing: detection is a tuple comparison in
Python, so the reporter's hot path pays only that.
"""

from __future__ import annotations

import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from redis.asyncio import Redis

from bos_shared.status import component_status

from . import keys
from .codec import dumps, loads

Record = Mapping[str, Any]
# The values of an entry's JSON array, in this order.
FIELDS = ("session", "phase", "status", "last_action", "failed", "error", "enabled", "reason")
MAX_ERROR = 300  # characters of an error kept in an entry
MAX_BY = 300     # characters of the writer kept in an entry
# Who is writing, with auth on (docs/auth.md): "<token subject> (<role>)", set per request by the
# auth middleware; empty when auth is off. Read in the writer's own task (ComponentStore.update,
# WriteBatcher.submit).
ACTOR: ContextVar[str] = ContextVar("bos_actor", default="")
ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@dataclass(frozen=True)
class HistorySettings:
    """Bounds of every component's history: at most `max_entries`, none older than `max_age` s."""

    max_entries: int = 30
    max_age: float = 7 * 86400.0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_age > 0

    def oldest_ms(self, now: Optional[float] = None) -> int:
        """The time (ms) of the oldest entry still inside the age bound."""
        return int(((now if now is not None else time.time()) - self.max_age) * 1000)


def _boot(state: Any) -> Tuple[str, str, str]:
    artifacts = state.get("boot_artifacts") if isinstance(state, dict) else None
    if not isinstance(artifacts, dict):
        return ("", "", "")
    return (artifacts.get("kernel") or "", artifacts.get("kernel_parameters") or "", artifacts.get("initrd") or "")


def tracked(record: Optional[Record]) -> Tuple[Any, ...]:
    """The tracked fields of a record (timestamps excluded): a change of any is a history entry.

    The computed status is a function of the override, phase, last action and its failure
    (api.md §2.3), so comparing those compares it too, without computing it on every write.
    """
    if record is None:
        return ()
    status = record.get("status") or {}
    action = record.get("last_action") or {}
    desired = record.get("desired_state")
    return (status.get("phase") or "", status.get("status_override") or "", action.get("action") or "",
            action.get("failed") is True, record.get("error") or "", record.get("session") or "",
            record.get("enabled") is True, _boot(desired),
            (desired.get("configuration") or "") if isinstance(desired, dict) else "",
            _boot(record.get("actual_state")))


# Positions in tracked() and the words a reason uses for them ("status" is the computed status,
# put in place of the override by entry()).
_NAMES = ("phase", "status", "last_action", "failed", "error", "session", "enabled", "desired boot",
          "desired configuration", "actual boot")


def reason(before: Tuple[Any, ...], after: Tuple[Any, ...]) -> str:
    """A short, human reason: what changed, most telling first."""
    if not before:
        return "created"
    parts: List[str] = []
    for name, old, new in zip(_NAMES, before, after):
        if old == new:
            continue
        if name == "error":
            parts.append("error cleared" if not new else "error set")
        elif name == "failed":
            parts.append("action failed" if new else "action succeeded")
        elif name == "enabled":
            parts.append("enabled" if new else "disabled")
        elif name in ("desired boot", "actual boot"):
            parts.append(f"{name} {'cleared' if not any(new) else 'set'}")
        elif name == "desired configuration":
            parts.append(f"desired configuration {new or 'cleared'}")
        else:
            parts.append(f"{name} {old or '-'} -> {new or '-'}")
    return "; ".join(parts)


def entry(old: Optional[Record], new: Record, by: str = "") -> Optional[bytes]:
    """The payload of an entry describing `old` -> `new`, or None if no tracked field changed.

    `by`: who made the change (auth on), a ninth value only when known.
    """
    before, after = tracked(old), tracked(new)
    if before == after:
        return None
    status = component_status(new)
    if before:
        before = before[:1] + (component_status(old),) + before[2:]  # type: ignore[arg-type]
    after = after[:1] + (status,) + after[2:]
    phase, _status, action, failed, error, session, enabled = after[:7]
    values = [session, phase, status, action, failed, error[:MAX_ERROR], enabled, reason(before, after)]
    return dumps(values + [by[:MAX_BY]] if by else values)


def change_of(component_id: str, new: Record) -> List[Any]:
    """What a change event carries for the dashboard: [id, session, phase, status, has error]."""
    status = new.get("status") or {}
    return [component_id, new.get("session") or "", status.get("phase") or "",
            component_status(new), bool(new.get("error"))]


def decode(element: bytes) -> Dict[str, Any]:
    """A stored entry as the API shows it (`GET /v2/components/{id}/history`)."""
    entry_id, _, payload = element.partition(b" ")
    stored = loads(payload)
    values = dict(zip(FIELDS, stored))
    millis = int(entry_id.split(b"-")[0])
    by = {"by": stored[len(FIELDS)]} if len(stored) > len(FIELDS) else {}  # auth on (docs/auth.md)
    return {**by,
        "id": entry_id.decode(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis / 1000)) + f".{millis % 1000:03d}Z",
        "session": values["session"], "phase": values["phase"], "status": values["status"],
        "last_action": values["last_action"], "last_action_failed": values["failed"] is True,
        "error": values["error"], "enabled": values["enabled"] is True, "reason": values["reason"],
    }


async def read(redis: Redis, settings: HistorySettings, component_id: str, start_after: Optional[str],
               page_size: int) -> List[Dict[str, Any]]:
    """Entries oldest first, after `start_after` (an entry id), inside the age bound.

    The list holds at most `max_entries`, so it is read whole and paged here.
    """
    oldest = (settings.oldest_ms(), -1)
    after = max(oldest, _id_tuple(start_after)) if start_after is not None else oldest
    out: List[Dict[str, Any]] = []
    elements: List[bytes] = await redis.lrange(keys.component_history(component_id), 0, -1)
    for element in elements:
        if _id_tuple(element.split(b" ", 1)[0].decode()) > after:
            out.append(decode(element))
            if len(out) == page_size:
                break
    return out


def _id_tuple(entry_id: str) -> Tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return (int(ms), int(seq or 0))
