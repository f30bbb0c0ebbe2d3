"""Per-component history (extension, deviations.md "Component history").

Every change of a component's phase, computed status, last action, error,
session, enabled flag or desired/actual boot state appends one entry to a capped
history of that component. The entry is appended by the same Lua script, in
the same atomic step, as the record write it describes (cas.py), and only if
that write was applied. Entries are bounded in count and in age (older entries
are dropped on append and never read), both set by bos-server flags; a history
whose newest entry is older than the age bound (a component quiet that long, or
deleted) is deleted as a whole by `sweep`, hourly, not by a per-key expiry: the
script writes every history of a call with one MSET, where a `SET ... PX` per
record was a tenth of Redis's CPU on a bulk write (issue 13; docs/deviations.md).

Packed for memory (issue 13: ≤ 1.5 KiB per booted component with its history;
bench/history_memory.py, docs/metrics.md): a history is ONE Redis string, entries
separated by GS (0x1d), fields by US (0x1f), not a list (a list costs ≈80 B more
per key) nor a stream (4 KiB preallocated per stream). An entry is

    id  bits  phase  status  action  session  error  old phase  old status  old action  old session  configuration  by

- `id` `<ms>-<seq>` in base 36 (`<ms>` after the first entry when seq is 0), written by the
  script from one clock kept in Redis (keys.HISTORY_CLOCK), increasing per component;
- `bits` (base 36): which tracked fields changed (the reason, rebuilt on read), failed, enabled,
  whether the desired/actual boot artifacts are set;
- phase, computed status and last action as one-character codes of the schema's enums
  (`'` + the value for anything else), the old values only when they changed;
- `session` and `error` as `=<value>`, blank where unchanged since the entry before (the first
  entry holds both), so a session name is stored about once per session, not once per
  transition: the API sends both and the script blanks them by the entry's bits (cas.py);
- the desired configuration only when it changed; `by` only with auth on.
Trailing empty fields are not stored. The wire shape (api.md §3.4.6) is unchanged.

The script adds an entry at the end of the stored text without parsing it (splitting it and
rebuilding its last entry was a quarter of Redis' work per record of a bulk write: cas.py), so the count and age bounds are kept by a
trim once a history outgrows `max_entries × ENTRY_BYTES` bytes; until then it may hold more
entries, and older ones, than the bounds, which `read` leaves out. A history of an older version
(entries separated by RS, session and error blank where equal to the entry AFTER) still reads:
its entries come first, and the first trim rewrites it. During a rolling update the previous
version's script may add an entry after RS (holding its session and error) to a history written
by this one, and blank the first entry's: read as an entry after the one before it, never an
error (docs/deploy.md).

Writes that change none of the tracked fields (a reporter re-reporting the same
boot, a timestamp refresh) append nothing: detection is a tuple comparison in
Python, so the reporter's hot path pays only that.
"""

from __future__ import annotations

import logging
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bos_shared.schema import ACTIONS, COMPONENT_STATUSES, PHASES
from bos_shared.status import component_status

from . import keys
from .component_query import Facets

LOG = logging.getLogger(__name__)
Record = Mapping[str, Any]
RS, US, GS = "\x1e", "\x1f", "\x1d"  # an older version's entry separator, field separator, entry start
ENTRY_BYTES = 48  # a history is trimmed past max_entries x this (≈1.5 x the mean entry, docs/metrics.md)
MAX_ERROR = 300  # characters of an error kept in an entry
MAX_BY = 300     # characters of the writer kept in an entry
# Who is writing, with auth on (docs/auth.md): "<token subject> (<role>)", set per request by the
# auth middleware; empty when auth is off. Read in the writer's own task (ComponentStore.update,
# WriteBatcher.submit).
ACTOR: ContextVar[str] = ContextVar("bos_actor", default="")
ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
# Field positions of a stored entry (module docstring); the script (cas.py) knows SESSION and ERROR.
ID, BITS, PHASE, STATUS, ACTION, SESSION, ERROR, OLD_PHASE, OLD_STATUS, OLD_ACTION, OLD_SESSION, CONFIG, BY = range(13)


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


class _Codes:
    """One-character codes of an enum's values; anything else is stored as `'` + the value."""

    def __init__(self, values: Sequence[str]) -> None:
        self._code = {v: "0123456789abcdefghijklmnopqrstuvwxyz"[n] for n, v in enumerate(values)}
        self._value = {c: v for v, c in self._code.items()}

    def code(self, value: str) -> str:
        return self._code.get(value) or "'" + _clean(value)

    def value(self, code: str) -> str:
        return code[1:] if code.startswith("'") else self._value.get(code, code)


_PHASES, _STATUSES, _ACTIONS = _Codes(PHASES), _Codes(COMPONENT_STATUSES), _Codes(("",) + ACTIONS)


def _clean(text: str) -> str:
    """`text` without the separators of a stored history."""
    if RS in text or US in text or GS in text:
        return text.replace(RS, " ").replace(US, " ").replace(GS, " ")
    return text


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
# put in place of the override by entry()); bit n of an entry's `bits` says position n changed.
_NAMES = ("phase", "status", "last_action", "failed", "error", "session", "enabled", "desired boot",
          "desired configuration", "actual boot")
_FAILED, _ENABLED, _DESIRED_SET, _ACTUAL_SET, _CREATED = (1 << n for n in range(len(_NAMES), len(_NAMES) + 5))


def _b36(number: int) -> str:
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
        if not number:
            return digits


def entry(old: Optional[Record], new: Record, by: str = "") -> Optional[bytes]:
    """The packed payload of an entry describing `old` -> `new`, or None if no tracked field changed.

    `by`: who made the change (auth on), stored only when known.
    """
    return entry_of(tracked(old), tracked(new), old, new, by)


_MEMO: Dict[Tuple[Any, ...], Optional[bytes]] = {}
MEMO_SIZE = 512  # distinct transitions kept (keys are short: _small)


def entry_of(before: Tuple[Any, ...], after: Tuple[Any, ...], old: Optional[Record], new: Record,
             by: str = "") -> Optional[bytes]:
    """entry() from the records' tracked() tuples (a writer that has them already).

    The payload is a function of the two tuples and `by` (the computed statuses are
    functions of tracked fields, tracked()'s docstring), and a bulk write of 2,800
    records has a handful of distinct transitions: each is packed once.
    """
    if before == after:
        return None
    key = (_small(before, after), _small(after, before), by)
    found = _MEMO.get(key, _MEMO)
    if found is not _MEMO:
        return found  # type: ignore[return-value]
    payload = _pack_entry(before, after, old, new, by)
    if len(_MEMO) >= MEMO_SIZE:
        _MEMO.clear()
    _MEMO[key] = payload
    return payload


def _small(these: Tuple[Any, ...], others: Tuple[Any, ...]) -> Tuple[Any, ...]:
    """`these` tracked fields for the memo key, each boot (kernel, ~2 KiB of parameters, initrd) replaced by
    what the entry takes from it: whether it is set and whether it differs from `others`' (the
    fresh parameter strings of every item of a bulk write would otherwise be hashed for the key)."""
    if not these:
        return these
    desired, actual = these[7], these[9]
    far = others[7:10:2] if others else ((), ())
    return these[:7] + (any(desired), desired != far[0], these[8], any(actual), actual != far[1])


def _pack_entry(before: Tuple[Any, ...], after: Tuple[Any, ...], old: Optional[Record], new: Record,
                by: str) -> Optional[bytes]:
    status = component_status(new)
    after = after[:1] + (status,) + after[2:]
    bits = ((_FAILED if after[3] else 0) | (_ENABLED if after[6] else 0) | (_DESIRED_SET if any(after[7]) else 0)
            | (_ACTUAL_SET if any(after[9]) else 0))
    olds = ["", "", "", ""]
    if before:
        before = before[:1] + (component_status(old),) + before[2:]  # type: ignore[arg-type]
        for n, (was, now) in enumerate(zip(before, after)):
            if was != now:
                bits |= 1 << n
        olds = [_PHASES.code(before[0]) if bits & 1 else "", _STATUSES.code(before[1]) if bits & 2 else "",
                _ACTIONS.code(before[2]) if bits & 4 else "", "=" + _clean(before[5]) if bits & 32 else ""]
    else:
        bits |= _CREATED
    fields = [_b36(bits), _PHASES.code(after[0]), _STATUSES.code(status), _ACTIONS.code(after[2]),
              "=" + _clean(after[5]), "=" + _clean(after[4][:MAX_ERROR]), *olds,
              _clean(after[8]) if bits & 256 else "", _clean(by[:MAX_BY])]
    return US.join(fields).rstrip(US).encode()


def change_of(component_id: str, facets: Facets) -> List[Any]:
    """What a change event carries for the dashboard: [id, session, phase, status, has error],
    from the record's index facets (component_query.index_facets: computed while planning the write)."""
    status, _enabled, session, _staged, phase, errored = facets
    return [component_id, session, phase, status, errored]


def _reason(bits: int, fields: Sequence[str], phase: str, status: str, action: str, session: str,
            error: str) -> str:
    """What changed, most telling first (the words of api.md §3.4.6's examples)."""
    if bits & _CREATED:
        return "created"
    parts: List[str] = []
    for n, name in enumerate(_NAMES):
        if not bits & (1 << n):
            continue
        if name == "error":
            parts.append("error set" if error else "error cleared")
        elif name == "failed":
            parts.append("action failed" if bits & _FAILED else "action succeeded")
        elif name == "enabled":
            parts.append("enabled" if bits & _ENABLED else "disabled")
        elif name in ("desired boot", "actual boot"):
            parts.append(f"{name} {'set' if bits & (_DESIRED_SET if name == 'desired boot' else _ACTUAL_SET) else 'cleared'}")
        elif name == "desired configuration":
            parts.append(f"desired configuration {fields[CONFIG] or 'cleared'}")
        else:
            old, new = {"phase": (_PHASES.value(fields[OLD_PHASE]), phase),
                        "status": (_STATUSES.value(fields[OLD_STATUS]), status),
                        "last_action": (_ACTIONS.value(fields[OLD_ACTION]), action),
                        "session": (fields[OLD_SESSION][1:], session)}[name]
            parts.append(f"{name} {old or '-'} -> {new or '-'}")
    return "; ".join(parts)


def _fields(stored: bytes) -> List[List[str]]:
    """A stored history's entries as field lists, oldest first, each holding its session and error
    (module docstring: an older version's entries first, blank as the entry after; then the
    appended ones, blank as the entry before)."""
    legacy, *appended = stored.decode(errors="replace").split(GS)
    rows = [_padded(packed) for packed in legacy.split(RS)] if legacy else []
    session = error = "="
    for fields in reversed(rows):
        session = fields[SESSION] = fields[SESSION] or session
        error = fields[ERROR] = fields[ERROR] or error
    if rows:
        session, error = rows[-1][SESSION], rows[-1][ERROR]
    for packed in (one for chunk in appended for one in chunk.split(RS)):  # RS: docs/deploy.md
        fields = _padded(packed)
        session = fields[SESSION] = fields[SESSION] or session
        error = fields[ERROR] = fields[ERROR] or error
        rows.append(fields)
    return rows


def _padded(packed: str) -> List[str]:
    """An entry's fields, the trailing empty ones (not stored) put back."""
    fields = packed.split(US)
    return fields + [""] * (BY + 1 - len(fields))


def decode(stored: bytes) -> List[Dict[str, Any]]:
    """A stored history as the API shows it (`GET /v2/components/{id}/history`), oldest first."""
    out: List[Dict[str, Any]] = []
    for fields in _fields(stored):
        session, error = fields[SESSION][1:], fields[ERROR][1:]
        millis_36, _, seq_36 = fields[ID].partition("-")
        millis, bits = int(millis_36, 36), int(fields[BITS] or "0", 36)
        phase, status, action = (_PHASES.value(fields[PHASE]), _STATUSES.value(fields[STATUS]),
                                 _ACTIONS.value(fields[ACTION]))
        by = {"by": fields[BY]} if fields[BY] else {}  # auth on (docs/auth.md)
        out.append({**by,
            "id": f"{millis}-{int(seq_36 or '0', 36)}",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis / 1000)) + f".{millis % 1000:03d}Z",
            "session": session, "phase": phase, "status": status, "last_action": action,
            "last_action_failed": bool(bits & _FAILED), "error": error, "enabled": bool(bits & _ENABLED),
            "reason": _reason(bits, fields, phase, status, action, session, error)})
    return out


async def read(redis: Redis, settings: HistorySettings, component_id: str, start_after: Optional[str],
               page_size: int) -> List[Dict[str, Any]]:
    """Entries oldest first, after `start_after` (an entry id), inside the bounds: the newest
    `max_entries` (a history holds more until its next trim: module docstring), none older than
    the age bound. A history is short (trimmed past max_entries × ENTRY_BYTES), so it is read
    whole and paged here.
    """
    oldest = (settings.oldest_ms(), -1)
    after = max(oldest, _id_tuple(start_after)) if start_after is not None else oldest
    try:
        stored: Optional[bytes] = await redis.get(keys.component_history(component_id))
    except ResponseError:  # a list of an older version, replaced at the component's next change
        return []
    if not stored:
        return []
    return [e for e in decode(stored)[-settings.max_entries:] if _id_tuple(e["id"]) > after][:page_size]


def _id_tuple(entry_id: str) -> Tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return (int(ms), int(seq or 0))


SWEEP_CHUNK = 1000  # history keys per SCAN step and per script call of a sweep
# KEYS: history keys; ARGV[1]: the oldest time (ms) kept. Deletes each history whose newest entry
# (the last one: after the last GS or RS) is older:
# checked and deleted in one atomic step, so an entry appended meanwhile by the compare-and-set
# script (cas.py) is never lost. A key of another type is left alone.
_SWEEP = """
local oldest, deleted = tonumber(ARGV[1]), 0
for _, key in ipairs(KEYS) do
  local ok, stored = pcall(redis.call, 'GET', key)
  if ok and stored then
    local last, at = 1, string.find(stored, '[\\29\\30]')
    while at do
      last = at + 1
      at = string.find(stored, '[\\29\\30]', last)
    end
    local ms = tonumber(string.match(stored, '^(%w+)', last) or '', 36)
    if ms and ms < oldest then
      redis.call('DEL', key)
      deleted = deleted + 1
    end
  end
end
return deleted
"""


async def sweep(redis: Redis, settings: HistorySettings) -> int:
    """Delete every history quiet for longer than the age bound; returns how many.

    What it deletes, reads already left out (`read` shows no entry older than the
    bound, and a deleted component without one is a 404): only memory changes. A
    SCAN of the keyspace in SWEEP_CHUNK steps, hourly and in one API process at a
    time (sweep_if_due): off every request path.
    """
    script = redis.register_script(_SWEEP)
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", keys.component_history("")) + "*"
    deleted, cursor = 0, 0
    while True:
        cursor, found = await redis.scan(cursor, match=pattern, count=SWEEP_CHUNK)
        if found:
            deleted += int(await script(keys=found, args=[settings.oldest_ms()]))
        if not cursor:
            break
    if deleted:
        LOG.info("History sweep: %d quiet histories deleted", deleted)
    return deleted


async def sweep_if_due(redis: Redis, settings: HistorySettings, period: float) -> int:
    """sweep() unless another process swept within `period` seconds (also with history off: what
    an earlier run with it on wrote goes when it is quiet for the age bound)."""
    if not await redis.set(keys.HISTORY_SWEEP_LOCK, str(time.time()), nx=True, ex=max(1, int(period))):
        return 0
    return await sweep(redis, settings)
