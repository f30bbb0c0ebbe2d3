"""Status operator (operators.md §3): observe PCS and CFS, move every enabled component
to its next phase by the decision table in `status_rules`.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AbstractSet, Any, Coroutine, Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, Tuple

from bos_shared.times import epoch

from .. import metrics
from ..store import keys
from ..store.acting import acting
from ..store.component_query import enabled_among, enabled_page
from .claims import Claim, FenceLost, fenced
from .framework import ACTED, Component, Operator, PassContext, chunks, concurrently, in_flight, one_line
from .power_off_forceful import CALLED_STATUSES
from .status_rules import Decision, decide, build_patch

if TYPE_CHECKING:
    from .framework import ComponentOperator

# Up to this many components looked at, CFS is asked by ID (<= 200 per GET) instead of
# listing all of CFS (D26): a pass then costs O(work), not O(cluster).
CFS_BY_ID_MAX = 1000
# ... and so is a pass that looks at no more than this share of all components (CFS lists the whole
# cluster, however few are enabled: while session setup enables a 100,000-node session batch by
# batch, and as a session's last nodes finish, a listing per pass cost O(cluster) for a few).
CFS_BY_ID_SHARE = 5
CFS_FIELDS = ("desired_config", "configuration_status")  # what the decision table reads (status_rules)
# After a pass that moved components on, the next look comes this soon (bounded by the re-check
# interval); each pass that moves nothing doubles the wait up to the re-check interval.
RECHECK_AFTER_PROGRESS = 0.2
# ... and while components are in transition (waiting for PCS or CFS), the wait backs off no
# further than this: their looks are two by-ID questions (`_changed`), and the last node of a
# session was noticed up to a whole re-check interval late.
RECHECK_IN_TRANSITION = 0.5
# ... and not at all while at most this many are (a session's last nodes): such a look is a few
# milliseconds, and the last node configured waited up to RECHECK_IN_TRANSITION to be noticed.
FEW_IN_TRANSITION = 200
# ... and no further than this many times the last look took (at least RECHECK_AFTER_PROGRESS):
# a look at 10,000 nodes powering off is ~0.05 s of by-ID questions, and at 0.5 s a node that
# went off waited up to that long for its `On` (a reboot's off -> On lag; issue 13, realistic
# latencies). Looks so take no more than a fifth of the time.
LOOK_SHARE = 4
# ... and after a pass that moved components on and left some, but no more than FEW_IN_TRANSITION,
# in transition (a session's last nodes: the last soft-offs of a reboot, the last CFS sessions), this
# soon: the last of them waited up to RECHECK_AFTER_PROGRESS to be noticed (issue 13, realistic
# latencies). A pass that moves nothing doubles the wait from there: a node that does not move is
# never asked about more often than every RECHECK_AFTER_PROGRESS (but once, right after others moved).
RECHECK_AFTER_LAST_MOVED = 0.1
LOOK_EARLY = 0.05  # a pass this close to the next look's time asks (it was scheduled for it)
PAGES_IN_FLIGHT = 2
# The power operator whose work a rule's write makes a component (operators.md §1.2):
# `power_on_pending` after S2b, `power_off_pending` after S3 and S6.
HANDED_TO = {"S2b": "power-on", "S3": "power-off-graceful", "S6": "power-off-graceful"}
# Looks at a batch session setup of this process just enabled (`look_soon`) worked on at once, and
# hand-overs to the power operators of this process (`_start_hand_over`) under way at once. Setup
# writes two batches at a time and a batch's hand-over is about five round trips: at two of each,
# the third and fourth batches of a 10,000-node boot waited 0.2-0.6 s for a slot at each stage
# (issue 13, realistic latencies). Four of each let them go on, but every look and hand-over holds
# its batch's records (2,800 at most): at 100,000 nodes the operators' peak RSS rose from 193-195
# to 222-266 MiB against the 250 MiB goal (bench.boot --nodes 100000), so two it is; a limit by
# records in flight, not batches, would let small batches go on at once. Four looks each handing
# over in its own slot (no more batches held) slowed a 100,000-node setup from 11 s to 16-23 s:
# the looks took the operators' CPU from setup's writes (docs/benchmarks-history.md, sitting 36).
PUSHED_IN_FLIGHT = 2
HAND_OVERS_IN_FLIGHT = 2
# What a component left as it was was last seen as at PCS and CFS: (P, desired_config, configuration_status).
Observed = Tuple[Any, ...]
# How much of that a look other than the full look asks about again (`_waiting`): nothing (waits for a
# write to its own record: `waits_for_a_write`), P alone (`POWER_ONLY`), or P and CFS (in transition).
ASKS_NOTHING, ASKS_POWER, ASKS_ALL = 0, 1, 3
# Decisions that, with the record unchanged, only a new power state changes (or the node leaving
# CFS, S0: seen at the next full look, as for the waiting components): powering on after `On` was
# asked for (S2b), powering off (S3, S6). CFS is not asked about such components (`_changed`).
POWER_ONLY = frozenset({"S2b", "S3", "S6"})
NOTHING_DUE = float("inf")


def waits_for_a_write(component: Component, decision: Decision) -> bool:
    """Whether the decision, with no patch, can only change on a write to the component's own
    record, or when its last action times out (operators.md §3.1, extension "waiting"): S5 waits
    for the node's report; S2b before power-on was asked for waits for the power-on operator's
    write. Changes of power or CFS alone leave either one without a patch, or (a node that left
    PCS or CFS, S0) are seen at the next full look."""
    if decision.rule == "S5":
        return True
    return decision.rule == "S2b" and (component.get("last_action") or {}).get("action") != "powering_on"


def without(ids: List[str], sets: Sequence[AbstractSet[str]]) -> List[str]:
    """`ids` in order, less those in any of `sets`: one filtering list comprehension per
    non-empty set (a set look-up each, in C), where a generator over the sets per ID cost the
    status operator's passes ~0.4 µs an ID, each pass over every enabled ID (issue 13)."""
    for found in sets:
        if found:
            ids = [i for i in ids if i not in found]
    return ids


def listed(ordered: List[str], cid: str) -> bool:
    """Whether `cid` is in the ascending list `ordered` (a binary search: no set of the whole list)."""
    at = bisect_left(ordered, cid)
    return at < len(ordered) and ordered[at] == cid


def observation(power: Optional[str], cfs: Optional[Mapping[str, Any]]) -> Observed:
    """What the decision table reads of PCS and CFS for one component (status_rules: P and the
    CFS fields): equal observations with an unchanged record decide the same."""
    if cfs is None:
        return (power, None, None)
    return (power, cfs.get(CFS_FIELDS[0]), cfs.get(CFS_FIELDS[1]))


def asks(component: Component, decision: Decision) -> int:
    """How much of a component left as it was a look other than the full look asks PCS and CFS
    about (`ASKS_*`): nothing when only a write to its record (or its time-out) changes the
    decision, P alone when only a new power state does (or the node leaving CFS, S0: seen at the
    full look), else P and the CFS fields."""
    if waits_for_a_write(component, decision):
        return ASKS_NOTHING
    return ASKS_POWER if decision.rule in POWER_ONLY else ASKS_ALL


def same(seen: Observed, now: Observed, asked: int) -> bool:
    """Whether what PCS and CFS say now is what they said (`seen`), as far as `asked` items go."""
    return now == seen if asked == ASKS_ALL else now[:asked] == seen[:asked]


def waiting_deadline(component: Component, options: Mapping[str, Any]) -> Optional[float]:
    """When the earliest time-out of S5/S2b (§1.1) could change the decision (epoch seconds)."""
    stamp = epoch((component.get("last_action") or {}).get("last_updated"))
    if stamp is None:
        return None
    return stamp + min(float(options["max_boot_wait_time"]), float(options["max_power_on_wait_time"]))


@dataclass
class _Pass:
    """What the pages of one pass share."""

    gate: asyncio.Semaphore
    cfs: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    power: Dict[str, str] = field(default_factory=dict)  # P already read this pass (changed watched ones)
    cfs_by_page: bool = False  # CFS asked by ID with each page's re-read (`look_soon`), not with the pass
    full: bool = False  # the full look (every `polling_frequency`): every waiting component is asked about
    watched: List[str] = field(default_factory=list)  # in transition, record unchanged: ask PCS and CFS only
    handed: FrozenSet[str] = frozenset()  # handed off to a power operator: left to it (not a full look)
    remaining: int = 0  # components that stay enabled after their page's decisions
    moved: int = 0  # components written (moved on) by this pass
    in_transition: int = 0  # components left as they were that wait for PCS or CFS, not for a write
    failed: bool = False  # a page could not read or write: no further page starts
    looked: Optional[float] = None  # when this pass's look at the components in transition began (monotonic)
    look_took: float = 0.0  # how long that look took (asking PCS and CFS)
    tasks: List["asyncio.Future[None]"] = field(default_factory=list)


class _Slot:
    """A hand-over's slot (HAND_OVERS_IN_FLIGHT), freed once: when its power operator has acted
    (framework.ACTED), not after the action update and the lease release that follow. In a traced
    10,000-node reboot the last two pages waited 0.12-0.16 s for slots held 0.2 s past the Soft-Offs."""

    def __init__(self, gate: Optional[asyncio.Semaphore]) -> None:
        self._gate = gate

    def free(self) -> None:
        if self._gate is not None:
            self._gate.release()
            self._gate = None


class StatusOperator(Operator):
    name = "status"
    wake_on_enabled = True  # any enabled component written: a session, a report, a hand-off
    wake_statuses = frozenset({"on_hold"})
    # A write leaving components only in these statuses hands them to a power operator (usually the
    # status operator's own write): nothing for a status pass until the hardware moves, which no
    # event reports. Waking for it made each hand-off a pass that held the components' leases while
    # the power operator waited for them (issue 13, realistic latencies).
    handed_off = frozenset({"power_on_pending", "power_off_pending"})
    # ... and so does one leaving them only as a power operator's action update leaves them (its
    # call made): what changes them next is the hardware, which the looks' timer asks about. Woken
    # by power-on's updates, a pass read a 10,000-node boot's first 5,600 nodes 0.1 s after their
    # `On`, taking the operators' CPU from the last batch's hand-over (its update -> `On` took
    # 67 ms instead of 19; issue 13, realistic latencies): they are read at the next look instead.
    called = frozenset({"power_on_called", *CALLED_STATUSES})
    not_woken_by = handed_off | called

    def __init__(self) -> None:
        self._interval: Optional[float] = None  # the current re-check interval (see _recheck)
        # Components whose evaluation wrote nothing: ID -> (fingerprint of the record evaluated,
        # deadline, what PCS and CFS said then, how much of it other looks ask about: `asks`).
        # Skipped while their record is unchanged, before the deadline, and while PCS and CFS say
        # the same: asked by ID as far as `asks` goes at each look, in full at the full look
        # (every `polling_frequency`), which re-read, re-decided and re-asked PCS and CFS about
        # every one of them: at 100,000 nodes, three to four reads of each node per boot (issue
        # 13). Process memory only: a restarted or other replica simply looks at everything once.
        self._waiting: Dict[str, Tuple[int, float, Observed, int]] = {}
        # Each distinct observation once (`_remember`): the strings CFS's answer decodes are new
        # objects per component, and a tuple of them per waiting component is ~0.2 KB at 100,000.
        # Emptied at each full look (bounded by the observations of one period).
        self._observations: Dict[Observed, Observed] = {}
        self._waiting_options: Tuple[Any, ...] = ()
        # The store's write feed (store/write_feed.py), read at the start of each pass (a "round"):
        # the last entry read; whether this round knew every record written since the last one
        # (those left `_waiting` then); and the round's number. Hashing every waiting record on
        # every pass to find the few hundred written read 10-14k whole records a pass at 20,000
        # nodes (issue 13); the fingerprints remain for rounds the feed cannot answer.
        self._feed: Optional[str] = None
        self._feed_known = False
        self._round = 0
        # The enabled IDs (ascending) as of this round, from the store's enabled index, kept from
        # round to round by the write feed (every write that enables or disables a component is in
        # it: only the IDs it names are asked about, `_follow_listing`); None until listed again
        # (no store reads, a round the feed cannot answer, a full look). Listing every enabled ID
        # on every pass cost the status operator ~0.1 s of CPU a pass at 100,000 nodes (issue 13).
        self._listing: Optional[List[str]] = None
        self._next_due = NOTHING_DUE  # no deadline in `_waiting` before this (may be earlier: a hint)
        # When components in transition are next asked about at PCS and CFS (monotonic): one re-check
        # interval (see _recheck) after the last look began, or as long as that look took if longer
        # (at most half the time spent asking). Passes woken by writes in between skip the question.
        self._look_due = 0.0
        self._look_took = 0.0  # how long the last look took (`_recheck`: LOOK_SHARE)
        self._full_look = 0.0
        # The power operators of this process, by name, if they run here (registry.link): what this
        # operator's write makes their work (HANDED_TO) they act on at once, under this page's claim.
        self.power: Dict[str, "ComponentOperator"] = {}
        # Batches session setup of this process enabled and asked this operator to look at now
        # (`look_soon`): IDs queued or being looked at, left out of this operator's own passes.
        self._pushed: Set[str] = set()
        self._pushed_gate: Optional[asyncio.Semaphore] = None  # made in the running loop
        self._hand_gate: Optional[asyncio.Semaphore] = None  # HAND_OVERS_IN_FLIGHT
        self._tasks: Set["asyncio.Future[None]"] = set()  # looks and hand-overs under way

    def wants(self, event: Mapping[str, Any]) -> bool:
        if event.get("kind") == "components" and set(event.get("statuses") or ()) <= self.not_woken_by:
            return False
        return super().wants(event)

    async def run_pass(self, ctx: PassContext) -> Optional[float]:
        """Page through the enabled components; each page is claimed (component leases, so no
        other operator or replica acts on it in between), re-read, evaluated and written.

        Two pages are in flight at once (as the generic flow's chunks, framework.in_flight): a
        page waits on the API, PCS and its write most of its time (issue 13). Components waiting
        for a write to their own record (the node's report, the power-on operator) are neither
        claimed nor asked about while their record is unchanged (`_waiting`): at 100,000 nodes
        every pass re-read, re-asked PCS and CFS about and re-decided every one of them.
        Components in transition (powering on or off, configuring: waiting for PCS or CFS, which
        publish nothing) are only asked about at PCS and CFS while their record is unchanged, and
        claimed, re-read and decided once either says something new (`_changed`): a look at a
        session's nodes in flight costs two by-ID requests per batch, so it can come often. It
        comes on its own timer (`_look_due`), not with every pass: passes woken by writes (every
        node's report, during a boot) ask only about what was written."""
        full_look = self._expire_waiting(ctx)
        pass_ = _Pass(gate=asyncio.Semaphore(PAGES_IN_FLIGHT), full=full_look)
        try:
            await self._follow_writes(ctx)
            if not full_look:
                pass_.handed = await self._handed_off_ids(ctx)
            todo, enabled = await self._to_look_at(ctx, pass_)
            if not enabled:
                return None
            looked = time.monotonic()
            skipped = bool(pass_.watched) and looked < self._look_due and not full_look
            if skipped:  # not due: as they were at the last look
                pass_.remaining += len(pass_.watched)
                pass_.in_transition += len(pass_.watched)
                pass_.watched = []
            waiting = self._waiting
            asked = [*todo, *(i for i in pass_.watched if full_look or waiting[i][3] == ASKS_ALL)]
            if asked:
                pass_.cfs = await self._cfs_records(ctx, asked, enabled)
            if pass_.watched:
                todo.extend(await self._changed(ctx, pass_))
            if not skipped:  # every component in transition was asked about (or decided) just now
                pass_.looked, pass_.look_took = looked, time.monotonic() - looked
        except Exception as exc:  # §3.1 step 4
            ctx.log.error("Unable to read or write (BOS, CFS or PCS); ending the status pass: %s", one_line(exc))
            return self._recheck(ctx, moved=False)
        try:
            for page in chunks(todo, ctx.batch_size):
                await pass_.gate.acquire()
                if pass_.failed:
                    pass_.gate.release()
                    break
                pass_.tasks.append(asyncio.ensure_future(self._page(ctx, list(page), pass_)))
            await asyncio.gather(*pass_.tasks)
        finally:  # an error or a cancellation of the pass: no page goes on without it
            for task in pass_.tasks:
                task.cancel()
            await asyncio.gather(*pass_.tasks, return_exceptions=True)
        if pass_.failed:
            return self._recheck(ctx, moved=False, look=pass_)
        # components held by another operator (session setup writing them, a power operator acting)
        # are released within moments: look again as soon as after progress, without backing off
        moved = pass_.moved > 0 or ctx.contended > 0
        if not pass_.remaining and not ctx.contended:
            return None
        return self._recheck(ctx, moved=moved, in_transition=pass_.in_transition, look=pass_)

    def _expire_waiting(self, ctx: PassContext) -> bool:
        """A full look every `polling_frequency` (the operator's period, §3): PCS and CFS asked
        about every waiting component, the enabled index listed again. Whenever the time-outs the
        deadlines were computed with change, every component is looked at again. True for both."""
        options = (ctx.options.get("max_boot_wait_time"), ctx.options.get("max_power_on_wait_time"))
        period = float(ctx.options.get("polling_frequency") or 0)
        if options != self._waiting_options or time.monotonic() - self._full_look >= period:
            if options != self._waiting_options:
                self._waiting.clear()
            self._listing = None  # listed again from the store too
            self._observations.clear()
            self._waiting_options = options
            self._full_look = time.monotonic()
            return True
        return False

    async def _follow_writes(self, ctx: PassContext) -> None:
        """Begin a round: read the write feed since the last round's entry, and drop the records
        written since from `_waiting` (they are looked at again). Before anything of this pass is
        read, so every write after a record read this round is in the next round's entries. A
        round the feed cannot answer (the first, or its last entry trimmed away) checks the
        waiting records' fingerprints instead (`_not_waiting`)."""
        self._round += 1
        self._feed, written = await ctx.bos.written_since(self._feed)
        self._feed_known = written is not None
        for cid in written or ():
            self._waiting.pop(cid, None)
        await self._follow_listing(ctx, written)
        now = time.time()
        if self._feed_known and now >= self._next_due:
            self._expire_deadlines(now)

    async def _follow_listing(self, ctx: PassContext, written: Optional[Set[str]]) -> None:
        """Bring the listing of enabled IDs up to this round: those of the IDs written since the
        last round that are enabled now join it, the others leave it. A round the feed cannot
        answer (or without a listing) drops it: `_enabled_pages` lists the index again."""
        if written is None or self._listing is None or ctx.services.redis is None:
            self._listing = None
            return
        if not written:
            return
        ordered = sorted(written)
        enabled = await enabled_among(ctx.services.redis, ordered)
        if len(enabled) < len(ordered):
            gone = set(ordered).difference(enabled)
            self._listing = [i for i in self._listing if i not in gone]
        if enabled:
            joined = [i for i in enabled if not listed(self._listing, i)]
            if joined:  # two ascending runs: the sort merges them in linear time
                self._listing.extend(joined)
                self._listing.sort()

    def _expire_deadlines(self, now: float) -> None:
        """Drop the waiting components whose deadline has come (their time-out may change the
        decision), for a round the write feed answers (`_not_waiting` then reads no deadline)."""
        waiting = self._waiting
        for cid in [cid for cid, entry in waiting.items() if entry[1] <= now]:
            del waiting[cid]
        self._next_due = min((entry[1] for entry in waiting.values()), default=NOTHING_DUE)

    async def _handed_off_ids(self, ctx: PassContext) -> FrozenSet[str]:
        """The enabled components a power operator is to act on (`power_on_pending`,
        `power_off_pending`), from the store's indexes (empty without store reads): outside a full
        look, a pass leaves them to that operator, whose write (an event) brings them back
        (operators.md §3, extension "handed off"). Looking at them right after this operator's own
        write held their leases while the power operator waited for them, for a decision that
        could only be the same (issue 13, realistic latencies)."""
        ids = await ctx.bos.enabled_ids_in(sorted(self.handed_off))
        return frozenset(ids or ())

    async def _to_look_at(self, ctx: PassContext, pass_: "_Pass") -> Tuple[List[str], int]:
        """Every enabled component ID (paged), less those still waiting; and how many are enabled."""
        todo: List[str] = []
        enabled = 0
        pages = await self._enabled_pages(ctx)
        for page in pages:
            enabled += len(page)
            todo.extend(await self._not_waiting(ctx, page, pass_))
        if not enabled:
            self._waiting.clear()
        elif pass_.full and len(self._waiting) > enabled:  # some no longer enabled (deleted: not in the feed)
            listed_now = {i for page in pages for i in page}
            self._waiting = {i: entry for i, entry in self._waiting.items() if i in listed_now}
        return todo, enabled

    async def _enabled_pages(self, ctx: PassContext) -> List[List[str]]:
        """The enabled IDs in pages: the listing the write feed kept (`_follow_listing`), else
        paged from the store (kept as the listing when the operators read the store: the feed
        position of this round was read before, so the next round's entries hold every write
        after this listing) or from the API."""
        if self._listing is not None:
            return [list(page) for page in chunks(self._listing, ctx.batch_size)]
        pages: List[List[str]] = []
        page = await self._page_ids(ctx, None)
        while page:
            pages.append(page)
            if self._last(ctx, page):
                break
            page = await self._page_ids(ctx, page[-1])
        if ctx.services.redis is not None and self._feed is not None:
            self._listing = [i for page in pages for i in page]
        return pages

    async def _not_waiting(self, ctx: PassContext, page: List[str], pass_: "_Pass") -> List[str]:
        """The page less the components still waiting: record unchanged (same fingerprint) and
        deadline not reached. They stay enabled, so they count as remaining. Those in transition
        go to `pass_.watched` instead: PCS and CFS decide whether they are looked at."""
        kept = without(page, (pass_.handed, *self._held_here()))
        pass_.remaining += len(page) - len(kept)  # still enabled: the power operator's work, or in-process work's
        page = kept
        if self._feed_known:
            return self._unwritten(page, pass_)
        maybe = [i for i in page if i in self._waiting]
        if not maybe:
            return page
        prints = await ctx.bos.fingerprints(maybe)
        if prints is None:
            self._waiting.clear()
            return page
        now = time.time()
        still = set()
        for cid, fingerprint in zip(maybe, prints):
            known, deadline, _, asked = self._waiting[cid]
            if fingerprint == known and now < deadline:
                still.add(cid)
                if asked or pass_.full:
                    pass_.watched.append(cid)
                else:
                    pass_.remaining += 1
            else:
                del self._waiting[cid]
        return [i for i in page if i not in still] if still else page

    def _unwritten(self, page: List[str], pass_: "_Pass") -> List[str]:
        """`_not_waiting` in a round the write feed answered: every component left in `_waiting`
        was neither written since it was read nor reached its deadline (`_follow_writes`), so the
        page less them, with no per-component test beyond the look-ups."""
        waiting = self._waiting
        todo = [i for i in page if i not in waiting]
        if len(todo) < len(page):
            watched = [i for i in page if i in waiting and (pass_.full or waiting[i][3])]
            pass_.watched.extend(watched)
            pass_.remaining += len(page) - len(todo) - len(watched)
        return todo

    def _held_here(self) -> List[Set[str]]:
        """The IDs work of this process holds or is about to hold, which this operator's passes leave
        out (they count as enabled): a batch session setup is writing or this operator is looking
        at for it (`look_soon`), and what a page's write hands to a power operator, from before
        that write until the hand-over ends (its `taking`). A pass woken by setup's write or by
        power-on's preset claimed them only to find them held, after asking CFS about them, and
        looked again 0.2 s later: a reboot of 10,000 nodes logged such passes at every batch
        (issue 13, realistic latencies)."""
        return [ids for ids in (self._pushed, *(op.taking for op in self.power.values())) if ids]

    async def _changed(self, ctx: PassContext, pass_: "_Pass") -> List[str]:
        """The watched components PCS or CFS now say something new about (by ID, in PCS's
        request size; CFS was read with the pass, but for those waiting for their power state
        alone): they are looked at in full, with the P just read, and CFS asked by ID about those
        it was not asked about. The others count as remaining. Asking CFS about a reboot's 10,000
        nodes powering off at every look listed all of CFS twice a second, for nothing the
        decision reads (issue 13, realistic latencies). At the full look every waiting component is
        watched and compared in full: one whose record, P and CFS fields are what it was decided
        with decides the same (S0 included), so it is neither claimed, re-read nor decided again."""
        power = await self._power_in_pages(ctx, pass_.watched)
        changed: List[str] = []
        unread: List[str] = []
        waiting, cfs, full = self._waiting, pass_.cfs, pass_.full
        for cid in pass_.watched:
            _, _, seen, asked = waiting[cid]
            if same(seen, observation(power.get(cid), cfs.get(cid)), ASKS_ALL if full else asked):
                pass_.remaining += 1
                pass_.in_transition += asked != ASKS_NOTHING
                continue
            del waiting[cid]
            changed.append(cid)
            if cid in power:
                pass_.power[cid] = power[cid]
            if asked == ASKS_POWER and not full and cid not in cfs:  # not asked with the pass
                unread.append(cid)
        if unread:
            pass_.cfs.update(await ctx.services.cfs.components(unread, CFS_FIELDS))
        return changed

    @staticmethod
    async def _power_in_pages(ctx: PassContext, ids: List[str]) -> Dict[str, str]:
        """P of `ids`, asked PAGES_IN_FLIGHT pages at a time (the full look asks about every
        waiting component: one after the other, its PCS requests were each a round trip)."""
        if len(ids) <= max(ctx.batch_size, 1) or ctx.batch_size <= 0:
            return await ctx.services.pcs.power_status(ids) if ids else {}
        power: Dict[str, str] = {}

        async def ask(page: Sequence[str]) -> None:
            power.update(await ctx.services.pcs.power_status(list(page)))
        await in_flight(chunks(ids, ctx.batch_size), ask, PAGES_IN_FLIGHT)
        return power

    async def _page(self, ctx: PassContext, page: List[str], pass_: "_Pass") -> None:
        """One page: claim, re-read, decide, write, and hand what the write made a power operator's
        work to that operator (`_start_hand_over`, with those components' leases); always releases
        the rest of its claim and its slot."""
        try:
            if pass_.failed:
                return
            claim = await ctx.claims.claim(page)
            ctx.busy(len(page), claim)
            pending: Dict[str, List[str]] = {}
            try:
                async with acting(ctx.services.redis):  # before the re-read (store/acting.py: session stop)
                    with fenced(ctx.claims, claim):
                        still, written, in_transition, pending = await self._claimed_page(ctx, claim.ids, pass_)
                        pass_.remaining += still
                        pass_.moved += written
                        pass_.in_transition += in_transition
                if pending:
                    claim = await self._start_hand_over(ctx, pending, claim)
                    pending = {}  # the hand-over's now
            except FenceLost as exc:
                ctx.log.warning("Stopped evaluating %d components: %s", len(claim.ids), exc)
            except Exception as exc:  # §3.1 step 4: pages already written stay written
                if not pass_.failed:
                    ctx.log.error("Unable to read or write (BOS, CFS or PCS); ending the status pass: %s",
                                  one_line(exc))
                pass_.failed = True
            finally:
                self._untake(pending)
                await ctx.claims.release(claim)
        finally:
            pass_.gate.release()

    async def _start_hand_over(self, ctx: PassContext, pending: Dict[str, List[str]], claim: Claim) -> Claim:
        """Start handing `pending` to their power operators in a task of its own, with their part
        of the claim (HAND_OVERS_IN_FLIGHT at once: waits for a slot); returns the rest of the
        claim. The pass goes on meanwhile: waiting for the power operator's work held each look
        at the nodes in flight (a reboot's Soft-Offs completing) up by that much."""
        handed = {i for ids in pending.values() for i in ids}
        part = Claim(claim.token, ids=[i for i in claim.ids if i in handed])
        rest = Claim(claim.token, ids=[i for i in claim.ids if i not in handed], others=list(claim.others))
        if self._hand_gate is None:
            self._hand_gate = asyncio.Semaphore(HAND_OVERS_IN_FLIGHT)
        await self._hand_gate.acquire()
        self._track(self._hand_over(ctx, pending, part))
        return rest

    def reserve(self, ids: Sequence[str]) -> None:
        """Leave a batch session setup of this process is about to write out of this operator's
        passes until `look_soon` is called for it: setup holds the batch's leases while it writes,
        and the write's own change event woke a pass that asked CFS about the batch, found it held
        and looked again soon."""
        self._pushed.update(ids)

    def look_soon(self, ctx: PassContext, ids: Sequence[str], reserved: Sequence[str] = ()) -> None:
        """Look at a batch session setup of this process has just enabled, now, in a task of its
        own (operators.md §3, extension "looked at once enabled"): the page flow (claim, re-read,
        decide, write, power on) with CFS asked by ID for the batch. A pass of this operator woken
        by setup's write started only after its previous pass, listed only what was enabled by
        then, and found setup's batches in flight held by setup; each later batch waited for the
        next pass (issue 13, realistic latencies). From `reserve` until the look ends, this
        operator's passes leave the batch out (it counts as enabled); a look that fails leaves it
        to them. `reserved` IDs that are not in `ids` (not written: unknown to BOS, or the write
        failed) are given back to the passes at once."""
        batch = list(ids)
        self._pushed.difference_update(set(reserved).difference(batch))
        if not batch:
            return
        self._pushed.update(batch)
        self._track(self._look_pushed(ctx, batch))

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in a task of its own, kept (`_tasks`) until it ends: `settled` waits for it."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Wait for the looks `look_soon` started and the hand-overs under way (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _look_pushed(self, ctx: PassContext, ids: List[str]) -> None:
        own = ctx.as_operator(self.name)
        if self._pushed_gate is None:
            self._pushed_gate = asyncio.Semaphore(PUSHED_IN_FLIGHT)
        try:
            async with self._pushed_gate:
                pass_ = _Pass(gate=asyncio.Semaphore(1), cfs_by_page=True)
                await pass_.gate.acquire()
                await self._page(own, ids, pass_)
        except Exception as exc:  # the next pass of this operator looks at them
            own.log.warning("Unable to look at %d components set up just now: %s", len(ids), one_line(exc))
        finally:
            self._pushed.difference_update(ids)

    async def _hand_over(self, ctx: PassContext, pending: Dict[str, List[str]], claim: Claim) -> None:
        """Hand the components this operator's write made a power operator's work to that operator
        of this process, under their claim (operators.md §3, extension "handed over at once"), then
        release it: with that operator's decision records where its outcome is recorded."""
        acted: Dict[str, List[str]] = {}
        slot = _Slot(self._hand_gate)
        ACTED.set(slot.free)  # this task's own context: its power operators' acts free the slot
        try:
            async with acting(ctx.services.redis):  # before power-on's re-read, as in its own flow
                with fenced(ctx.claims, claim):
                    for name, ids in pending.items():
                        await self.power[name].take_over(ctx, ids, claim)
                        acted[name] = ids
        except FenceLost as exc:
            ctx.log.warning("Stopped handing %d components over: %s", len(claim.ids), exc)
        except Exception as exc:  # left pending: the power operator's next pass takes them
            ctx.log.error("Handing %d components to a power operator failed: %s", len(claim.ids), one_line(exc))
        finally:
            slot.free()  # nothing was acted on, or it failed before
            self._untake(pending)
            await self._release(ctx, claim, acted)

    def _untake(self, pending: Mapping[str, List[str]]) -> None:
        """The hand-over of `pending` is over (or never began): their power operators' passes may
        take them again; patches they carried unwritten are dropped (`ComponentOperator.carry`)."""
        for name, ids in pending.items():
            self.power[name].taking.difference_update(ids)
            self.power[name].drop_carried(ids)

    @staticmethod
    async def _release(ctx: PassContext, claim: Claim, acted: Mapping[str, List[str]]) -> None:
        """Free the page's leases; those of components a power operator acted on with its
        decision records, as that operator frees them once its outcome is recorded (docs/ha.md)."""
        for name, ids in acted.items():
            done = set(ids)
            await ctx.claims.release(Claim(claim.token, ids=[i for i in claim.ids if i in done]), name)
            claim.ids = [i for i in claim.ids if i not in done]
        await ctx.claims.release(claim)

    @staticmethod
    async def _page_ids(ctx: PassContext, start_after: Optional[str]) -> List[str]:
        """The next page of enabled component IDs. From the store's enabled index when the
        operators share the API's Redis: the records are then read once per pass, after the
        claim, instead of also before it (at 100,000 nodes that read was a third of a pass)."""
        if ctx.services.redis is not None:
            return await enabled_page(ctx.services.redis, start_after, ctx.batch_size)
        return [c["id"] for c in await ctx.bos.component_page(ctx.batch_size, start_after, enabled=True)]

    async def _claimed_page(self, ctx: PassContext, ids: List[str],
                            pass_: "_Pass") -> Tuple[int, int, int, Dict[str, List[str]]]:
        """Re-read the claimed components (the page was read before the claim), then decide. P
        comes from PCS, unless this pass read it already (a watched component that changed)."""
        if not ids:
            return 0, 0, 0, {}
        round_ = self._round  # the round these records are read in (`_remember`)
        read, asked, cfs = await concurrently(ctx.bos.components_with_prints(ids, enabled=True),
                                              self._power_of(ctx, [i for i in ids if i not in pass_.power]),
                                              self._cfs_of_page(ctx, ids, pass_))
        fresh, prints = read if read is not None else (await ctx.bos.components_by_ids(ids, enabled=True), {})
        metrics.operator_read(self.name, len(fresh))
        if not fresh:
            return 0, 0, 0, {}
        power = {**asked, **{c["id"]: pass_.power[c["id"]] for c in fresh if c["id"] in pass_.power}}
        return await self._evaluate_chunk(ctx, fresh, power, cfs, prints, round_)

    @staticmethod
    async def _power_of(ctx: PassContext, ids: List[str]) -> Dict[str, str]:
        """P of the page's claimed components this pass did not read yet: asked at PCS with their
        re-read, not after it (the decision reads the two together; P may as well come first, as it
        does for a watched component that changed). One after the other, the two were two round
        trips of each page's latency chain, and so of each batch session setup enabled."""
        return await ctx.services.pcs.power_status(ids) if ids else {}

    @staticmethod
    async def _cfs_of_page(ctx: PassContext, ids: List[str], pass_: "_Pass") -> Dict[str, Dict[str, Any]]:
        """The CFS records the page is decided with: the pass's, or for a batch session setup has
        just enabled (`look_soon`), asked by ID with the page's re-read, after the claim (asked
        before it, it was one more round trip before the first node of each batch was powered on)."""
        return await ctx.services.cfs.components(ids, CFS_FIELDS) if pass_.cfs_by_page else pass_.cfs

    @staticmethod
    def _last(ctx: PassContext, page: Sequence[str]) -> bool:
        return ctx.batch_size <= 0 or len(page) < ctx.batch_size

    @staticmethod
    async def _cfs_records(ctx: PassContext, todo: Sequence[str], enabled: int) -> Dict[str, Dict[str, Any]]:
        """CFS once per pass (D26): by ID when the pass looks at few components (few in all, or
        a small share of all components: the listing's size), else everything."""
        population = enabled
        if ctx.services.redis is not None and len(todo) > max(CFS_BY_ID_MAX, enabled // CFS_BY_ID_SHARE):
            population = max(enabled, int(await ctx.services.redis.zcard(keys.COMPONENT_IDS)))
        if len(todo) <= max(CFS_BY_ID_MAX, population // CFS_BY_ID_SHARE):
            return await ctx.services.cfs.components(todo, CFS_FIELDS)
        return await ctx.services.cfs.all_components(CFS_FIELDS)

    async def _evaluate_chunk(self, ctx: PassContext, chunk: Sequence[Component], power: Dict[str, str],
                              cfs: Dict[str, Dict[str, Any]],
                              prints: Mapping[str, int],
                              round_: int) -> Tuple[int, int, int, Dict[str, List[str]]]:
        """Evaluate and write one chunk; returns how many components stay enabled, how many were
        written (moved on), how many were left in transition (waiting for PCS or CFS, not for a
        write), and the IDs written into a power operator's work of this process, by operator
        (`HANDED_TO`). A component left as it was is remembered (`_waiting`), if read in this
        round (`round_`): the write feed read since may have listed it already."""
        now = time.time()
        patches: List[Dict[str, Any]] = []
        rules: Counter[str] = Counter()
        pending: Dict[str, List[str]] = {}
        carried: Dict[str, List[Dict[str, Any]]] = {}  # patches a power operator's write carries
        still_enabled = in_transition = 0
        remember = round_ == self._round
        for comp in chunk:
            decision = decide(comp, power.get(comp["id"]), cfs.get(comp["id"]), now, ctx.options)
            still_enabled += not decision.disable
            patch = build_patch(comp, decision)
            if patch is not None:
                rules[decision.rule] += 1
                target = HANDED_TO.get(decision.rule, "")
                if target in self.power:  # its work now (a retry too); its refresh filters the rest
                    pending.setdefault(target, []).append(comp["id"])
                    if self.power[target].carries:  # written with its first write (ComponentOperator.carry)
                        carried.setdefault(target, []).append(patch)
                        continue
                patches.append(patch)
            elif not decision.disable:
                asked = asks(comp, decision)
                in_transition += asked != ASKS_NOTHING
                if remember:
                    self._remember(ctx, comp, asked, prints.get(comp["id"]),
                                   observation(power.get(comp["id"]), cfs.get(comp["id"])))
        if rules:
            ctx.log.info("Updating %d components (%s)", sum(rules.values()),
                         ", ".join(f"{rule}: {n}" for rule, n in sorted(rules.items())))
        for name, ids in pending.items():  # before the write: its event wakes them (`_page` frees them)
            self.power[name].taking.update(ids)
        if patches:
            try:
                await ctx.bos.patch_components(patches, ctx.batch_size)
            except BaseException:
                self._untake(pending)
                raise
        for name, carrying in carried.items():
            self.power[name].carry(carrying)
        return still_enabled, sum(rules.values()), in_transition, pending

    def _remember(self, ctx: PassContext, comp: Component, asked: int, fingerprint: Optional[int],
                  seen: Observed) -> None:
        """A component whose evaluation wrote nothing: its decision stays the same while its
        record (the fingerprint), P and the CFS fields stay the same, until the time-out its last
        action may reach (no time-out left: none). Looks ask PCS and CFS about it as far as `asked`
        goes (`asks`), the full look about all of `seen`. One waiting for a write to its own record
        without a time-out is not remembered."""
        if fingerprint is None:
            return
        deadline = waiting_deadline(comp, ctx.options)
        if deadline is not None and deadline < self._next_due:
            self._next_due = deadline
        try:
            seen = self._observations.setdefault(seen, seen)
        except TypeError:  # a CFS field that is no JSON scalar: kept as it is
            pass
        if asked == ASKS_NOTHING:
            if deadline is not None:
                self._waiting[comp["id"]] = (fingerprint, deadline, seen, asked)
            return
        self._waiting[comp["id"]] = (fingerprint, NOTHING_DUE if deadline is None else deadline, seen, asked)

    def _recheck(self, ctx: PassContext, moved: bool, in_transition: int = 0,
                 look: Optional["_Pass"] = None) -> float:
        """Nodes in flight change outside BOS (power off, CFS configured: nothing tells BOS), so
        the status operator looks again. A session's nodes move together, spread over the
        hardware's jitter: once a look finds some moved, the others follow within moments, so
        the next look comes after RECHECK_AFTER_PROGRESS; looks that find nothing back off,
        doubling up to the re-check interval. At a fixed one-second re-check, the last node of a
        session waited up to a second more to be noticed (issue 13, realistic latencies). While
        components wait for PCS or CFS (in transition), the back-off stops at RECHECK_IN_TRANSITION
        or LOOK_SHARE times the last look, whichever is shorter, and while no more than
        FEW_IN_TRANSITION do (a session's last nodes), it does not start.

        After a pass that moved components on and left some, but no more than FEW_IN_TRANSITION,
        in transition, the next look comes after RECHECK_AFTER_LAST_MOVED (none left: nothing to
        look at sooner; what waits for a write is woken by it).

        The next look is due that interval after this one began (`look`: the pass's look, if it
        asked), at once if it took longer: the interval computed with this pass's outcome, so a
        look that found nodes moved brings the next one in RECHECK_AFTER_PROGRESS, not in the
        backed-off interval the looks had before. The wait asked for ends then: what the pass
        wrote after its look does not hold the next look back (a wait of at least the whole pass,
        the writes of 2,800 nodes configured included, put a 10,000-node boot's last looks 0.5-0.7 s
        apart). Looks so take no more than half the time (LOOK_SHARE: a fifth, below 0.5 s); a
        pass without a look waits at least as long as it took (never more than half the time in
        passes that ask nothing)."""
        fastest = min(RECHECK_AFTER_PROGRESS, ctx.recheck)
        slowest = ctx.recheck
        if look is not None and look.looked is not None:
            self._look_took = look.look_took
        if in_transition:
            capped = min(RECHECK_IN_TRANSITION, max(fastest, LOOK_SHARE * self._look_took))
            slowest = min(fastest if in_transition <= FEW_IN_TRANSITION else capped, slowest)
        if look is not None and look.moved and 0 < in_transition <= FEW_IN_TRANSITION:  # a session's last
            self._interval = min(RECHECK_AFTER_LAST_MOVED, fastest)
        elif moved or self._interval is None:
            self._interval = fastest
        else:
            self._interval = min(slowest, self._interval * 2)
        if look is None or look.looked is None:  # no look this pass: at least as long as it took
            return max(self._interval, ctx.elapsed())
        self._look_due = look.looked + max(self._interval, look.look_took) - LOOK_EARLY
        return max(self._look_due + LOOK_EARLY - time.monotonic(), 0.0)
