"""Session creation in one round trip (api.md §3.6.1; issue 13: `POST /v2/sessions` ≥ 1,500/s).

A create needs its template (the boot-set checks of §4.2 read it) and must not
overwrite a session of the same name (409). Read, then written, that is two
round trips to Redis per create. Instead each process keeps the templates it
read, with the stored value (or its SHA-1), and one script (below) creates the
session only if the stored template is still that value: the session is never
created from a template that changed or vanished after it was checked, as if
the template had been read in the same atomic step. When it did change the
script answers with the template as it is now, and the caller checks that one
and tries again. A template of at most INLINE_BYTES is sent whole and compared whole: Redis's
SHA-1 of it was a fourteenth of the script's instructions (callgrind), a string comparison
costs nothing; a larger one is compared by its SHA-1. The cache holds at most CACHE_BYTES of stored templates per process
(a template with a node list of 100,000 xnames is ~2 MB, and ~10 times that decoded):
one larger than that is read for every create, as before.
"""

from __future__ import annotations

import enum
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

from redis.asyncio import Redis

from . import keys
from .cas import RECEIPT_SECONDS
from .codec import dumps, loads
from .connection import ReplayableScript

Record = Dict[str, Any]
CACHE_BYTES = 1024 * 1024  # stored (JSON) size of the templates kept by one process
INLINE_BYTES = 4096  # a template up to this stored size is its own guard (sent and compared whole)

# KEYS: the template, the session, then the session's indexes. ARGV: the template's guard (the
# stored value it was checked at, or that value's SHA-1: a stored template is a JSON object, never
# 40 hex digits, so neither is mistaken for the other), the session's value, its index member, the
# change event's channel and message, and the receipt key (or ""). The receipt makes a replay
# after a dropped connection (connection.py) return the first run's outcome instead of reporting a
# conflict with itself; a run that found the template changed wrote nothing and needs none.
# Numbers are passed to redis.call as strings: Redis formats a Lua number with snprintf("%.17g"),
# a fifteenth of the script's instructions for the five of them (callgrind). SET NX is the
# existence check and the insert in one call (EXISTS then SET was two).
_SCRIPT = """
local receipt = ARGV[6]
if receipt ~= '' then
  local done = redis.call('GET', receipt)
  if done then return {done} end
end
local template = redis.call('GET', KEYS[1])
if not template then return {'changed'} end
if template ~= ARGV[1] and redis.sha1hex(template) ~= ARGV[1] then return {'changed', template} end
local outcome = 'exists'
if redis.call('SET', KEYS[2], ARGV[2], 'NX') then
  for i = 3, #KEYS do redis.call('ZADD', KEYS[i], '0', ARGV[3]) end
  if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
  outcome = 'created'
end
if receipt ~= '' then redis.call('SET', receipt, outcome, 'EX', 'RECEIPT_SECONDS') end
return {outcome}
""".replace("RECEIPT_SECONDS", str(RECEIPT_SECONDS))


class Outcome(enum.Enum):
    CREATED = "created"
    EXISTS = "exists"  # a session of that (tenant, name) exists: nothing written
    CHANGED = "changed"  # the template is not the one checked: nothing written, the cache is updated


_OUTCOMES = {o.value.encode(): o for o in Outcome}  # the script's replies, as the parser gives them


@dataclass(frozen=True)
class CheckedTemplate:
    """A template as stored, and its guard: what the create script compares the stored value with."""

    tenant: Optional[str]
    name: str
    template: Record
    guard: bytes  # the stored value (at most INLINE_BYTES), or the hex SHA-1 of a larger one
    size: int  # of the stored value


class SessionCreator:
    """This process's template cache and the create script."""

    def __init__(self, redis: Redis, cache_bytes: int = CACHE_BYTES) -> None:
        self.redis = redis
        self.cache_bytes = cache_bytes
        self.cached_bytes = 0
        self._script = ReplayableScript(redis, _SCRIPT)
        self._templates: "OrderedDict[Tuple[Optional[str], str], CheckedTemplate]" = OrderedDict()

    async def template(self, tenant: Optional[str], name: str, fresh: bool = False) -> Optional[CheckedTemplate]:
        """The template as this process last read it (`fresh`: read now); None if it does not exist."""
        cached = None if fresh else self._templates.get((tenant, name))
        if cached is not None:
            self._templates.move_to_end((tenant, name))
            return cached
        return self._remember(tenant, name, await self.redis.get(keys.template(tenant, name)))

    async def create(self, record: Record, indexes: Set[str], checked: CheckedTemplate,
                     event: Optional[bytes] = None, stored: Optional[bytes] = None) -> Outcome:
        """Insert `record` unless its (tenant, name) exists, only if `checked` is still the stored template;
        publish `event` when inserted. `stored`: the record already encoded (the API answers with the
        same bytes, encoded once)."""
        tenant, name = record.get("tenant"), record["name"]
        receipt = self._script.receipt()
        reply: List[Any] = await self._script(
            keys=[keys.template(checked.tenant, checked.name), keys.session(tenant, name), *sorted(indexes)],
            args=[checked.guard, stored or dumps(record), keys.scoped_member(tenant, name), keys.EVENTS_CHANNEL,
                  event or b"", receipt])
        outcome = _OUTCOMES[reply[0]]
        if outcome is Outcome.CHANGED:
            self._remember(checked.tenant, checked.name, reply[1] if len(reply) > 1 else None)
        return outcome

    def _remember(self, tenant: Optional[str], name: str, raw: Optional[bytes]) -> Optional[CheckedTemplate]:
        """The template read as `raw` (None: it does not exist), kept unless it is larger than the cache."""
        key = (tenant, name)
        self._forget(key)
        if raw is None:
            return None
        guard = raw if len(raw) <= INLINE_BYTES else hashlib.sha1(raw).hexdigest().encode()
        checked = CheckedTemplate(tenant, name, loads(raw), guard, len(raw))
        if checked.size <= self.cache_bytes:
            self._templates[key] = checked
            self.cached_bytes += checked.size
            while self.cached_bytes > self.cache_bytes:
                self._forget(next(iter(self._templates)))  # the least recently read
        return checked

    def _forget(self, key: Tuple[Optional[str], str]) -> None:
        dropped = self._templates.pop(key, None)
        if dropped is not None:
            self.cached_bytes -= dropped.size
