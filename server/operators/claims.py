"""Coordination of operator replicas in Redis: component leases with fencing tokens and
decision records (docs/ha.md).

Every operator that reads a component to decide about it (status, the power operators,
configuration, actual-state cleanup, session setup) first claims the component's lease:
a key per component holding the claim's fencing token, set where free in one round trip per
chunk (a transaction with an MSETNX where all are free, else a script: one MGET, one MSET), all
sharing a fresh fencing token. It then re-reads the component, decides, acts and writes, and releases the
lease. A replica that holds no lease on a component neither decides nor acts on it, so two
replicas (or two operators of one replica) never act on the same component at once, and no
decision is made from a read taken before another holder's write.

A token lives while its liveness key does (one key per token, expiring after the lease
period): a lease key whose token lapsed is taken over by the next claim, and a lapsed token
claims, records and sends nothing more. Lease keys have no expiry of their own (a claim sets a
chunk's keys with one MSET, not one SET per key): the heartbeat renews each token while its
holder runs (one command per token), and so does the fence check before every write request
the holder sends (`fenced`), which also reads that every lease is still the token's: a replica
paused past its lease sends nothing after it wakes. The power operators also record each
decision, with the component's state version, before their first external call; a claimant
that finds such a record for the version it just read knows a replica that stopped had already
(perhaps) issued it, and records it as issued instead of issuing it again (at most once per decision).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

from redis.exceptions import RedisError

from .. import metrics
from ..clients.rest import BEFORE_WRITE
from ..store import keys

LOG = logging.getLogger("bos.operators.claims")

DEFAULT_LEASE = 10.0  # seconds; a dead replica's components are free again after this
SEP = "\x1f"
SCRIPT_CHUNK = 2000  # keys per script call: bounds the time Redis spends in one script
# and the scripts' unpack() (Redis's Lua refuses to unpack more than ~8,000 values: the claim
# unpacks a key and a token per key, release up to two chunks of keys at once).
# How often the heartbeat also reads a held token's lease keys (in lease periods), to warn about
# leases lost under a running holder; the fence checks read them before every write anyway.
LOOK_EVERY = 2
TOKEN_BLOCK = 64  # token numbers a process reserves at once from the shared counter
LEASE_PREFIX = keys.component_lease("")  # a component's lease key is this and its ID (as the mark script makes it)

# ARGV: token counter key, replica id, token ("" = take a new one), lease ms, liveness key prefix,
# then lease keys. Returns the token, then the 1-based positions of the keys now held with it. A
# new token's liveness key is set; a given token's is renewed, and if it lapsed the token is dead
# for good (it claims nothing more). The keys are read with one MGET and what is taken set with
# one MSET (no expiry: what frees a stopped holder's components is its token's lapse), where a SET
# NX PX per key was a third of the claims' Redis CPU in a boot (issue 13). A free key is taken; so
# is one held by a token without a liveness key, but only a token of this scheme (`:L<n>`): one
# of an older version's replica (a rolling update runs both) has no liveness key while it runs,
# and its lease key expires by itself instead.
_CLAIM = """
local token = ARGV[3]
local alive = ARGV[5]
if token == '' then
  token = ARGV[2] .. ':L' .. redis.call('INCR', ARGV[1])
  redis.call('SET', alive .. token, '1', 'PX', ARGV[4])
elseif redis.call('PEXPIRE', alive .. token, ARGV[4]) == 0 then
  return {token}
end
local out, taken, n = {token}, {}, 0
local dead = {}
local held = redis.call('MGET', unpack(ARGV, 6))
for i = 1, #held do
  local holder = held[i]
  local take = not holder
  if holder == token then out[#out + 1] = i
  elseif holder then
    take = dead[holder]
    if take == nil then
      take = string.find(holder, ':L%d+$') ~= nil and redis.call('EXISTS', alive .. holder) == 0
      dead[holder] = take
    end
  end
  if take then
    taken[n + 1] = ARGV[i + 5]; taken[n + 2] = token
    n = n + 2
    out[#out + 1] = i
  end
end
if n > 0 then redis.call('MSET', unpack(taken)) end
return out
"""

# ARGV: token, the token's liveness key, the lease key prefix, the operator's decision key prefix,
# then per state version: the version, how many components, their IDs. Returns a code per
# component, in the order sent: 0 = lease not held, or the token is dead (nothing written), 1 =
# decision recorded (issue it), 2 = another holder's record of this very version taken over (it
# was issued: adopt it). Keys are made here from the IDs, and a chunk's components mostly share
# their version, sent once: three arguments per component (two keys and the version) were most
# of the operators' CPU in `mark` (hiredis packing them, issue 13). The leases and the records
# are read with one MGET each, and the records written with one MSET, without an expiry: a SET
# PX per record was a third of the script's Redis instructions (issue 13), and a record left behind
# (its holder stopped before its action update) is one key per component and operator, adopted
# or overwritten by the component's next decision of that operator, as a dead holder's lease key
# is taken over by the next claim.
_MARK = """
local sep = '\\31'
local token, lease_prefix, decision_prefix = ARGV[1], ARGV[3], ARGV[4]
local leases, decisions, n = {}, {}, 0
local i = 5
while i <= #ARGV do
  for j = i + 2, i + 1 + tonumber(ARGV[i + 1]) do
    n = n + 1
    leases[n] = lease_prefix .. ARGV[j]
    decisions[n] = decision_prefix .. ARGV[j]
  end
  i = i + 2 + tonumber(ARGV[i + 1])
end
local out = {}
if redis.call('EXISTS', ARGV[2]) == 0 then
  for j = 1, n do out[j] = 0 end
  return out
end
local held = redis.call('MGET', unpack(leases))
local prior = redis.call('MGET', unpack(decisions))
-- a record of this version by another token: its holder stopped after deciding
local function issued(record, version)
  local at = string.find(record, sep, 1, true)
  return at and string.sub(record, at + 1) == version and string.sub(record, 1, at - 1) ~= token
end
local records, m = {}, 0
local at = 0
i = 5
while i <= #ARGV do
  local version, count = ARGV[i], tonumber(ARGV[i + 1])
  local record = token .. sep .. version
  for _ = 1, count do
    at = at + 1
    local code = 0
    if held[at] == token then
      code = 1
      if prior[at] and issued(prior[at], version) then
        code = 2
      end
      records[m + 1] = decisions[at]; records[m + 2] = record
      m = m + 2
    end
    out[at] = code
  end
  i = i + 2 + count
end
if m > 0 then redis.call('MSET', unpack(records)) end
return out
"""

# ARGV: token, number of lease keys n, how many of them have a decision record m, the n lease
# keys (the first m those of components whose record this token wrote), then the m records' keys.
# Deletes each lease key still this token's and, with the first m, its record, with one DEL; the
# leases read with one MGET. A record is this token's while its lease is (only a holder writes
# one), so the records are not read: reading and comparing them was half of a release with
# records in Redis (issue 13).
_RELEASE = """
local token, n, m = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local gone, g = {}, 0
if n > 0 then
  local held = redis.call('MGET', unpack(ARGV, 4, 3 + n))
  for i = 1, n do
    if held[i] == token then
      g = g + 1; gone[g] = ARGV[3 + i]
      if i <= m then g = g + 1; gone[g] = ARGV[3 + n + i] end
    end
  end
end
if g > 0 then redis.call('DEL', unpack(gone)) end
return 1
"""


class FenceLost(BaseException):
    """This replica no longer holds a claim it is acting on (paused past its lease, or the
    store lost it): stop before sending anything more.

    A BaseException on purpose: the operators record ordinary exceptions of a step as the
    components' errors and carry on with the next step; this one must skip them all.
    """


@dataclass
class Claim:
    """Components (and other leases, e.g. a session's) held under one fencing token."""

    token: str
    ids: List[str] = field(default_factory=list)
    others: List[str] = field(default_factory=list)  # further lease keys checked with the components

    def lease_keys(self) -> List[str]:
        return [*self.others, *lease_keys(self.ids)]


def lease_keys(ids: Sequence[str]) -> List[str]:
    """The lease keys of components, made by joining strings: `keys.component_lease` called per ID,
    from a generator, was most of the operators' own CPU in a lease's claim, fence checks and
    release, which build them for every component of a chunk each time (issue 13)."""
    prefix = LEASE_PREFIX
    return [prefix + i for i in ids]


def replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class LocalClaims:
    """No coordination store: one process is the only replica (every claim is granted)."""

    lease = DEFAULT_LEASE

    async def claim(self, ids: Sequence[str], into: Optional[Claim] = None) -> Claim:
        claim = into or Claim("local")
        claim.ids = list(dict.fromkeys([*claim.ids, *ids]))
        return claim

    async def mark(self, claim: Claim, operator: str,
                   versions: Mapping[str, str]) -> Tuple[List[str], List[str]]:
        """(components whose decision is now recorded, components whose decision was already issued)."""
        held = set(claim.ids)
        return [i for i in versions if i in held], []

    async def claim_key(self, lease_key: str) -> Optional[Claim]:
        """Hold one lease (e.g. a session's); None if another holder has it."""
        return Claim("local", others=[lease_key])

    async def check(self, claim: Claim) -> None:
        return None

    async def release(self, claim: Claim, operator: Optional[str] = None) -> None:
        return None

    async def release_others(self, claim: Claim) -> None:
        return None

    async def heartbeat(self, stopping: asyncio.Event) -> None:
        await stopping.wait()


class RedisClaims(LocalClaims):
    """Leases and decision records in the coordination store (the API's Redis)."""

    def __init__(self, redis: Any, lease: float = DEFAULT_LEASE, replica: Optional[str] = None) -> None:
        self.redis = redis
        self.lease = lease
        self.replica = replica or replica_id()
        self._claim = redis.register_script(_CLAIM)
        self._mark = redis.register_script(_MARK)
        self._release = redis.register_script(_RELEASE)
        self.held: Dict[str, Set[str]] = {}  # token -> lease keys, kept alive by the heartbeat
        self._looked: Dict[str, float] = {}  # token -> when the heartbeat last read its lease keys
        self._numbers: List[int] = []  # token numbers reserved by this process, not used yet
        # token -> operator -> components whose decision record this token wrote, until released
        self._recorded: Dict[str, Dict[str, Set[str]]] = {}

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease * 1000))

    def _hold(self, token: str, leases: Set[str]) -> None:
        """What the heartbeat keeps alive under `token` from now on (`leases` replaces its set)."""
        if leases:
            self.held[token] = leases
            self._looked.setdefault(token, time.monotonic())
        else:
            self.held.pop(token, None)
            self._looked.pop(token, None)

    async def claim(self, ids: Sequence[str], into: Optional[Claim] = None) -> Claim:
        """Claim what is free (one round trip per SCRIPT_CHUNK ids); a store error claims nothing."""
        claim = into or Claim("")
        held = set(claim.ids)
        wanted = [i for i in dict.fromkeys(ids) if i not in held]
        try:
            for start in range(0, len(wanted), SCRIPT_CHUNK):
                part = wanted[start:start + SCRIPT_CHUNK]
                leases = lease_keys(part)
                metrics.leases("asked", len(part))
                if not claim.token and await self._claim_free(claim, leases):
                    claim.ids.extend(part)
                    metrics.leases("granted", len(part))
                    continue
                out = await self._claim(args=[keys.CLAIM_TOKENS, self.replica, claim.token, self._lease_ms,
                                              keys.claim_alive(""), *leases])
                claim.token = _text(out[0])
                claim.ids.extend(part[int(pos) - 1] for pos in out[1:])
                metrics.leases("granted", len(out) - 1)
        except (RedisError, OSError) as exc:
            LOG.warning("Unable to claim components (nothing more claimed this pass): %s", _line(exc))
        if claim.ids:  # with what other claims of this token hold (session setup's batches in flight)
            self._hold(claim.token, self.held.get(claim.token, set()) | set(claim.lease_keys()))
        return claim

    async def _claim_free(self, claim: Claim, leases: Sequence[str]) -> bool:
        """A fresh token for `claim` and, if every one of `leases` is free, all of them: one
        MULTI/EXEC of the token's liveness key and an MSETNX, no script (a chunk's components are
        mostly free, and the claim script's Lua copies of every key were 7,600 Redis instructions
        per key, issue 13). False: nothing taken (some key is held), the token is alive for the
        script to take what it can."""
        token = f"{self.replica}:L{await self._token_number()}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.claim_alive(token), "1", px=self._lease_ms)
            pipe.msetnx(dict.fromkeys(leases, token))
            _alive, taken = await pipe.execute()
        claim.token = token
        return bool(taken)

    async def _token_number(self) -> int:
        """A number never used in a token before: taken from the shared counter TOKEN_BLOCK at a
        time (one INCRBY, not an INCR per claim)."""
        if not self._numbers:
            top = int(await self.redis.incrby(keys.CLAIM_TOKENS, TOKEN_BLOCK))
            self._numbers = list(range(top, top - TOKEN_BLOCK, -1))
        return self._numbers.pop()

    async def claim_key(self, lease_key: str) -> Optional[Claim]:
        try:
            out = await self._claim(args=[keys.CLAIM_TOKENS, self.replica, "", self._lease_ms,
                                          keys.claim_alive(""), lease_key])
        except (RedisError, OSError) as exc:
            LOG.warning("Unable to claim %s: %s", lease_key, _line(exc))
            return None
        if len(out) < 2:
            return None
        claim = Claim(_text(out[0]), others=[lease_key])
        self._hold(claim.token, set(claim.lease_keys()))
        return claim

    async def mark(self, claim: Claim, operator: str,
                   versions: Mapping[str, str]) -> Tuple[List[str], List[str]]:
        items = list(versions.items())
        marked: List[str] = []
        adopted: List[str] = []
        try:
            for start in range(0, len(items), SCRIPT_CHUNK):
                part = items[start:start + SCRIPT_CHUNK]
                by_version: Dict[str, List[str]] = {}
                for cid, version in part:
                    by_version.setdefault(version, []).append(cid)
                args: List[Any] = [claim.token, keys.claim_alive(claim.token), keys.component_lease(""),
                                   keys.decision(operator, "")]
                for version, ids in by_version.items():
                    args += [version, len(ids), *ids]
                codes = await self._mark(args=args)
                code_of = dict(zip((cid for ids in by_version.values() for cid in ids), codes))
                recorded = self._recorded.setdefault(claim.token, {}).setdefault(operator, set())
                for cid, _version in part:
                    if int(code_of[cid]) == 1:
                        marked.append(cid)
                        recorded.add(cid)
                    elif int(code_of[cid]) == 2:
                        adopted.append(cid)
                        recorded.add(cid)
        except (RedisError, OSError) as exc:
            raise FenceLost(f"unable to record decisions: {_line(exc)}") from exc
        if len(marked) + len(adopted) < len(items):
            raise FenceLost(f"{len(items) - len(marked) - len(adopted)} of {len(items)} leases expired before deciding")
        return marked, adopted

    async def check(self, claim: Claim) -> None:
        """Renew the claim's token; FenceLost if it lapsed or any of its leases is no longer held
        (fail closed)."""
        leases = claim.lease_keys()
        lost = await self._renew_keys(claim.token, leases)
        metrics.leases("fence_checked", len(leases))
        if lost < 0:
            raise FenceLost(f"the claim's token {claim.token} expired ({len(leases)} leases)")
        if lost:
            raise FenceLost(f"{lost} of {len(leases)} leases were lost")

    async def _renew_keys(self, token: str, leases: Sequence[str]) -> int:
        """Renew `token`'s liveness key and check `leases`: -1 if the token lapsed, else how many
        it lost. Each chunk is one MULTI/EXEC of the PEXPIRE and a plain MGET, compared here: the
        same check at one instant as a script's, without Lua's copies of every key and value
        (the fence checks' script was 4,100 Redis instructions per lease key, issue 13)."""
        alive, mine = keys.claim_alive(token), token.encode()
        lost = 0
        try:
            if not leases:
                return 0 if await self.redis.pexpire(alive, self._lease_ms) else -1
            for start in range(0, len(leases), SCRIPT_CHUNK):
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.pexpire(alive, self._lease_ms)
                    pipe.mget(leases[start:start + SCRIPT_CHUNK])
                    renewed, held = await pipe.execute()
                if not renewed:
                    return -1
                lost += len(held) - held.count(mine) - held.count(token)  # bytes, or str if decoded
        except (RedisError, OSError) as exc:
            raise FenceLost(f"unable to renew leases: {_line(exc)}") from exc
        return lost

    async def release(self, claim: Claim, operator: Optional[str] = None) -> None:
        """Free the component leases (and, after a recorded outcome, the decision records) this
        token holds; leases in `others` stay held (release_others)."""
        leases = lease_keys(claim.ids)
        remaining = self.held.get(claim.token, set()).difference(leases)
        # with what other claims of this token hold (its session lease, other batches)
        self._hold(claim.token, remaining | set(claim.others))
        recorded = self._forget(claim, operator)
        if not claim.ids:
            return
        try:
            for start in range(0, len(claim.ids), SCRIPT_CHUNK):
                part = claim.ids[start:start + SCRIPT_CHUNK]
                first = [i for i in part if i in recorded]
                ordered = lease_keys(first + [i for i in part if i not in recorded]) if first \
                    else leases[start:start + SCRIPT_CHUNK]
                decision = keys.decision(operator or "", "")
                await self._release(args=[claim.token, len(part), len(first), *ordered,
                                          *[decision + i for i in first]])
                metrics.leases("released", len(part))
        except (RedisError, OSError) as exc:  # free once the token lapses (no longer renewed once unheld)
            LOG.warning("Unable to release %d leases (free once their token lapses): %s", len(claim.ids),
                        _line(exc))

    def _forget(self, claim: Claim, operator: Optional[str]) -> Set[str]:
        """Stop tracking the decision records of the claim's components; those of `operator`
        (given once its outcome is recorded) are returned, to be deleted with their leases."""
        by_operator = self._recorded.get(claim.token)
        if not by_operator:
            return set()
        ids = set(claim.ids)
        found = by_operator.get(operator, set()) & ids if operator else set()
        for name in list(by_operator):
            by_operator[name] -= ids
            if not by_operator[name]:
                del by_operator[name]
        if not by_operator:
            del self._recorded[claim.token]
        return found

    async def release_others(self, claim: Claim) -> None:
        self._hold(claim.token, set())
        try:
            await self._release(args=[claim.token, len(claim.others), 0, *claim.others])
        except (RedisError, OSError) as exc:
            LOG.warning("Unable to release %s (free once its token lapses): %s", claim.others, _line(exc))

    async def heartbeat(self, stopping: asyncio.Event) -> None:
        """Renew every holding token's liveness key each third of the lease period while this
        process runs: one command per token (lease keys have no expiry to renew; renewing each
        was 7 to 9 renewals per node of a 100,000-node boot, issue 13). Every LOOK_EVERY lease
        periods it also reads the token's lease keys, to warn about those lost under it."""
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), timeout=self.lease / 3)
                return
            except asyncio.TimeoutError:
                pass
            for token, leases in list(self.held.items()):
                if self.held.get(token) is not leases:
                    continue  # released (or re-claimed) while earlier tokens were renewed
                look = time.monotonic() - self._looked.get(token, 0.0) >= self.lease * LOOK_EVERY
                try:
                    lost = await self._renew_keys(token, sorted(leases) if look else [])
                except FenceLost as exc:
                    LOG.warning("Lease heartbeat failed: %s", exc)
                    continue
                if look:
                    metrics.leases("heartbeat_checked", len(leases))
                    if token in self._looked:
                        self._looked[token] = time.monotonic()
                if lost and self.held.get(token) is leases:  # not released during its renewal
                    LOG.warning("%s leases of %s were lost under their holder", "All" if lost < 0 else lost, token)


class _Fence:
    """The fence check of one claim's write requests, one check shared by the requests that ask
    for it in the same turn of the event loop.

    A chunk sends several requests at once (power-on: its action update with up to three CFS
    PATCHes of 1,000 IDs), and each checked and renewed all of the chunk's leases: two Redis
    commands per component per request, the largest share of the leases' Redis CPU (issue 13).
    A shared check is sent only after every request that shares it asked for it, so each request
    is still sent only after a check that began after it was about to be sent; a request that
    asks once the check is under way waits for a check of its own."""

    def __init__(self, claims: LocalClaims, claim: Claim) -> None:
        self.claims = claims
        self.claim = claim
        self.next: Optional["asyncio.Future[None]"] = None  # a check not yet sent: joinable

    async def guard(self) -> None:
        check = self.next
        if check is None:
            check = self.next = asyncio.ensure_future(self._check())
            check.add_done_callback(_retrieved)
        await asyncio.shield(check)  # a request cancelled meanwhile leaves the check to the others

    async def _check(self) -> None:
        await asyncio.sleep(0)  # the requests asking in this turn of the loop join
        self.next = None
        await self.claims.check(self.claim)


def _retrieved(check: "asyncio.Future[None]") -> None:
    """A check whose every request was cancelled: its outcome is nobody's (no 'never retrieved')."""
    if not check.cancelled():
        check.exception()


@contextlib.contextmanager
def fenced(claims: LocalClaims, claim: Claim) -> Iterator[None]:
    """Every write request sent inside first checks (and renews) the claim: a holder that lost
    it sends nothing more (FenceLost). Requests asking at once share a check (`_Fence`)."""
    reset = BEFORE_WRITE.set(_Fence(claims, claim).guard)
    try:
        yield
    finally:
        BEFORE_WRITE.reset(reset)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
