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
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import orjson
from redis.asyncio import Redis

from . import keys
from .connection import ReplayableScript
from .history import ENTRY_BYTES, HistorySettings

MISSING = ""  # expected hash of a record that does not exist
RECEIPT_SECONDS = 60  # far longer than any retry of one call (connection.RETRY_BUDGET)
# The write feed's entries are kept at least this long. Its reader looks every few seconds, and a longer
# gap costs it one full pass, never correctness; 60 s of a 20k boot's writes held 126 B per component.
FEED_SECONDS = 10

# ARGV: count; the index table (n, then n index keys); the shape table (n, then n value tails);
# the template table (n, then four arguments per template: the last four of a write, below);
# per write six arguments: key, member, expected sha1 (or "" when absent; or "#n": the value read
# was `{"id":"<member>"` followed by shape n; or a JSON object: the value read itself), new value
# (or "" to delete; or "#n": `{"id":"<member>"` followed by shape n), index moves, history payload (or ""); or three: key, member, "@n", the
# other four being template n's. Shapes are for records written alike (store/alike.py): a bulk
# write sends each distinct tail once, not ~600 bytes per record, and neither side hashes a value
# read that is a shape (the script compares the strings instead); the records of a shape share
# their expected value, moves and history payload too, sent once as a template: packing the
# arguments was a twentieth of a seed's API CPU, and the script reads half as many; then
# n_blobs, then per blob: key, value; then the blob index key and the current time; then the write
# feed's key (or "") and its entry if every write applies (the members as a JSON array, or "");
# then the history settings (history.py): max length, oldest ms kept, key prefix, the clock's key and the
# length (bytes) past which a history is trimmed; then the change
# event (channel and message, or two ""), published only when every write of the call applied;
# last the receipt key (or "").
# Index moves are one string of space-separated words, each naming an index by its position in
# the table: "-3" removes the member from index 3, "2" adds it with score 0, "4=1733000000.0" adds
# it with that score. Six arguments per record instead of one per index key and score: packing
# and sending the arguments was a sixth of the API's CPU on bulk writes (issue 13).
# Every record is read with one MGET and the applied writes go out as one MSET, DEL, ZREM or ZADD
# per index (distinct records commute); a key written twice in one call is read back after the
# pending writes are flushed, so the second write is checked against the first, as if sequential.
# The write feed (a stream, keys.COMPONENT_WRITES) lists the member of every write the call applied
# (set or delete; a conflict is not), in entries XADDed by this script, so atomically with the writes:
# each applied write is in exactly one entry (a member written twice may be listed twice), and entries
# are only ever trimmed from the head, those older than FEED_SECONDS. An entry is one field, "i": the
# members as a JSON array (an ID is any string: no separator would do; each member a field of its own
# cost XADD ~2,000 instructions per member). The caller sends that array made for the case where every
# write applies (the usual one): the script XADDs it as is, and encodes its own list only after a
# conflict (cjson.encode of a call's members was a fiftieth of Redis's CPU on a seed: callgrind).
# A reader (the status operator) reads what was written since its last look instead of every record;
# a replayed call writes nothing.
# The receipt makes a replay (the same ARGV after a dropped connection, connection.py) return
# the outcome of the run that happened instead of applying the writes again.
_SCRIPT = """
-- locals: a global look-up (and a field's) per use was a twentieth of the script's work on a bulk write
local ARGV, tonumber = ARGV, tonumber
local find, sub, byte, match = string.find, string.sub, string.byte, string.match
local receipt = ARGV[#ARGV]
if receipt ~= '' then
  local done = redis.call('GET', receipt)
  if done then return cjson.decode(done) end
end
local SLICE = 4000  -- arguments per batched command (Lua's stack holds 8,000)
local function batched(command, list, key)
  local n = #list
  if n == 0 then return {} end
  if n <= SLICE then  -- one command: its reply as it is (copying it cost an ipairs step and a # per element)
    if key then return redis.call(command, key, unpack(list, 1, n)) end
    return redis.call(command, unpack(list, 1, n))
  end
  local out, nout = {}, 0
  for from = 1, n, SLICE do
    local last = math.min(from + SLICE - 1, n)
    local part
    if key then part = redis.call(command, key, unpack(list, from, last))
    else part = redis.call(command, unpack(list, from, last)) end
    if type(part) == 'table' then
      for v = 1, #part do out[nout + v] = part[v] end
      nout = nout + #part
    end
  end
  return out
end
local count, nidx = tonumber(ARGV[1]), tonumber(ARGV[2])
local shapes = 3 + nidx  -- ARGV[shapes]: how many shapes; shape n is ARGV[shapes + n]
local templates = shapes + 1 + tonumber(ARGV[shapes])  -- template n: ARGV[templates + 4n - 3 .. templates + 4n]
local first = templates + 1 + 4 * tonumber(ARGV[templates])
-- The first byte of an argument that may be a reference ('@n': 64, '#n': 35; 0 for ""), by a table
-- look-up: a call's references are few and repeat, and a string.byte call per argument was a
-- fiftieth of a bulk write's Redis CPU (callgrind). Long strings (hashes, values) are not kept.
local ref_of = {}
local function ref(s)
  local found = byte(s, 1) or 0
  if #s < 16 then ref_of[s] = found end
  return found
end
local record_at, record_keys = {}, {}  -- where each write's arguments begin; its key
local i = first
for r = 1, count do
  record_at[r] = i
  record_keys[r] = ARGV[i]
  if (ref_of[ARGV[i + 2]] or ref(ARGV[i + 2])) == 64 then i = i + 3 else i = i + 6 end  -- '@': a template's write
end
local nblobs = tonumber(ARGV[i])
local blob_index, now = ARGV[i + 1 + 2 * nblobs], ARGV[i + 2 + 2 * nblobs]
local feed, feed_entry = ARGV[i + 3 + 2 * nblobs], ARGV[i + 4 + 2 * nblobs]
local history_at = i + 5 + 2 * nblobs
for b = 0, nblobs - 1 do
  local bkey = ARGV[i + 1 + 2 * b]
  redis.call('SET', bkey, ARGV[i + 2 + 2 * b], 'NX')
  redis.call('ZADD', blob_index, now, bkey)
end
local current = batched('MGET', record_keys)
local conflicts, with_history, payloads, nhistory = {}, {}, {}, 0
local sets, nsets, dels, movers, written = {}, 0, {}, {}, {}  -- nsets: #sets, counted
local fed, nfed, feeding = {}, 0, feed ~= ''  -- the members of the applied writes, for the feed
local clock_ms  -- Redis' clock in ms, read once (feed and history)
local function now_in_ms()
  if not clock_ms then
    local clock = redis.call('TIME')
    clock_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  end
  return clock_ms
end
local moves_of  -- below
local twice = false  -- a key was written twice: its history is appended to twice (ids below)
-- Index moves are gathered per distinct moves string (the records of a bulk write move alike: a
-- seed's records each join the same four indexes) and spread over the indexes here, one tight
-- loop per index and string instead of four table look-ups per record and index.
local function index_lists()
  local rems, adds = {}, {}
  for moves, members in pairs(movers) do
    for _, op in ipairs(moves_of(moves)) do
      local n, score = op[1], op[2]
      if score == nil then  -- leaves index n
        local list = rems[n] or {}
        rems[n] = list
        local k = #list
        for m = 1, members.n do list[k + m] = members[m] end
      else  -- joins index n with that score
        local list = adds[n] or {}
        adds[n] = list
        local k = #list
        for m = 1, members.n do list[k + 1] = score; list[k + 2] = members[m]; k = k + 2 end
      end
    end
  end
  return rems, adds
end
local function flush()
  if nsets > 0 then batched('MSET', sets); sets, nsets = {}, 0 end
  if #dels > 0 then batched('DEL', dels); dels = {} end
  local rems, adds = index_lists()
  for n, members in pairs(rems) do batched('ZREM', members, ARGV[2 + n]) end
  for n, pairs_ in pairs(adds) do batched('ZADD', pairs_, ARGV[2 + n]) end
  movers = {}  -- `written` stays: a key written before a flush is read again at its next write (GET below)
end
-- value == head .. shape (head: '{"id":"<member>"'), compared in place: making that ~700-byte string
-- per record to compare it was a twentieth of the script's time on a bulk write (Redis' Lua hashes
-- every byte of a string it makes)
local function is_shaped(value, head, shape)
  local at = #head + 1  -- where the shape begins
  return #value == #head + #shape and find(value, shape, at, true) == at and find(value, head, 1, true) == 1
end
local shape_of = {}  -- '#n' -> shape n, looked up once per call (a bulk write's records share a few)
local function shaped(ref)
  local found = shape_of[ref]
  if not found then
    found = ARGV[shapes + tonumber(sub(ref, 2))]
    shape_of[ref] = found
  end
  return found
end
local parsed = {}
function moves_of(moves)  -- a write's index moves as {index, score or nil}, parsed once per distinct string
  local ops = parsed[moves]
  if ops then return ops end
  ops = {}
  for word in string.gmatch(moves, '%S+') do
    if byte(word, 1) == 45 then  -- '-': leaves that index
      ops[#ops + 1] = {tonumber(sub(word, 2))}
    else
      local eq = find(word, '=', 1, true)
      local n, score = word, '0'
      if eq then n, score = sub(word, 1, eq - 1), sub(word, eq + 1) end
      ops[#ops + 1] = {tonumber(n), score}
    end
  end
  parsed[moves] = ops
  return ops
end
local template_at = {}  -- '@n' -> where template n's arguments begin, looked up once per call
for r = 1, count do
  local at = record_at[r]
  local key, member, expected = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local new, moves, payload
  if (ref_of[expected] or ref(expected)) == 64 then
    local t = template_at[expected]
    if not t then
      t = templates + 4 * tonumber(sub(expected, 2)) - 3
      template_at[expected] = t
    end
    expected, new, moves, payload = ARGV[t], ARGV[t + 1], ARGV[t + 2], ARGV[t + 3]
  else
    new, moves, payload = ARGV[at + 3], ARGV[at + 4], ARGV[at + 5]
  end
  local value = current[r]
  if written[key] then  -- written earlier in this call: read it as it is now
    twice = true
    flush()
    value = redis.call('GET', key)
  end
  local actual, head = '', nil  -- head: '{"id":"<member>"', made once for the compare and the new value
  local kind = ref_of[expected] or ref(expected)
  if kind == 35 then  -- '#': the value read was '{"id":"<member>"' .. shape n
    head = '{"id":"' .. member .. '"'
    if value and is_shaped(value, head, shape_of[expected] or shaped(expected)) then
      actual = expected
    end
  elseif kind == 123 then  -- '{': the value read itself (strings are interned: one comparison)
    if value == expected then actual = expected end
  elseif value then actual = redis.sha1hex(value) end
  if actual ~= expected then
    conflicts[#conflicts + 1] = r
  else
    written[key] = true
    if feeding then nfed = nfed + 1; fed[nfed] = member end
    if new == '' then dels[#dels + 1] = key
    else
      if (ref_of[new] or ref(new)) == 35 then  -- '#': a shape
        if head then new = head .. (shape_of[new] or shaped(new))
        else new = '{"id":"' .. member .. '"' .. (shape_of[new] or shaped(new)) end  -- one string made, not two
      end
      sets[nsets + 1] = key; sets[nsets + 2] = new
      nsets = nsets + 2
    end
    if moves ~= '' then
      local group = movers[moves]
      if not group then group = {n = 0}; movers[moves] = group end
      local n = group.n + 1  -- counted: a # per record is a search of the array
      group[n] = member; group.n = n
    end
    if payload ~= '' then
      nhistory = nhistory + 1
      with_history[nhistory] = r
      payloads[nhistory] = payload
    end
  end
end
flush()
if nfed > 0 then
  if #conflicts > 0 or feed_entry == '' then feed_entry = cjson.encode(fed) end  -- else: every member, as sent
  redis.call('XADD', feed, 'MINID', '~', now_in_ms() - FEED_SECONDS * 1000, '*', 'i', feed_entry)
end
-- per-component history (history.py): one string per component, entries "<id>US<payload>" each
-- after the first begun by GS, id "<ms>-<seq>" in base 36, "<ms>" after the first entry when seq
-- is 0 (2 bytes an entry; the previous version's script reads "<ms>-<seq>" at the start of a
-- text: docs/deploy.md). An entry is added at the end of the text read, which is not parsed (splitting it and
-- rebuilding its last entry cost a quarter of Redis' work per record of a bulk write over
-- histories of ~7 entries, callgrind; APPEND would not even read it, but leaves each string up
-- to twice its length allocated, +195 B per 8-entry history). So:
-- - ids come from one clock per Redis (clock_key: the last id given), not from each history's
--   last entry: they increase per component, also when Redis' clock steps back;
-- - an entry holds its session and error (fields 6 and 7) only where they differ from the entry
--   before it (the payload's bits say which changed: the record before the write is the one the
--   entry before describes); the first entry of a history holds both;
-- - the bounds are kept by a trim once a text outgrows `cap` bytes (max entries x
--   history.ENTRY_BYTES): the newest max entries inside the age bound are kept, the first
--   holding its session and error. Reads show at most max entries (history.read).
-- A text of an older version (entries separated by RS, each holding its session and error where
-- they differ from the entry after it) is read before the appended ones, and trimmed the same way;
-- a history's first entry, which holds both, reads the same either way (no GS before it: a byte).
if nhistory > 0 then
  local RS, US, GS = '\\30', '\\31', '\\29'
  local function split(s)
    local out, from = {}, 1
    while true do
      local at = find(s, US, from, true)
      if not at then out[#out + 1] = sub(s, from); return out end
      out[#out + 1] = sub(s, from, at - 1)
      from = at + 1
    end
  end
  local function b36(n)
    local digits, s = '0123456789abcdefghijklmnopqrstuvwxyz', ''
    repeat
      local r = n % 36
      s = sub(digits, r + 1, r + 1) .. s
      n = math.floor(n / 36)
    until n == 0
    return s
  end
  local maxlen, oldest, prefix = tonumber(ARGV[history_at]), tonumber(ARGV[history_at + 1]), ARGV[history_at + 2]
  local clock_key, cap = ARGV[history_at + 3], tonumber(ARGV[history_at + 4])
  -- this call's id: (ms, seq) past the clock's last; a key written twice gets seq + 1, ...
  local ms, seq, reserve = now_in_ms(), 0, twice and nhistory - 1 or 0
  local last = redis.call('SET', clock_key, ms .. ' ' .. reserve, 'GET')
  if last then
    local lms, lseq = match(last, '^(%d+) (%d+)$')
    lms, lseq = tonumber(lms), tonumber(lseq)
    if lms and lms >= ms then
      ms, seq = lms, lseq + 1
      redis.call('SET', clock_key, ms .. ' ' .. (seq + reserve))
    end
  end
  -- the payload as appended: session and error blanked where unchanged (bits 5 and 4) unless
  -- created (bit 14); once per distinct payload (a bulk write's records share a few)
  local delta_of = {}
  local function delta(payload)
    local found = delta_of[payload]
    if found then return found end
    found = payload
    local bits = tonumber(match(payload, '^(%w+)') or '', 36)
    if bits and bits % 32768 < 16384 then
      local f = split(payload)  -- fields after the id: f[5] session, f[6] error
      if math.floor(bits / 32) % 2 == 0 and f[5] then f[5] = '' end
      if math.floor(bits / 16) % 2 == 0 and f[6] then f[6] = '' end
      while #f > 1 and f[#f] == '' do f[#f] = nil end
      found = table.concat(f, US)
    end
    delta_of[payload] = found
    return found
  end
  -- A text's entries as field lists, oldest first, each holding its session and error.
  local function entries_of(stored)
    local list, n = {}, 0
    local function add_all(text)  -- entries separated by RS
      local from = 1
      repeat
        local at = find(text, RS, from, true)
        local f = split(sub(text, from, (at or #text + 1) - 1))
        for k = #f + 1, 7 do f[k] = '' end
        n = n + 1; list[n] = f
        from = (at or #text) + 1
      until not at
    end
    local gs = find(stored, GS, 1, true)
    if gs ~= 1 then add_all(sub(stored, 1, (gs or #stored + 1) - 1)) end
    local s, e = '=', '='
    for k = n, 1, -1 do  -- an older version's: blank is as the entry after
      local f = list[k]
      if f[6] == '' then f[6] = s else s = f[6] end
      if f[7] == '' then f[7] = e else e = f[7] end
    end
    local older = n
    if n > 0 then s, e = list[n][6], list[n][7] end
    while gs do  -- RS within: added by an older version during a rolling update (docs/deploy.md)
      local at = find(stored, GS, gs + 1, true)
      add_all(sub(stored, gs + 1, (at or #stored + 1) - 1))
      gs = at
    end
    for k = older + 1, n do  -- appended: blank is as the entry before
      local f = list[k]
      if f[6] == '' then f[6] = s else s = f[6] end
      if f[7] == '' then f[7] = e else e = f[7] end
    end
    return list, n
  end
  local function trimmed(stored)
    local list, n = entries_of(stored)
    local first = math.max(1, n - maxlen + 1)
    while first < n and (tonumber(match(list[first][1], '^(%w+)') or '', 36) or 0) < oldest do
      first = first + 1
    end
    local out, s, e = {}, nil, nil
    if not find(list[first][1], '-', 1, true) then list[first][1] = list[first][1] .. '-0' end
    for k = first, n do
      local f = list[k]
      local fs, fe = f[6], f[7]
      if fs == s then f[6] = '' end
      if fe == e then f[7] = '' end
      s, e = fs, fe
      while #f > 1 and f[#f] == '' do f[#f] = nil end
      out[#out + 1] = table.concat(f, US)
    end
    return table.concat(out, GS)
  end
  local history_keys = {}
  for h = 1, nhistory do history_keys[h] = prefix .. ARGV[record_at[with_history[h]] + 1] end  -- ipairs: a C call a step
  -- MGET reads a list left by an older version as nil: the MSET below replaces it
  local stored_all, texts, ntexts = batched('MGET', history_keys), {}, 0  -- key, text, ...: one MSET
  local function id_of(n) return n == 0 and b36(ms) or b36(ms) .. '-' .. b36(n) end
  local id, latest, counts = id_of(seq), twice and {} or nil, {}  -- latest: a key's text so far
  -- entry -> text read -> new text: the records of a bulk write with equal histories, written
  -- alike before, share one string (Redis' Lua hashes every byte of a string it makes)
  local appended_to = {}
  for h = 1, nhistory do
    local hkey, payload = history_keys[h], payloads[h]
    local stored = latest and latest[hkey] or stored_all[h]
    local eid = id
    if latest then  -- a key written twice: each entry its own id
      local k = counts[hkey] or 0
      counts[hkey] = k + 1
      eid = id_of(seq + k)
    end
    local text
    if not stored then  -- a new history: its first entry holds every value, its id "<ms>-<seq>"
      if eid == id and seq == 0 then eid = eid .. '-0' end
      text = eid .. US .. payload
    else
      local small = delta_of[payload] or delta(payload)
      if eid ~= id then
        text = stored .. GS .. eid .. US .. small
        if #text > cap then text = trimmed(text) end
      else
        local made = appended_to[small]  -- [0]: the entry; [text read]: the new text
        if not made then made = {[0] = GS .. id .. US .. small}; appended_to[small] = made end
        text = made[stored]
        if not text then
          text = stored .. made[0]
          if #text > cap then text = trimmed(text) end
          made[stored] = text
        end
      end
    end
    if latest then latest[hkey] = text end
    texts[ntexts + 1] = hkey; texts[ntexts + 2] = text
    ntexts = ntexts + 2
  end
  batched('MSET', texts)
end
if #conflicts == 0 and ARGV[#ARGV - 1] ~= '' then
  redis.call('PUBLISH', ARGV[#ARGV - 2], ARGV[#ARGV - 1])
end
if receipt ~= '' then
  redis.call('SET', receipt, cjson.encode(conflicts), 'EX', RECEIPT_SECONDS)
end
return conflicts
""".replace("RECEIPT_SECONDS", str(RECEIPT_SECONDS)).replace("FEED_SECONDS", str(FEED_SECONDS))


class Digest(str):
    """digest()'s answer, keeping the value read: a JSON object read is sent to the script as it is
    and compared with the value the script reads (both strings interned in Redis' Lua: one pointer
    comparison), not hashed there: Redis' SHA-1 of a ~600-byte record was ~12,500 instructions, a
    seventh of Redis' work per record of a bulk write of records each distinct (callgrind)."""

    raw: bytes


OBJECT_READ = "{"  # a Digest's text for a JSON object read: never sent, never a stored value's SHA-1 (below)


def digest(raw: Optional[bytes]) -> str:
    """The expected-hash of a value as read (MISSING when the record did not exist).

    A JSON object read is sent to the script as it is (_args), so it is not hashed here: its SHA-1
    was ~11k instructions per record computed in full (every node report; a bulk write's records
    of distinct stored values), for nothing (issue 13).
    Its text is then OBJECT_READ; sent in place of the value, the script would compare it with the
    stored object and refuse the write: a conflict, never a lost update."""
    if raw is None:
        return MISSING
    found = Digest(OBJECT_READ if raw[:1] == b"{" else hashlib.sha1(raw).hexdigest())
    found.raw = raw
    return found


class Shaped(NamedTuple):
    """A value `{"id":"<member>"` + `rest` (member an ID that JSON shows as it is): the script
    makes it, and a call sends each distinct `rest` once (records written alike, store/alike.py).
    As a write's `expected`: the value it read was that (compared as a string, not hashed)."""

    rest: bytes


@dataclass(slots=True)
class Write:
    """One record's write. Slotted: a bulk write makes one per record, and a slotted instance is made in
    0.4 instead of 1.1 us (no __dict__), ~3 % of a seed PUT's API CPU (issue 13)."""

    key: str
    member: str
    expected: Union[str, Shaped]
    value: Union[bytes, Shaped, None]  # None deletes the record
    remove_from: Sequence[str] = field(default_factory=tuple)
    add_to: Sequence[str] = field(default_factory=tuple)  # lexical indexes: score 0
    scored: Mapping[str, float] = field(default_factory=dict)  # score indexes: (re)added with a score
    history: Optional[bytes] = None  # a history entry's payload (history.py)


class CasWriter:
    """Registers the script once per client and applies batches of writes."""

    def __init__(self, redis: Redis, history: Optional[HistorySettings] = None, feed: str = "") -> None:
        """`feed`: the stream that lists every applied write's member (keys.COMPONENT_WRITES; "": none)."""
        self._script = ReplayableScript(redis, _SCRIPT)
        self.history = history if history is not None and history.enabled else None
        self.feed = feed

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
            receipt = self._script.receipt()
            publish = event if event is not None and not conflicts and start + chunk > last else None
            result = await self._script(args=_args(part, blobs or {}, receipt, self.history, publish, self.feed))
            conflicts.extend(start + int(pos) - 1 for pos in result)
        return conflicts


def _feed_entry(writes: Sequence[Write]) -> bytes:
    """The write feed's entry if every write applies: the members in order, a JSON array (b"": the
    script encodes its own; a member JSON cannot encode, e.g. a lone surrogate, never reaches Redis)."""
    try:
        return orjson.dumps([w.member for w in writes])
    except TypeError:
        return b""


def _moves(w: Write, table: Dict[str, int]) -> str:
    """A write's index moves as words (layout above `_SCRIPT`), adding the indexes it names to `table`."""
    words = [f"-{table.setdefault(key, len(table) + 1)}" for key in w.remove_from]
    words += [str(table.setdefault(key, len(table) + 1)) for key in w.add_to]
    words += [f"{table.setdefault(key, len(table) + 1)}={score!r}" for key, score in w.scored.items()]
    return " ".join(words)


def _args(writes: Sequence[Write], blobs: Mapping[str, bytes], receipt: str = "",
          history: Optional[HistorySettings] = None, event: Optional[bytes] = None, feed: str = "") -> List[Any]:
    """The script's arguments (layout above `_SCRIPT`); history entries only when `history` is on."""
    table: Dict[str, int] = {}  # index key -> its position in the index table (1-based)
    made: Dict[Tuple[Any, ...], str] = {}  # moves -> their words: the records of a bulk write move alike
    alike: Dict[Tuple[int, int, int], str] = {}  # the same, by the objects' identities (alive till the end)
    shapes: Dict[bytes, str] = {}  # a Shaped value's rest -> its reference ("#n")
    templates: Dict[Tuple[Any, ...], str] = {}  # a shaped write's last four arguments -> their reference ("@n")
    # The same, by the identities of the objects they are made from (alive till the end): the records of a
    # shape share them (alike.py), and the reference is found with one look-up instead of making the four
    body: List[Any] = []
    taken: Dict[Tuple[int, ...], str] = {}
    for w in writes:
        if type(w.value) is Shaped:
            same_shape = (id(w.value), id(w.expected), id(w.remove_from), id(w.add_to), id(w.scored), id(w.history))
            ref = taken.get(same_shape)
            if ref is not None:
                body += [w.key, w.member, ref]
                continue
        moves = ""
        if w.remove_from or w.add_to or w.scored:
            same = (id(w.remove_from), id(w.add_to), id(w.scored))  # records written alike share them (alike.py)
            moves = alike.get(same, "")
            if not moves:
                found = (w.remove_from, w.add_to, tuple(w.scored.items()))
                moves = made.get(found, "")
                if not moves:
                    moves = made[found] = _moves(w, table)
                alike[same] = moves
        value: Union[bytes, Shaped, str, None] = w.value
        expected: Union[bytes, Shaped, str, None] = w.expected
        if type(expected) is Digest and expected.raw[:1] == b"{":  # a JSON object: sent as read (Digest)
            expected = expected.raw
        elif type(expected) is Shaped:
            expected = shapes.get(expected.rest) or shapes.setdefault(expected.rest, f"#{len(shapes) + 1}")
        payload = (w.history or b"") if history is not None else b""
        if type(value) is Shaped:  # written alike (store/alike.py): the others of its shape share the rest
            value = shapes.get(value.rest) or shapes.setdefault(value.rest, f"#{len(shapes) + 1}")
            last = (expected, value, moves, payload)
            ref = taken[same_shape] = templates.get(last) or templates.setdefault(last, f"@{len(templates) + 1}")
            body += [w.key, w.member, ref]
        else:
            body += [w.key, w.member, expected, value if value is not None else b"", moves, payload]
    args: List[Any] = [len(writes), len(table), *table, len(shapes), *shapes, len(templates),
                       *[field for fields in templates for field in fields], *body, len(blobs)]
    for digest, value in blobs.items():
        args += [keys.artifacts_blob(digest), value]
    args += [keys.ARTIFACT_BLOBS, int(time.time()), feed, _feed_entry(writes) if feed else b""]
    if history is not None:
        args += [history.max_entries, history.oldest_ms(), keys.component_history(""), keys.HISTORY_CLOCK,
                 history.max_entries * ENTRY_BYTES]
    else:
        args += [0, 0, "", "", 0]
    args += [keys.EVENTS_CHANNEL, event, receipt] if event else ["", "", receipt]
    return args
