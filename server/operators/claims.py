"""Coordination of operator replicas in Redis: component leases with fencing tokens and
decision records (docs/ha.md).

Every operator that reads a component to decide about it (status, the power operators,
configuration, actual-state cleanup, session setup) first claims the component's lease:
one `SET NX PX` per component, batched in one script call per chunk, all sharing a fresh
fencing token. It then re-reads the component, decides, acts and writes, and releases the
lease. A replica that holds no lease on a component neither decides nor acts on it, so two
replicas (or two operators of one replica) never act on the same component at once, and no
decision is made from a read taken before another holder's write.

Leases are renewed by a heartbeat while their holder runs, and checked (and renewed) before
every write request the holder sends (`fenced`): a replica paused past its lease sends
nothing after it wakes. The power operators also record each decision, with the component's
state version, before their first external call; a claimant that finds such a record for
the version it just read knows a replica that stopped had already (perhaps) issued it, and
records it as issued instead of issuing it again (at most once per decision).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
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
SCRIPT_CHUNK = 2000  # keys per script call: bounds the time Redis spends in one script
# and the scripts' unpack() (Redis's Lua refuses to unpack more than ~8,000 values: release unpacks
# up to two chunks of keys at once).

# ARGV: token counter key, replica id, token ("" = take a new one), lease ms, then lease keys.
# Returns the token, then the 1-based positions of the keys now held with it.
_CLAIM = """
local token = ARGV[3]
if token == '' then token = ARGV[2] .. ':' .. redis.call('INCR', ARGV[1]) end
local out = {token}
for i = 5, #ARGV do
  if redis.call('SET', ARGV[i], token, 'NX', 'PX', ARGV[4]) then out[#out + 1] = i - 4
  elseif redis.call('GET', ARGV[i]) == token then out[#out + 1] = i - 4 end
end
return out
"""

# ARGV: token, lease ms, then lease keys. Renews the keys still held; returns how many are not.
# The keys are read with one MGET: a GET per key was a third of a renewal's Redis time, and every
# fence check and heartbeat renews every lease of its chunk.
_RENEW = """
if #ARGV < 3 then return 0 end
local held = redis.call('MGET', unpack(ARGV, 3))
local lost = 0
for i = 1, #held do
  if held[i] == ARGV[1] then redis.call('PEXPIRE', ARGV[i + 2], ARGV[2])
  else lost = lost + 1 end
end
return lost
"""

# ARGV: token, decision ttl ms, then (lease key, decision key, version) triples.
# Per triple: 0 = lease not held (nothing written), 1 = decision recorded (issue it),
# 2 = another holder's record of this very version taken over (it was issued: adopt it).
_MARK = """
local sep = '\\31'
local out = {}
for i = 3, #ARGV, 3 do
  local code = 0
  if redis.call('GET', ARGV[i]) == ARGV[1] then
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
        self.held: Dict[str, Set[str]] = {}  # token -> components, renewed by the heartbeat

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease * 1000))

    async def claim(self, ids: Sequence[str], into: Optional[Claim] = None) -> Claim:
        """Claim what is free (one script call per SCRIPT_CHUNK ids); a store error claims nothing."""
        claim = into or Claim("")
        held = set(claim.ids)
        wanted = [i for i in dict.fromkeys(ids) if i not in held]
        try:
            for start in range(0, len(wanted), SCRIPT_CHUNK):
                part = wanted[start:start + SCRIPT_CHUNK]
                out = await self._claim(args=[keys.CLAIM_TOKENS, self.replica, claim.token, self._lease_ms,
                                              *(keys.component_lease(i) for i in part)])
                claim.token = _text(out[0])
                claim.ids.extend(part[int(pos) - 1] for pos in out[1:])
                metrics.leases("asked", len(part))
                metrics.leases("granted", len(out) - 1)
        except (RedisError, OSError) as exc:
            LOG.warning("Unable to claim components (nothing more claimed this pass): %s", _line(exc))
        if claim.ids:  # with what other claims of this token hold (session setup's batches in flight)
            self.held[claim.token] = self.held.get(claim.token, set()) | set(claim.lease_keys())
        return claim

    async def claim_key(self, lease_key: str) -> Optional[Claim]:
        try:
            out = await self._claim(args=[keys.CLAIM_TOKENS, self.replica, "", self._lease_ms, lease_key])
        except (RedisError, OSError) as exc:
            LOG.warning("Unable to claim %s: %s", lease_key, _line(exc))
            return None
        if len(out) < 2:
            return None
        claim = Claim(_text(out[0]), others=[lease_key])
        self.held[claim.token] = set(claim.lease_keys())
        return claim

    async def mark(self, claim: Claim, operator: str,
                   versions: Mapping[str, str]) -> Tuple[List[str], List[str]]:
        items = list(versions.items())
        marked: List[str] = []
        adopted: List[str] = []
        try:
            for start in range(0, len(items), SCRIPT_CHUNK):
                part = items[start:start + SCRIPT_CHUNK]
                args: List[Any] = [claim.token, max(1, int(self.decision_ttl * 1000))]
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
        """Renew the claim's leases; FenceLost if any is no longer held (fail closed)."""
        leases = claim.lease_keys()
        lost = await self._renew_keys(claim.token, leases)
        metrics.leases("fence_checked", len(leases))
        if lost:
            raise FenceLost(f"{lost} of {len(leases)} leases were lost")

    async def _renew_keys(self, token: str, leases: Sequence[str]) -> int:
        lost = 0
        try:
            for start in range(0, len(leases), SCRIPT_CHUNK):
                lost += int(await self._renew(args=[token, self._lease_ms, *leases[start:start + SCRIPT_CHUNK]]))
        except (RedisError, OSError) as exc:
            raise FenceLost(f"unable to renew leases: {_line(exc)}") from exc
        return lost

    async def release(self, claim: Claim, operator: Optional[str] = None) -> None:
        """Free the component leases (and, after a recorded outcome, the decision records) this
        token holds; leases in `others` stay held (release_others)."""
        remaining = self.held.get(claim.token, set()) - {keys.component_lease(i) for i in claim.ids}
        if remaining or claim.others:  # other claims of this token (its session lease, other batches)
            self.held[claim.token] = remaining | set(claim.others)
        else:
            self.held.pop(claim.token, None)
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
        self.held.pop(claim.token, None)
        try:
            await self._release(args=[claim.token, len(claim.others), *claim.others])
        except (RedisError, OSError) as exc:
            LOG.warning("Unable to release %s (it expires within %.0fs): %s", claim.others, self.lease, _line(exc))

    async def heartbeat(self, stopping: asyncio.Event) -> None:
        """Renew every held lease each third of the lease period while this process runs."""
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), timeout=self.lease / 3)
                return
            except asyncio.TimeoutError:
                pass
            for token, leases in list(self.held.items()):
                if self.held.get(token) is not leases:
                    continue  # released (or re-claimed) while earlier tokens were renewed
                try:
                    lost = await self._renew_keys(token, sorted(leases))
                    metrics.leases("heartbeat_renewed", len(leases))
                except FenceLost as exc:
                    LOG.warning("Lease heartbeat failed: %s", exc)
                    continue
                if lost and self.held.get(token) is leases:  # not released during its renewal
                    LOG.warning("%d leases of %s expired before their renewal", lost, token)


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
