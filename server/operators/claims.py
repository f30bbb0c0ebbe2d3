"""Coordination of operator replicas in Redis: component leases with fencing tokens and
decision records (docs/ha.md).

Every operator that reads a component to decide about it (status, the power operators,
configuration, actual-state cleanup, session setup) first claims the component's lease:
one `SET NX PX` per component, batched in one script call per chunk, all sharing a fresh
fencing token. It then re-reads the component, decides, acts and writes, and releases the
lease. A replica that holds no lease on a component neither decides nor acts on it, so two
replicas (or two operators of one replica) never act on the same component at once, and no
decision is made from a read taken before another holder's write.

A token lives while its liveness key does (one key per token, expiring after the lease
period): a lease key whose token lapsed is taken over by the next claim, and a lapsed token
claims, records and sends nothing more. The heartbeat renews each token while its holder runs
(one command per token; the lease keys only every KEEP_FACTOR / 3 lease periods), and so does
the fence check before every write request the holder sends (`fenced`), which also reads that
every lease is still the token's: a replica paused past its lease sends nothing after it
wakes. The power operators also record each decision, with the component's state version,
before their first external call; a claimant that finds such a record for
the version it just read knows a replica that stopped had already (perhaps) issued it, and
records it as issued instead of issuing it again (at most once per decision).
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
DECISION_TTL = 3600.0  # an unadopted decision record is forgotten after this (then re-decided)
SEP = "\x1f"
# Lease keys live this many lease periods, the heartbeat renewing them every third of that: what
# frees a stopped holder's components after one lease period is its token's liveness key, which
# every fence check and heartbeat renews with one command, not its lease keys (docs/ha.md §1).
KEEP_FACTOR = 6
SCRIPT_CHUNK = 2000  # keys per script call: bounds the time Redis spends in one script
# and the scripts' unpack() (Redis's Lua refuses to unpack more than ~8,000 values: release unpacks
# up to two chunks of keys at once).

# ARGV: token counter key, replica id, token ("" = take a new one), lease ms, liveness key prefix,
# lease key ms, then lease keys. Returns the token, then the 1-based positions of the keys now held
# with it. A new token's liveness key is set; a given token's is renewed, and if it lapsed the token
# is dead for good (it claims nothing more). A key held by a token without a liveness key is taken
# over, but only a token of this scheme (`:L<n>`): one of an older version's replica (a rolling
# update runs both) has no liveness key while it runs, and its lease key expires by itself instead.
_CLAIM = """
local token = ARGV[3]
local alive = ARGV[5]
if token == '' then
  token = ARGV[2] .. ':L' .. redis.call('INCR', ARGV[1])
  redis.call('SET', alive .. token, '1', 'PX', ARGV[4])
elseif redis.call('PEXPIRE', alive .. token, ARGV[4]) == 0 then
  return {token}
end
local out = {token}
local dead = {}
for i = 7, #ARGV do
  if redis.call('SET', ARGV[i], token, 'NX', 'PX', ARGV[6]) then out[#out + 1] = i - 6
  else
    local holder = redis.call('GET', ARGV[i])
    if holder == token then out[#out + 1] = i - 6
    else
      if dead[holder] == nil then
        dead[holder] = string.find(holder, ':L%d+$') ~= nil and redis.call('EXISTS', alive .. holder) == 0
      end
      if dead[holder] then
        redis.call('SET', ARGV[i], token, 'PX', ARGV[6])
        out[#out + 1] = i - 6
      end
    end
  end
end
return out
"""

# ARGV: token, its liveness key, lease ms, lease key ms ("" = the lease keys are only checked), then
# lease keys. Renews the liveness key; -1 if it lapsed (the token is dead), else how many lease keys
# this token no longer holds. The keys are read with one MGET; only the heartbeat's occasional
# renewal of the keys themselves (every KEEP_FACTOR / 3 lease periods) sends a PEXPIRE per key.
_RENEW = """
if redis.call('PEXPIRE', ARGV[2], ARGV[3]) == 0 then return -1 end
if #ARGV < 5 then return 0 end
local held = redis.call('MGET', unpack(ARGV, 5))
local lost = 0
for i = 1, #held do
  if held[i] ~= ARGV[1] then lost = lost + 1
  elseif ARGV[4] ~= '' then redis.call('PEXPIRE', ARGV[i + 4], ARGV[4]) end
end
return lost
"""

# ARGV: token, decision ttl ms, the token's liveness key, then (lease key, decision key, version)
# triples. Per triple: 0 = lease not held, or the token is dead (nothing written), 1 = decision
# recorded (issue it), 2 = another holder's record of this very version taken over (it was issued:
# adopt it).
_MARK = """
local sep = '\\31'
local out = {}
local live = redis.call('EXISTS', ARGV[3]) == 1
for i = 4, #ARGV, 3 do
  local code = 0
  if live and redis.call('GET', ARGV[i]) == ARGV[1] then
    code = 1
    local prior = redis.call('GET', ARGV[i + 1])
    if prior then
      local at = string.find(prior, sep, 1, true)
      if at and string.sub(prior, at + 1) == ARGV[i + 2] and string.sub(prior, 1, at - 1) ~= ARGV[1] then
        code = 2
      end
    end
    redis.call('SET', ARGV[i + 1], ARGV[1] .. sep .. ARGV[i + 2], 'PX', ARGV[2])
  end
  out[#out + 1] = code
end
return out
"""

# ARGV: token, number of lease keys, lease keys, then decision keys. Deletes only what this token
# holds: each group read with one MGET, what is this token's deleted with one DEL.
_RELEASE = """
local n = tonumber(ARGV[2])
local prefix = ARGV[1] .. '\\31'
local gone = {}
if n > 0 then
  local held = redis.call('MGET', unpack(ARGV, 3, 2 + n))
  for i = 1, n do
    if held[i] == ARGV[1] then gone[#gone + 1] = ARGV[2 + i] end
  end
end
if #ARGV > 2 + n then
  local decided = redis.call('MGET', unpack(ARGV, 3 + n))
  for i = 1, #decided do
    local v = decided[i]
    if v and string.sub(v, 1, #prefix) == prefix then gone[#gone + 1] = ARGV[2 + n + i] end
  end
end
if #gone > 0 then redis.call('DEL', unpack(gone)) end
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
        return [*self.others, *(keys.component_lease(i) for i in self.ids)]


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

    def __init__(self, redis: Any, lease: float = DEFAULT_LEASE, replica: Optional[str] = None,
                 decision_ttl: float = DECISION_TTL) -> None:
        self.redis = redis
        self.lease = lease
        self.replica = replica or replica_id()
        self.decision_ttl = decision_ttl
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._mark = redis.register_script(_MARK)
        self._release = redis.register_script(_RELEASE)
        self.held: Dict[str, Set[str]] = {}  # token -> lease keys, kept alive by the heartbeat
        self._kept: Dict[str, float] = {}  # token -> when its lease keys were last given KEEP_FACTOR leases

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease * 1000))

    @property
    def _keep_ms(self) -> int:
        return self._lease_ms * KEEP_FACTOR

    def _hold(self, token: str, leases: Set[str]) -> None:
        """What the heartbeat keeps alive under `token` from now on (`leases` replaces its set)."""
        if leases:
            self.held[token] = leases
            self._kept.setdefault(token, time.monotonic())
        else:
            self.held.pop(token, None)
            self._kept.pop(token, None)

    async def claim(self, ids: Sequence[str], into: Optional[Claim] = None) -> Claim:
        """Claim what is free (one script call per SCRIPT_CHUNK ids); a store error claims nothing."""
        claim = into or Claim("")
        held = set(claim.ids)
        wanted = [i for i in dict.fromkeys(ids) if i not in held]
        try:
            for start in range(0, len(wanted), SCRIPT_CHUNK):
                part = wanted[start:start + SCRIPT_CHUNK]
                out = await self._claim(args=[keys.CLAIM_TOKENS, self.replica, claim.token, self._lease_ms,
                                              keys.claim_alive(""), self._keep_ms,
                                              *(keys.component_lease(i) for i in part)])
                claim.token = _text(out[0])
                claim.ids.extend(part[int(pos) - 1] for pos in out[1:])
                metrics.leases("asked", len(part))
                metrics.leases("granted", len(out) - 1)
        except (RedisError, OSError) as exc:
            LOG.warning("Unable to claim components (nothing more claimed this pass): %s", _line(exc))
        if claim.ids:  # with what other claims of this token hold (session setup's batches in flight)
            self._hold(claim.token, self.held.get(claim.token, set()) | set(claim.lease_keys()))
        return claim

    async def claim_key(self, lease_key: str) -> Optional[Claim]:
        try:
            out = await self._claim(args=[keys.CLAIM_TOKENS, self.replica, "", self._lease_ms,
                                          keys.claim_alive(""), self._keep_ms, lease_key])
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
                args: List[Any] = [claim.token, max(1, int(self.decision_ttl * 1000)), keys.claim_alive(claim.token)]
                for cid, version in part:
                    args += [keys.component_lease(cid), keys.decision(operator, cid), version]
                codes = await self._mark(args=args)
                for (cid, _version), code in zip(part, codes):
                    if int(code) == 1:
                        marked.append(cid)
                    elif int(code) == 2:
                        adopted.append(cid)
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

    async def _renew_keys(self, token: str, leases: Sequence[str], keep: bool = False) -> int:
        """Renew `token`'s liveness key and check `leases` (with `keep`, also give them their
        KEEP_FACTOR lease periods again): -1 if the token lapsed, else how many it lost."""
        lost = 0
        head = [token, keys.claim_alive(token), self._lease_ms, self._keep_ms if keep else ""]
        try:
            for start in range(0, max(1, len(leases)), SCRIPT_CHUNK):
                found = int(await self._renew(args=[*head, *leases[start:start + SCRIPT_CHUNK]]))
                if found < 0:
                    return -1
                lost += found
        except (RedisError, OSError) as exc:
            raise FenceLost(f"unable to renew leases: {_line(exc)}") from exc
        return lost

    async def release(self, claim: Claim, operator: Optional[str] = None) -> None:
        """Free the component leases (and, after a recorded outcome, the decision records) this
        token holds; leases in `others` stay held (release_others)."""
        remaining = self.held.get(claim.token, set()) - {keys.component_lease(i) for i in claim.ids}
        # with what other claims of this token hold (its session lease, other batches)
        self._hold(claim.token, remaining | set(claim.others))
        if not claim.ids:
            return
        try:
            for start in range(0, len(claim.ids), SCRIPT_CHUNK):
                part = claim.ids[start:start + SCRIPT_CHUNK]
                decisions = [keys.decision(operator, i) for i in part] if operator else []
                await self._release(args=[claim.token, len(part), *(keys.component_lease(i) for i in part),
                                          *decisions])
                metrics.leases("released", len(part))
        except (RedisError, OSError) as exc:  # the leases expire by themselves
            LOG.warning("Unable to release %d leases (they expire within %.0fs): %s", len(claim.ids),
                        self.lease, _line(exc))

    async def release_others(self, claim: Claim) -> None:
        self._hold(claim.token, set())
        try:
            await self._release(args=[claim.token, len(claim.others), *claim.others])
        except (RedisError, OSError) as exc:
            LOG.warning("Unable to release %s (it expires within %.0fs): %s", claim.others, self.lease, _line(exc))

    async def heartbeat(self, stopping: asyncio.Event) -> None:
        """Renew every holding token's liveness key each third of the lease period while this
        process runs, and its lease keys each third of their KEEP_FACTOR periods: one command per
        token, where renewing every lease key each time was 7 to 9 renewals per node of a
        100,000-node boot (issue 13)."""
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), timeout=self.lease / 3)
                return
            except asyncio.TimeoutError:
                pass
            for token, leases in list(self.held.items()):
                if self.held.get(token) is not leases:
                    continue  # released (or re-claimed) while earlier tokens were renewed
                keep = time.monotonic() - self._kept.get(token, 0.0) >= self.lease * KEEP_FACTOR / 3
                try:
                    lost = await self._renew_keys(token, sorted(leases) if keep else [], keep)
                except FenceLost as exc:
                    LOG.warning("Lease heartbeat failed: %s", exc)
                    continue
                if keep:
                    metrics.leases("heartbeat_renewed", len(leases))
                    if token in self._kept:
                        self._kept[token] = time.monotonic()
                if lost and self.held.get(token) is leases:  # not released during its renewal
                    LOG.warning("%s leases of %s expired before their renewal", "All" if lost < 0 else lost, token)


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
