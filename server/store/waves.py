"""Rolling waves: slots for a session's nodes, counted in Redis (extension `max_in_flight`).

A node of a capped session takes a slot before its first power action; it holds
the slot while it is enabled in a power phase (powering off, powering on or
booting), and frees it by reaching `configuring`, finishing, failing or being
disabled. The count comes from the component indexes, and admission is one Lua
script, so any number of operator replicas together never exceed the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from . import keys

POWER_PHASES = ("powering_on", "powering_off")
EXCEEDED = "max_failed exceeded"

# KEYS: admitted, session members, enabled, phase powering_on, phase powering_off, status failed
# ARGV: cap, failure limit (-1: none), candidate IDs...
# Returns {exceeded (0/1), candidates holding a slot (already or newly admitted)...};
# once the failure limit is exceeded no one new is admitted.
ADMIT = """
local limit = tonumber(ARGV[2])
local exceeded = 0
if limit >= 0 and redis.call('ZINTERCARD', 2, KEYS[2], KEYS[6]) > limit then exceeded = 1 end
local held = redis.call('ZINTERCARD', 4, KEYS[1], KEYS[2], KEYS[3], KEYS[4])
           + redis.call('ZINTERCARD', 4, KEYS[1], KEYS[2], KEYS[3], KEYS[5])
local free = tonumber(ARGV[1]) - held
if exceeded == 1 then free = 0 end
local out = {exceeded}
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', KEYS[1], id) then
    out[#out + 1] = id
  elseif free > 0 then
    redis.call('ZADD', KEYS[1], 0, id)
    free = free - 1
    out[#out + 1] = id
  end
end
return out
"""


@dataclass(frozen=True)
class Admission:
    """Which candidates may act now; `exceeded` means the failure limit was passed."""

    admitted: List[str]
    exceeded: bool = False


def _keys(session: str) -> List[str]:
    return [keys.wave_admitted(session), keys.by_session(session), keys.COMPONENT_ENABLED,
            keys.by_phase("powering_on"), keys.by_phase("powering_off"), keys.by_status("failed")]


def failure_limit(max_failed: Any, members: int) -> int:
    """`max_failed` as a node count (-1 when absent); "N%" is N percent of the members, rounded down."""
    if max_failed is None:
        return -1
    if isinstance(max_failed, str) and max_failed.endswith("%"):
        return int(float(max_failed[:-1]) * members // 100)
    return int(max_failed)


async def admit(redis: Any, session: str, cap: Optional[int], max_failed: Any,
                candidates: Sequence[str]) -> Admission:
    """Admit as many candidates as free slots allow (all when `cap` is None), atomically."""
    if not candidates:
        return Admission([])
    members = await redis.zcard(keys.by_session(session)) if max_failed is not None else 0
    limit = failure_limit(max_failed, members)
    slots = cap if cap is not None else len(candidates) + 2 ** 30  # no cap: only the failure limit
    result = await redis.eval(ADMIT, 6, *_keys(session), slots, limit, *sorted(candidates))
    admitted = [r.decode() if isinstance(r, bytes) else str(r) for r in result[1:]]
    return Admission(admitted, exceeded=int(result[0]) == 1)


async def in_flight(redis: Any, session: str) -> int:
    """The session's nodes holding a slot now."""
    admitted, members, enabled, on, off, _failed = _keys(session)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zintercard(4, [admitted, members, enabled, on])
        pipe.zintercard(4, [admitted, members, enabled, off])
        found = await pipe.execute()
    return sum(found)


async def waiting_count(redis: Any, session: str) -> int:
    """The session's enabled nodes in a power phase that have no slot yet."""
    admitted, members, enabled, on, off, _failed = _keys(session)
    async with redis.pipeline(transaction=False) as pipe:
        for phase in (on, off):
            pipe.zintercard(3, [members, enabled, phase])
            pipe.zintercard(4, [admitted, members, enabled, phase])
        found = await pipe.execute()
    return int((found[0] - found[1]) + (found[2] - found[3]))
