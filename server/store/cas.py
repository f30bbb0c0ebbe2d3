"""Atomic compare-and-set of records together with their index entries (D1, D2).

A writer reads records, computes new ones in Python, then sends every write
with the SHA-1 of the value it read. One Lua script checks each record against
its expected hash and, only if it is unchanged, stores it and moves its index
entries, all atomically. Records that changed meanwhile are reported back so
the caller recomputes just those: every update of one record is atomic with
respect to every other, and a write is never computed from a stale read.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Mapping, Optional, Sequence

from redis.asyncio import Redis

from . import keys
from .connection import RetryingRedis
from .history import HistorySettings

MISSING = ""  # expected hash of a record that does not exist
RECEIPT_SECONDS = 60  # far longer than any retry of one call (connection.RETRY_BUDGET)

# ARGV: count, then per write: key, member, expected sha1 (or ""), new value (or "" to delete),
# n_remove, remove index keys..., n_add, (add index key, score) pairs...; then n_blobs, then per
# blob: key, value; then the blob index key and the current time; then the history block
# (history.py): n_entries, max length, oldest ms kept, ttl ms, then per entry: write position
# (1-based), history key, packed payload; then the change event (channel and message, or two ""),
# published only when every write of the call applied; last the receipt key (or "").
# The receipt makes a replay (the same ARGV after a dropped connection, connection.py) return
# the outcome of the run that happened instead of applying the writes again.
_SCRIPT = """
local receipt = ARGV[#ARGV]
if receipt ~= '' then
  local done = redis.call('GET', receipt)
  if done then return cjson.decode(done) end
end
local conflicts = {}
local i = 2
for r = 1, tonumber(ARGV[1]) do
  i = i + 5 + tonumber(ARGV[i + 4])
  i = i + 1 + 2 * tonumber(ARGV[i])
end
local nblobs = tonumber(ARGV[i])
local blob_index, now = ARGV[i + 1 + 2 * nblobs], ARGV[i + 2 + 2 * nblobs]
local history_at = i + 3 + 2 * nblobs
for b = 0, nblobs - 1 do
  local bkey = ARGV[i + 1 + 2 * b]
  redis.call('SET', bkey, ARGV[i + 2 + 2 * b], 'NX')
  redis.call('ZADD', blob_index, now, bkey)
end
i = 2
for r = 1, tonumber(ARGV[1]) do
  local key, member, expected, new = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local nrem = tonumber(ARGV[i + 4])
  local rem_at = i + 5
  local nadd = tonumber(ARGV[rem_at + nrem])
  local add_at = rem_at + nrem + 1
  i = add_at + 2 * nadd
  local current = redis.call('GET', key)
  local actual = ''
  if current then actual = redis.sha1hex(current) end
  if actual ~= expected then
    conflicts[#conflicts + 1] = r
  else
    if new == '' then redis.call('DEL', key) else redis.call('SET', key, new) end
    for j = rem_at, rem_at + nrem - 1 do redis.call('ZREM', ARGV[j], member) end
    for j = add_at, add_at + 2 * nadd - 2, 2 do redis.call('ZADD', ARGV[j], ARGV[j + 1], member) end
  end
end
-- per-component history (history.py): one string per component, entries "<id>US<payload>"
-- separated by RS, id "<ms>-<seq>" in base 36, increasing per component even if the clock
-- steps back. The newest entry holds its session and error (fields 6 and 7); an older one
-- holds them only where they differ from the entry after it, so dropping the oldest entries
-- needs no rewrite. Only the last entry is parsed: an append costs the same at any length.
local nhist = tonumber(ARGV[history_at])
if nhist > 0 then
  local RS, US = '\\30', '\\31'
  local function split(s)
    local out, from = {}, 1
    while true do
      local at = string.find(s, US, from, true)
      if not at then out[#out + 1] = string.sub(s, from); return out end
      out[#out + 1] = string.sub(s, from, at - 1)
      from = at + 1
    end
  end
  local function b36(n)
    local digits, s = '0123456789abcdefghijklmnopqrstuvwxyz', ''
    repeat
      local r = n % 36
      s = string.sub(digits, r + 1, r + 1) .. s
      n = math.floor(n / 36)
    until n == 0
    return s
  end
  local refused = {}
  for _, r in ipairs(conflicts) do refused[r] = true end
  local maxlen, oldest, ttl = tonumber(ARGV[history_at + 1]), tonumber(ARGV[history_at + 2]), ARGV[history_at + 3]
  local clock = redis.call('TIME')
  local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  for h = history_at + 4, history_at + 3 * nhist + 1, 3 do
    local hkey = ARGV[h + 1]
    if not refused[tonumber(ARGV[h])] then
      local stored = redis.pcall('GET', hkey)
      if type(stored) == 'table' then  -- a list of an older version: start afresh
        redis.call('DEL', hkey)
        stored = false
      end
      local payload = ARGV[h + 2]
      local ms, seq, text = now_ms, 0, ''
      if stored then
        local tail_at = string.find(stored, RS .. '[^' .. RS .. ']*$') or 0
        local tail = split(string.sub(stored, tail_at + 1))
        local lms, lseq = string.match(tail[1], '^(%w+)-(%w+)$')
        lms = tonumber(lms, 36)
        if lms >= ms then ms, seq = lms, tonumber(lseq, 36) + 1 end
        local new = split(payload)
        for f = 6, 7 do
          if tail[f] and tail[f] == new[f - 1] then tail[f] = '' end
        end
        while tail[#tail] == '' do tail[#tail] = nil end
        text = string.sub(stored, 1, tail_at) .. table.concat(tail, US) .. RS
      end
      text = text .. b36(ms) .. '-' .. b36(seq) .. US .. payload
      local _, count = string.gsub(text, RS, '')
      local from = 1
      while count > 0 and (count >= maxlen or tonumber(string.match(text, '^(%w+)-', from), 36) < oldest) do
        from = string.find(text, RS, from, true) + 1
        count = count - 1
      end
      redis.call('SET', hkey, string.sub(text, from), 'PX', ttl)
    end
  end
end
if #conflicts == 0 and ARGV[#ARGV - 1] ~= '' then
  redis.call('PUBLISH', ARGV[#ARGV - 2], ARGV[#ARGV - 1])
end
if receipt ~= '' then
  redis.call('SET', receipt, cjson.encode(conflicts), 'EX', RECEIPT_SECONDS)
end
return conflicts
""".replace("RECEIPT_SECONDS", str(RECEIPT_SECONDS))


def digest(raw: Optional[bytes]) -> str:
    """The expected-hash of a value as read (MISSING when the record did not exist)."""
    return hashlib.sha1(raw).hexdigest() if raw is not None else MISSING


@dataclass
class Write:
    key: str
    member: str
    expected: str
    value: Optional[bytes]  # None deletes the record
    remove_from: Sequence[str] = field(default_factory=tuple)
    add_to: Sequence[str] = field(default_factory=tuple)  # lexical indexes: score 0
    scored: Mapping[str, float] = field(default_factory=dict)  # score indexes: (re)added with a score
    history: Optional[bytes] = None  # a history entry's payload (history.py)


class CasWriter:
    """Registers the script once per client and applies batches of writes."""

    def __init__(self, redis: Redis, history: Optional[HistorySettings] = None) -> None:
        self._script = redis.register_script(_SCRIPT)
        self.history = history if history is not None and history.enabled else None
        self._receipts = False
        if isinstance(redis, RetryingRedis):
            redis.mark_retry_safe(self._script.sha)
            self._receipts = True

    async def apply(self, writes: Sequence[Write], blobs: Optional[Mapping[str, bytes]] = None,
                    chunk: int = 1000, event: Optional[bytes] = None) -> List[int]:
        """Apply writes (with the blobs they reference); return positions (0-based) that conflicted.

        `event`: a change event (events.py) published by the script itself when no
        write conflicted, i.e. exactly when the result is empty: a writer saves the
        round trip of its own PUBLISH, and the event never announces a refused write.
        """
        conflicts: List[int] = []
        if not writes and not blobs:
            return conflicts
        last = max(len(writes), 1) - 1
        for start in range(0, max(len(writes), 1), chunk):
            part = writes[start:start + chunk]
            receipt = keys.cas_receipt(secrets.token_hex(12)) if self._receipts else ""
            publish = event if event is not None and not conflicts and start + chunk > last else None
            result = await self._script(args=_args(part, blobs or {}, receipt, self._history_args(part), publish))
            conflicts.extend(start + int(pos) - 1 for pos in result)
        return conflicts

    def _history_args(self, writes: Sequence[Write]) -> List[Any]:
        """The script's history block: entries of the writes that carry one (usually none)."""
        entries = [(n, w) for n, w in enumerate(writes, 1) if w.history]
        if not entries or self.history is None:
            return [0]
        args: List[Any] = [len(entries), self.history.max_entries, self.history.oldest_ms(),
                      int(self.history.max_age * 1000)]
        for n, w in entries:
            args += [n, keys.component_history(w.member), w.history]
        return args


def _args(writes: Iterable[Write], blobs: Mapping[str, bytes], receipt: str = "",
          history: Sequence[Any] = (0,), event: Optional[bytes] = None) -> List[Any]:
    args: List[Any] = [0]
    count = 0
    for w in writes:
        count += 1
        args += [w.key, w.member, w.expected, w.value if w.value is not None else b"",
                 len(w.remove_from), *w.remove_from, len(w.add_to) + len(w.scored)]
        for key in w.add_to:
            args += [key, 0]
        for key, score in w.scored.items():
            args += [key, score]
    args[0] = count
    args.append(len(blobs))
    for digest, value in blobs.items():
        args += [keys.artifacts_blob(digest), value]
    args += [keys.ARTIFACT_BLOBS, int(time.time()), *history]
    args += [keys.EVENTS_CHANNEL, event, receipt] if event else ["", "", receipt]
    return args
