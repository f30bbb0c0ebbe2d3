"""Component records in Redis: reads, and compare-and-set writes that move each record's
index entries in the same atomic step (D1, D2).

The store is split by job: query planning (component_query.py: a record's indexes, the
listing filters, the index walk), counting (component_counts.py: a session's extended
status from the indexes), the CAS writes here (over cas.py's script), and the batching of
concurrent single-record writes (write_batcher.py).
"""

from __future__ import annotations

import asyncio
from typing import (Any, AsyncIterator, Callable, Collection, Dict, Iterable, List, Mapping, NamedTuple, Optional,
                    Sequence, Set, Tuple, Union)

from redis.asyncio import Redis

from .. import metrics
from . import keys
from .blobs import Blobs
from .cas import MISSING, CasWriter, Shaped, Write, digest
from .codec import dumps, loads
from .component_counts import session_counts
from .connection import read_kept
from .component_query import (SCAN_CHUNK, ComponentQuery, Facets, actual_state_older_than, explicit_chunks,
                              facet_keys, index_keys, scored_indexes, smallest_driver, walk)
from .events import Events, components_message, encoded
from .history import ACTOR, HistorySettings, change_of, entry_of
from .record_form import pack, unpack
from .record_shape import shape
from .write_batcher import WriteBatcher
from .alike import AlikeKey, Key, Seen, Template, key_of, like, rest_of

__all__ = ["ComponentQuery", "ComponentStore", "MAX_ROUNDS", "TooMuchContention", "actual_state_older_than",
           "index_keys", "scored_indexes"]

Record = Dict[str, Any]
Compute = Callable[[str, Optional[Record]], Optional[Record]]
Ahead = Callable[[Mapping[str, Record]], None]  # ComponentStore.update's `ahead`
Plan = Tuple[List[Write], Dict[str, Record], Dict[str, bytes], List[Facets]]  # ComponentStore._plan
MAX_ROUNDS = 100
WRITE_CHUNK = 500  # records per compare-and-set call of a large update (ComponentStore._round)
FIRST_CHUNK = 100  # records of the first call of a large update: Redis waits for its planning alone
SECOND_CHUNK = 200  # records of the second: planned while the first's script runs, in about as long
TAIL_CHUNK = 200  # records of the last call of a large update: the part of the writing not overlapped
PROBED = 16  # IDs looked up of a large update that expects its records absent (ComponentStore._round)
_NO_MOVES: Dict[str, float] = {}  # shared, never modified: a write that moves no score index entry


def _chunks(count: int) -> List[slice]:
    """Slices of a large update's IDs, one per compare-and-set call: FIRST_CHUNK, then WRITE_CHUNK
    each, the last one at most TAIL_CHUNK. A call's script runs in Redis while the next chunk is
    planned: Redis is idle only while the first chunk is planned, and the API only while the last
    script runs after the planning ends: both kept short, they delay the answer less. A seed's
    script costs Redis about twice what planning its records costs the API: with a first chunk
    of 500, Redis sat idle for the ~4 ms its planning took, an eighth of a 1,000-record PUT (issue 13).
    The second is SECOND_CHUNK: a 500 after the 100 kept Redis idle for the ~3 ms its planning took
    beyond the 100's script; a 1,000-record PUT is still four calls (100, 200, 500, 200). An update
    with no room for a whole WRITE_CHUNK after the second keeps a 500 second (no call of a few records)."""
    second = FIRST_CHUNK + SECOND_CHUNK
    if count >= second + WRITE_CHUNK:
        bounds = [0, FIRST_CHUNK, *range(second, count, WRITE_CHUNK), count]
    else:
        bounds = [0, *range(FIRST_CHUNK, count, WRITE_CHUNK), count]
    if count - bounds[-2] > TAIL_CHUNK:
        bounds.insert(-1, count - TAIL_CHUNK)
    return [slice(start, end) for start, end in zip(bounds, bounds[1:])]


class _Later(NamedTuple):
    """What a record computed in full leaves for the others of its key, made into a Template
    only when one of them is met (made): records each distinct (every stored value stamped
    at its own time) have none, and slicing each new value after its ID for a template no
    record takes was a thirtieth of such a bulk write's API CPU (issue 13)."""

    value: bytes
    component_id: str
    record: Record
    unchanged: bool
    write: Tuple[Any, ...]
    facets: Any
    blobs: Mapping[str, bytes]

    def made(self) -> Optional[Template]:
        """The Template; None when the new value does not start with its ID (then each record of
        the key is computed in full)."""
        rest = rest_of(self.value, self.component_id)
        if rest is None:
            return None
        return Template(rest, self.record, self.unchanged, self.write, self.facets, self.blobs, Shaped(rest))


Remembered = Union[Template, _Later, None]  # a key's entry in an update's memo


class _Computing(NamedTuple):
    """How an update computes its records: update's arguments, and what it remembered (alike.py)."""

    compute: Compute
    actors: Mapping[str, str]
    alike: Optional[AlikeKey]
    memo: Optional[Dict[Key, Remembered]]
    seen: Optional[Seen] = None  # alike.key_of's


def _take(plan: Plan, component_id: str, raw: Optional[bytes], key: Key, prefix: bytes, template: Template,
          read_as: Dict[Key, Any]) -> None:
    """Adds to `plan` a record computed as `template`'s was (alike.py): its own ID and compare-and-set digest.
    `read_as`: each key's value read as the script's `expected` (cas.Shaped), made once per key."""
    if template.rest is None:
        return  # compute left the record alone
    writes, results, blobs, facets = plan
    results[component_id] = like(template, component_id)
    if template.unchanged:
        return
    if template.blobs:
        blobs.update(template.blobs)
    if len(prefix) == len(component_id) + 8:  # `{"id":"<id>"`: the script makes the values (cas.Shaped)
        expected = read_as.get(key)
        if expected is None:  # the value read, after its ID (the same for every record of the key)
            expected = read_as[key] = Shaped(key[1]) if key[1] is not None else MISSING
        writes.append(Write(keys.component(component_id), component_id, expected, template.shaped, *template.write))
    else:
        writes.append(Write(keys.component(component_id), component_id, digest(raw), prefix + template.rest,
                            *template.write))
    facets.append(template.facets)


def _event(writes: Sequence[Write], facets: Sequence[Facets]) -> Optional[bytes]:
    """The change event of one compare-and-set call's writes (None when it writes nothing), for its
    script to publish when none of them conflicted (cas.CasWriter.apply)."""
    return encoded(components_message(facets, [change_of(w.member, f) for w, f in zip(writes, facets) if w.history]))


def _call_ahead(ahead: Ahead, ids: Sequence[str], results: Mapping[str, Record],
                *running: "asyncio.Future[List[int]]") -> None:
    """`ahead` with the round's records in `ids` order, unless a script has answered with a conflict
    already (then update's answer will differ: the work would be lost)."""
    if any(task.done() and (task.cancelled() or task.exception() is not None or task.result()) for task in running):
        return
    ahead({i: results[i] for i in ids if i in results})


class TooMuchContention(Exception):
    """A record kept changing under a writer; the caller should answer 503."""


FIRST_READ = 16  # records first read for a page smaller than this (iter_query)
ONE_READ = 3000  # IDs read with one MGET (get_raw_many): api/components.WHOLE_WRITE, session setup's 2,800


class ComponentStore:
    def __init__(self, redis: Redis, events: Events, history: Optional[HistorySettings] = None) -> None:
        self.redis = redis
        self.events = events
        self.history = history if history is not None else HistorySettings()
        self.cas = CasWriter(redis, self.history, keys.COMPONENT_WRITES)
        self.blobs = Blobs(redis)
        self._batcher = WriteBatcher(self)

    # -- reads --

    async def get_raw_many(self, ids: Sequence[str]) -> List[Optional[bytes]]:
        """The stored values: up to ONE_READ IDs (a bulk write's) one MGET, sent and read straight
        (read_kept); more one MGET per SCAN_CHUNK IDs, all sent in one round trip. Three MGETs through
        redis-py's pipeline cost a 2,800-record bulk write's read 0.5-0.9 ms more API CPU (of ~4-5, issue 13)."""
        if len(ids) <= ONE_READ:
            return list(await read_kept(self.redis, "MGET", *[keys.component(i) for i in ids])) if ids else []
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, len(ids), SCAN_CHUNK):
            pipe.mget([keys.component(i) for i in ids[start:start + SCAN_CHUNK]])
        out: List[Optional[bytes]] = []
        for part in await pipe.execute():
            out.extend(part)
        return out

    async def decode(self, raws: Sequence[Optional[bytes]], shared: bool = False) -> List[Optional[Record]]:
        """Stored values to records (None stays None), blob references expanded.

        `shared`: the records' boot_artifacts dicts are shared between records and
        must not be modified (Blobs.expand); saves a copy per record on listings.
        """
        records = [unpack(loads(raw)) if raw is not None else None for raw in raws]
        await self.blobs.expand(records, shared)
        return records

    async def get_many(self, ids: Sequence[str]) -> Dict[str, Record]:
        records = await self.decode(await self.get_raw_many(ids))
        return {i: r for i, r in zip(ids, records) if r is not None}

    async def get(self, component_id: str) -> Optional[Record]:
        return (await self.get_many([component_id])).get(component_id)

    async def existing(self, ids: Sequence[str]) -> Set[str]:
        """Which of `ids` exist (one index look-up per ID, no record decoding)."""
        found: Set[str] = set()
        for start in range(0, len(ids), SCAN_CHUNK):
            part = list(ids[start:start + SCAN_CHUNK])
            scores = await self.redis.zmscore(keys.COMPONENT_IDS, part)
            found.update(i for i, score in zip(part, scores) if score is not None)
        return found

    async def count(self) -> int:
        return int(await self.redis.zcard(keys.COMPONENT_IDS))

    async def query(self, q: ComponentQuery, candidates: Optional[Iterable[str]] = None) -> List[Record]:
        """Matching records in ID order, paged; `candidates` restricts to explicit IDs (ids, tenant)."""
        found: List[Record] = []
        async for chunk in self.iter_query(q, candidates):
            found.extend(chunk)
        return found

    async def iter_query(self, q: ComponentQuery, candidates: Optional[Iterable[str]] = None,
                         shared: bool = False) -> AsyncIterator[List[Record]]:
        """query() as non-empty chunks of at most SCAN_CHUNK records, read as they are yielded.

        A caller that renders each chunk before asking for the next holds one chunk
        in memory, not 100,000 records. `shared` as in decode() (read-only records).
        A small page (an existence check: session-completion asks for one enabled member of
        a session after every write that completes components) reads FIRST_READ records
        first, then four times more each time, not a whole SCAN_CHUNK: at 30,000 nodes,
        reading and decoding 1,000 records per check was 7 % of the operators' CPU.
        """
        limit = q.page_size or None
        if q.actual_before is not None:  # a score range, usually small: narrow the candidates
            stale = await self.redis.zrangebyscore(keys.COMPONENT_ACTUAL_STAMP, "-inf", f"({q.actual_before}")
            stale_ids = {m.decode() for m in stale}
            candidates = stale_ids if candidates is None else stale_ids & set(candidates)
        if candidates is not None:
            chunks = explicit_chunks(sorted(set(candidates)), q.start_after)
        else:
            chunks = walk(self.redis, await smallest_driver(self.redis, q), q.start_after)
        found = 0
        read = FIRST_READ if limit is not None and limit < FIRST_READ else SCAN_CHUNK
        async for chunk in chunks:
            for start in range(0, len(chunk), read):
                wanted = limit - found if limit is not None else None
                part = chunk[start:start + read]
                matched = [r for r in await self.decode(await self.get_raw_many(part), shared)
                           if r is not None and q.matches(r)][:wanted]
                if matched:
                    found += len(matched)
                    yield matched
                if limit is not None and found >= limit:
                    return
                read = min(read * 4, SCAN_CHUNK)  # most matched-by-index candidates match: grow fast

    async def session_counts(self, session: str) -> Dict[str, Any]:
        """`member_counts` of a session's members, counted in Redis (component_counts.py)."""
        return await session_counts(self, session)

    async def ids_in(self, index_key: str) -> List[str]:
        return [m.decode() for m in await self.redis.zrange(index_key, 0, -1)]

    # -- writes --

    async def update(self, ids: Sequence[str], compute: Compute,
                     actors: Optional[Mapping[str, str]] = None,
                     read: Optional[Mapping[str, Optional[bytes]]] = None,
                     alike: Optional[AlikeKey] = None, ahead: Optional[Ahead] = None,
                     absent: bool = False) -> Dict[str, Record]:
        """Atomically replace each record with `compute(id, current)` (None: leave it).

        `compute` may be called again for a record that changed concurrently; it
        must be a pure function of its arguments. Returns the written records.
        A computed record whose encoding equals the stored value is not written
        (nor announced): its update took effect at the read, which saw that value.
        `actors`: who writes each record, for its history (default: this task's ACTOR).
        `read`: the stored value of every ID as the caller just read it (get_raw_many), taken
        as the first round's read instead of reading again: the compare-and-set checks the
        writes against it like against any read (a bulk PATCH reads once to find its 404s).
        `alike`: an ID's key, equal for records that `compute` treats alike (the same patch or
        body): records with equal keys and stored values equal but for the ID are computed once
        (alike.py); each is still written with the digest of its own stored value.
        `ahead`: called once, while the first round's scripts run in Redis, with what update will
        return if none of them conflicts (the same record objects): a caller can make its answer
        from them meanwhile, and keep it when each record returned is the object it was given.
        `absent`: the caller expects the records not to exist yet (a PUT, which creates them in a seed):
        a large update is computed and written as of records that do not exist, without reading them
        first, unless a few of them, looked at meanwhile, do exist (_round). A record that does exist is
        refused by the compare-and-set and computed again from a read, like any conflict.
        """
        if actors is None:
            actor = ACTOR.get()
            actors = dict.fromkeys(ids, actor) if actor else {}
        pending = list(dict.fromkeys(ids))
        changed: Dict[str, Record] = {}
        unchanged: Dict[str, Record] = {}
        changes: List[List[Any]] = []  # of tracked fields, for the change event (dashboard)
        written: Dict[str, Facets] = {}  # the index facets of each record written, for the change event
        unannounced = False  # a write was applied that no script announced
        memo: Optional[Dict[Key, Remembered]] = {} if alike is not None else None
        seen: Optional[Seen] = {} if alike is not None else None
        for round_ in range(MAX_ROUNDS):
            if not pending:
                break
            # The first round's scripts announce their writes themselves when nothing conflicts (the
            # usual case); otherwise one event for everything written is published at the end.
            raws = [read[i] for i in pending] if read is not None and round_ == 0 else None
            (writes, results, _blobs, facets), conflicts, announced = await self._round(
                pending, _Computing(compute, actors, alike, memo, seen), round_ == 0, raws,
                ahead if round_ == 0 else None, absent and round_ == 0 and raws is None)
            if round_ == 0 and not conflicts and len(announced) == len(writes):
                # The usual: every write applied and announced by its script, nothing left to sort out
                # record by record (that pass was a thirtieth of a bulk write's API CPU, after its scripts)
                metrics.component_writes(len(writes), 0)
                return {i: results[i] for i in ids if i in results}
            for n, write in enumerate(writes):
                if n not in conflicts:
                    changed[write.member] = results.pop(write.member)
                    written[write.member] = facets[n]
                    if n not in announced:
                        unannounced = True
                        if write.history:
                            changes.append(change_of(write.member, facets[n]))
            unchanged.update(results)  # computed == stored: nothing to write (the read is the update)
            pending = [writes[n].member for n in sorted(conflicts)]
            metrics.component_writes(len(writes) - len(conflicts), len(conflicts))
        else:
            raise TooMuchContention(f"components kept changing during the update: {', '.join(pending[:5])}")
        if unannounced:
            await self.events.components_written(written.values(), changes)
        return {i: changed[i] if i in changed else unchanged[i] for i in ids if i in changed or i in unchanged}

    async def _round(self, ids: Sequence[str], how: "_Computing", announce: bool,
                     raws: Optional[List[Optional[bytes]]] = None,
                     ahead: Optional[Ahead] = None, absent: bool = False) -> Tuple[Plan, Set[int], Collection[int]]:
        """One read-compute-write round: (its plan, conflicting positions in its writes, positions of the
        writes whose event a script published: with `announce`, each call's script publishes the event
        of its own writes when none of them conflicted).

        More than WRITE_CHUNK records are planned and written chunk by chunk, each chunk's
        script running in Redis while the next chunk is planned here (two cores, not one).
        Each chunk's script announces that chunk (issue 13): the event is encoded while the
        previous script runs, and the update ends without a PUBLISH round trip of its own.
        `raws`: the stored values of `ids`, read already (update's `read`). `ahead`: update's, called
        once every script is sent, with the records in `ids` order (update's answer when none conflicts).
        `absent` (update's, more than WRITE_CHUNK records): the first chunk is planned as of records that
        do not exist, while PROBED of the others' IDs, spread over them, are looked up (EXISTS); the others
        are read only if one of those exists, else planned as absent too. A seed's first script went out
        after the read of all 1,000 records, its round trip and the decoding of its answer (~1 ms of API
        CPU, issue 13). A guess that missed costs a conflict per record that existed: the first chunk's
        when the probe found one, else those between the probed IDs.
        """
        probe: Optional["asyncio.Future[int]"] = None
        if raws is None and absent and len(ids) > WRITE_CHUNK:
            rest = ids[FIRST_CHUNK:]  # not the first chunk's: its script may run before the probe
            probe = asyncio.ensure_future(read_kept(self.redis, "EXISTS", *[
                keys.component(i) for i in rest[::max(len(rest) // PROBED, 1)]]))
            await asyncio.sleep(0)  # the probe goes out before the first chunk is planned
            raws = [None] * FIRST_CHUNK
        elif raws is None:
            raws = await self.get_raw_many(ids)
        if len(ids) <= WRITE_CHUNK:
            plan = await self._planned(ids, raws, how)
            event = _event(plan[0], plan[3]) if announce else None
            if ahead is None:
                refused = await self.cas.apply(plan[0], plan[2], event=event)
            else:
                applying = asyncio.ensure_future(self.cas.apply(plan[0], plan[2], event=event))
                await asyncio.sleep(0)  # the script goes out before the caller's work begins
                try:
                    _call_ahead(ahead, ids, plan[1], applying)
                finally:  # also when ahead raised: no write is left running unobserved
                    refused = await applying
            return plan, set(refused), range(len(plan[0])) if event is not None and not refused else ()
        writes: List[Write] = []
        results: Dict[str, Record] = {}
        facets: List[Facets] = []
        started: List[Tuple[range, bool, "asyncio.Future[List[int]]"]] = []
        try:
            for part in _chunks(len(ids)):
                if probe is not None and part.start >= FIRST_CHUNK:  # the first script is sent
                    rest = ids[FIRST_CHUNK:]
                    raws += await self.get_raw_many(rest) if await probe else [None] * len(rest)
                    probe = None
                part_writes, part_results, blobs, part_facets = await self._planned(ids[part], raws[part], how)
                event = _event(part_writes, part_facets) if announce else None
                started.append((range(len(writes), len(writes) + len(part_writes)), event is not None,
                                asyncio.ensure_future(self.cas.apply(part_writes, blobs, event=event))))
                writes += part_writes
                results.update(part_results)
                facets += part_facets
                await asyncio.sleep(0)  # the script goes out before the next chunk is planned
            if ahead is not None:
                _call_ahead(ahead, ids, results, *(task for _span, _event_sent, task in started))
        finally:  # also when a compute raised: no write (nor read) is left running unobserved
            if probe is not None:
                await asyncio.gather(probe, return_exceptions=True)
            outcomes = await asyncio.gather(*(task for _span, _event_sent, task in started), return_exceptions=True)
        conflicts: Set[int] = set()
        announced: Set[int] = set()
        for (span, event_sent, _task), found in zip(started, outcomes):
            if isinstance(found, BaseException):
                raise found
            conflicts.update(span.start + n for n in found)
            if event_sent and not found:
                announced.update(span)
        return (writes, results, {}, facets), conflicts, announced

    async def _planned(self, ids: Sequence[str], raws: Sequence[Optional[bytes]], how: "_Computing") -> Plan:
        """The plan of one compare-and-set call (_plan); with `alike`, each record whose key was
        computed already (in this update) is taken from that computation (alike.py) instead."""
        plan: Plan = ([], {}, {}, [])
        if how.alike is None or how.memo is None:
            self._plan(plan, ids, raws, await self.decode(raws), how)
            return plan
        memo = how.memo
        full: List[Tuple[str, Optional[bytes], Optional[Key]]] = []  # computed in full (first of their key)
        taken: List[Tuple[str, Optional[bytes], Key, bytes]] = []    # taken from the first of their key
        firsts: Set[Key] = set()
        for component_id, raw in zip(ids, raws):
            found = key_of(component_id, raw, how.alike, how.actors.get(component_id, ""), how.seen)
            if found is None:
                full.append((component_id, raw, None))
            elif found[0] in memo or found[0] in firsts:
                taken.append((component_id, raw, found[0], found[1]))
            else:
                firsts.add(found[0])
                full.append((component_id, raw, found[0]))
        await self._plan_full(plan, full, how)
        again: List[Tuple[str, Optional[bytes], Optional[Key]]] = []
        read_as: Dict[Key, Any] = {}
        for component_id, raw, key, prefix in taken:
            template = memo[key]
            if isinstance(template, _Later):
                template = memo[key] = template.made()
            if template is None:  # its first could not stand for the others: each is computed
                again.append((component_id, raw, None))
            else:
                _take(plan, component_id, raw, key, prefix, template, read_as)
        await self._plan_full(plan, again, how)
        return plan

    async def _plan_full(self, plan: Plan, rows: List[Tuple[str, Optional[bytes], Optional["Key"]]],
                         how: "_Computing") -> None:
        if rows:
            raws = [raw for _i, raw, _k in rows]
            self._plan(plan, [i for i, _r, _k in rows], raws, await self.decode(raws), how, [k for _i, _r, k in rows])

    def _plan(self, plan: Plan, ids: Sequence[str], raws: Sequence[Optional[bytes]],
              olds: Sequence[Optional[Record]], how: "_Computing",
              keys_: Optional[Sequence[Optional[Key]]] = None) -> None:
        """Adds to `plan` the writes of `compute`'s records, their records, the blobs they reference and
        the index facets of each write's record (for the change event: its statuses and `changes`).
        `keys_`: each record's alike key (None: none), under which its computation is remembered."""
        writes, results, blobs, facets = plan
        compute, actors, memo = how.compute, how.actors, how.memo
        for n, (component_id, raw, old) in enumerate(zip(ids, raws, olds)):
            key = keys_[n] if keys_ is not None else None
            # Read before compute, which may share parts of `old` with the new record
            old_facets, old_scored, old_tracked = shape(old)
            new = compute(component_id, old)
            if new is None:
                if key is not None:
                    memo[key] = Template(None, None, True, (), None, {})  # type: ignore[index]
                continue
            new["id"] = component_id
            results[component_id] = new
            row_blobs: Dict[str, bytes] = {}
            value = dumps(pack(self.blobs.intern(new, row_blobs)))
            if value == raw:
                if key is not None:
                    memo[key] = _Later(value, component_id, new, True, (), None, row_blobs)  # type: ignore[index]
                continue
            blobs.update(row_blobs)
            new_facets, new_scored, new_tracked = shape(new)
            removed: Tuple[str, ...] = ()
            added: Tuple[str, ...] = ()
            if new_facets != old_facets:  # the usual bulk write moves no index entry
                old_idx = facet_keys(old_facets) if old_facets is not None else frozenset()
                new_idx = facet_keys(new_facets)
                removed, added = tuple(old_idx - new_idx), tuple(new_idx - old_idx)
            moved = _NO_MOVES
            if old_scored != new_scored:
                removed += tuple(k for k in old_scored if k not in new_scored)
                # Score entries re-added only when they changed: the index holds the old record's (CAS)
                moved = {k: v for k, v in new_scored.items() if old_scored.get(k) != v}
            history = entry_of(old_tracked, new_tracked, old, new, actors.get(component_id, ""))
            writes.append(Write(keys.component(component_id), component_id, digest(raw), value, removed, added, moved,
                                history))
            facets.append(new_facets)
            if key is not None:
                memo[key] = _Later(value, component_id, new, False,  # type: ignore[index]
                                   (removed, added, moved, history), new_facets, row_blobs)

    async def update_one(self, component_id: str, compute: Compute) -> Optional[Record]:
        """Like update() for one record, batched with concurrent callers (one read, one CAS).

        Exceptions raised by `compute` reach only this caller.
        """
        return await self._batcher.submit(component_id, compute)

    async def delete(self, component_id: str) -> bool:
        for _ in range(MAX_ROUNDS):
            raw = (await self.get_raw_many([component_id]))[0]
            if raw is None:
                return False
            old = unpack(loads(raw))
            write = Write(keys.component(component_id), component_id, digest(raw), None,
                          tuple(index_keys(old)) + tuple(scored_indexes(old)), ())
            if not await self.cas.apply([write]):
                return True
        raise TooMuchContention(f"component {component_id} kept changing during the delete")


