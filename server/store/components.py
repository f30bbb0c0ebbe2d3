"""Component records in Redis, with the indexes that keep every query O(matching) (D1).

Each record is one JSON string. Sorted-set indexes (members scored 0, read
lexicographically) exist for: all IDs, enabled, session, staged session, phase,
computed status and "has an error". A listing walks the smallest index that
applies, in ID order from `start_after_id`, and checks every filter on the
decoded record, so results are exactly those of the unindexed definition.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Dict, Iterable, List, Optional, Sequence, Set

from redis.asyncio import Redis

from bos_shared.components import has_artifacts
from bos_shared.status import component_status
from bos_shared.times import epoch

from . import keys
from .blobs import Blobs
from .cas import CasWriter, Write, digest
from .codec import dumps, loads
from .events import Events
from .history import HistorySettings, change_of, entry as history_entry

Record = Dict[str, Any]
Compute = Callable[[str, Optional[Record]], Optional[Record]]
SCAN_CHUNK = 1000
PHASE_NAMES = ("powering_on", "powering_off", "configuring")
MAX_ROUNDS = 100


class TooMuchContention(Exception):
    """A record kept changing under a writer; the caller should answer 503."""


def index_keys(record: Record) -> Set[str]:
    """The indexes a record belongs to."""
    found = {keys.COMPONENT_IDS, keys.by_status(component_status(record))}
    if record.get("enabled") is True:
        found.add(keys.COMPONENT_ENABLED)
    if record.get("session"):
        found.add(keys.by_session(record["session"]))
    staged = (record.get("staged_state") or {}).get("session")
    if staged:
        found.add(keys.by_staged_session(staged))
    phase = (record.get("status") or {}).get("phase")
    if phase:
        found.add(keys.by_phase(phase))
    if record.get("error"):
        found.add(keys.COMPONENT_ERRORED)
    return found


# Timestamps are whole seconds and a bulk write stamps every record alike: parsing each
# distinct one once saves a regex and a datetime per record read and written.
_epoch = functools.lru_cache(maxsize=4096)(epoch)


def scored_indexes(record: Record) -> Dict[str, float]:
    """Score indexes of a record: when its actual boot was last reported (for cleanup, §4.2)."""
    actual = record.get("actual_state")
    if not isinstance(actual, dict) or not has_artifacts(actual.get("boot_artifacts")):
        return {}
    stamp = actual.get("last_updated")
    return {keys.COMPONENT_ACTUAL_STAMP: (_epoch(stamp) if isinstance(stamp, str) else epoch(stamp)) or 0}


def actual_state_older_than(record: Record, cutoff: float) -> bool:
    stamp = scored_indexes(record).get(keys.COMPONENT_ACTUAL_STAMP)
    return stamp is not None and stamp < cutoff


@dataclass
class ComponentQuery:
    """Filters of `GET /v2/components` (api.md §3.3.1); None means "no filter"."""

    ids: Optional[Sequence[str]] = None
    session: Optional[str] = None
    staged_session: Optional[str] = None
    enabled: Optional[bool] = None
    phase: Optional[str] = None
    statuses: Optional[Sequence[str]] = None
    start_after: Optional[str] = None
    page_size: int = 0
    actual_before: Optional[float] = None  # extension: actual state reported before this epoch

    def matches(self, record: Record) -> bool:
        if self.actual_before is not None and not actual_state_older_than(record, self.actual_before):
            return False
        if self.session is not None and record.get("session") != self.session:
            return False
        if self.staged_session is not None and (record.get("staged_state") or {}).get("session") != self.staged_session:
            return False
        if self.enabled is not None and (record.get("enabled") is True) != self.enabled:
            return False
        if self.phase is not None and ((record.get("status") or {}).get("phase") or "") != self.phase:
            return False
        if self.statuses is not None and component_status(record) not in self.statuses:
            return False
        return True

    def drivers(self) -> List[List[str]]:
        """Candidate index choices; each is a list of sorted sets whose union holds every match."""
        options: List[List[str]] = [[keys.COMPONENT_IDS]]
        if self.session is not None:
            options.append([keys.by_session(self.session)])
        if self.staged_session is not None:
            options.append([keys.by_staged_session(self.staged_session)])
        if self.enabled is True:
            options.append([keys.COMPONENT_ENABLED])
        if self.phase:
            options.append([keys.by_phase(self.phase)])
        if self.statuses is not None:
            options.append([keys.by_status(s) for s in sorted(set(self.statuses))])
        return options


async def _explicit_chunks(ids: List[str], start_after: Optional[str]) -> AsyncIterator[List[str]]:
    """Explicit candidate IDs (sorted) after `start_after`, in chunks, like an index walk."""
    if start_after is not None:
        ids = [i for i in ids if i > start_after]
    for start in range(0, len(ids), SCAN_CHUNK):
        yield ids[start:start + SCAN_CHUNK]


class ComponentStore:
    def __init__(self, redis: Redis, events: Events, history: Optional[HistorySettings] = None) -> None:
        self.redis = redis
        self.events = events
        self.history = history if history is not None else HistorySettings()
        self.cas = CasWriter(redis, self.history)
        self.blobs = Blobs(redis)
        self._batcher = WriteBatcher(self)

    # -- reads --

    async def get_raw_many(self, ids: Sequence[str]) -> List[Optional[bytes]]:
        out: List[Optional[bytes]] = []
        for start in range(0, len(ids), SCAN_CHUNK):
            part = ids[start:start + SCAN_CHUNK]
            out.extend(await self.redis.mget([keys.component(i) for i in part]))
        return out

    async def decode(self, raws: Sequence[Optional[bytes]], shared: bool = False) -> List[Optional[Record]]:
        """Stored values to records (None stays None), blob references expanded.

        `shared`: the records' boot_artifacts dicts are shared between records and
        must not be modified (Blobs.expand); saves a copy per record on listings.
        """
        records = [loads(raw) if raw is not None else None for raw in raws]
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
        return await self.redis.zcard(keys.COMPONENT_IDS)

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
        """
        limit = q.page_size or None
        if q.actual_before is not None:  # a score range, usually small: narrow the candidates
            stale = await self.redis.zrangebyscore(keys.COMPONENT_ACTUAL_STAMP, "-inf", f"({q.actual_before}")
            stale_ids = {m.decode() for m in stale}
            candidates = stale_ids if candidates is None else stale_ids & set(candidates)
        if candidates is not None:
            chunks = _explicit_chunks(sorted(set(candidates)), q.start_after)
        else:
            chunks = self._walk(await self._smallest_driver(q), q.start_after)
        found = 0
        async for chunk in chunks:
            wanted = limit - found if limit is not None else None
            matched = [r for r in await self.decode(await self.get_raw_many(chunk), shared)
                       if r is not None and q.matches(r)][:wanted]
            if matched:
                found += len(matched)
                yield matched
            if limit is not None and found >= limit:
                return

    async def _smallest_driver(self, q: ComponentQuery) -> List[str]:
        options = q.drivers()
        async with self.redis.pipeline(transaction=False) as pipe:
            for option in options:
                for key in option:
                    pipe.zcard(key)
            sizes = iter(await pipe.execute())
        totals = [sum(next(sizes) for _ in option) for option in options]
        return options[totals.index(min(totals))]

    async def _walk(self, index_keys_: List[str], start_after: Optional[str]) -> AsyncIterator[List[str]]:
        """IDs of the union of sorted sets, ascending, after `start_after`, in chunks."""
        if len(index_keys_) == 1:
            async for chunk in self._walk_one(index_keys_[0], start_after):
                yield chunk
            return
        # Several status indexes: merge their ordered streams.
        cursors = [self._walk_one(key, start_after) for key in index_keys_]
        buffers: List[List[str]] = [[] for _ in cursors]
        done = [False] * len(cursors)
        while True:
            for n, cursor in enumerate(cursors):
                if not buffers[n] and not done[n]:
                    buffers[n] = await anext(cursor, [])
                    done[n] = not buffers[n]
            live = [b for b in buffers if b]
            if not live:
                return
            horizon = min(b[-1] for b in live)  # everything <= horizon is complete in every stream
            merged = sorted(set(i for b in live for i in b if i <= horizon))
            for n, b in enumerate(buffers):
                buffers[n] = [i for i in b if i > horizon]
            yield merged

    async def _walk_one(self, key: str, start_after: Optional[str]) -> AsyncIterator[List[str]]:
        lower = b"-" if start_after is None else b"(" + start_after.encode()
        while True:
            chunk = await self.redis.zrange(key, lower, b"+", bylex=True, offset=0, num=SCAN_CHUNK)
            if not chunk:
                return
            ids = [c.decode() for c in chunk]
            yield ids
            if len(ids) < SCAN_CHUNK:
                return
            lower = b"(" + chunk[-1]

    async def session_counts(self, session: str) -> Dict[str, Any]:
        """`member_counts` of a session's members, counted in Redis from the indexes.

        O(members) inside Redis and no record decoding except for members with an
        error, so a 100,000-node session's extended status stays cheap.
        """
        members = keys.by_session(session)
        enabled = [members, keys.COMPONENT_ENABLED]
        on_hold = keys.by_status("on_hold")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zcard(members)
            pipe.zintercard(2, [members, keys.by_status("stable")])
            pipe.zintercard(2, [members, keys.by_status("failed")])
            for phase in PHASE_NAMES:
                pipe.zintercard(3, enabled + [keys.by_phase(phase)])
                pipe.zintercard(4, enabled + [keys.by_phase(phase), on_hold])
            pipe.zinter([members, keys.COMPONENT_ERRORED])
            results = await pipe.execute()
        total, stable, failed = results[:3]
        phase_counts = results[3:3 + 2 * len(PHASE_NAMES)]
        phases = {p: phase_counts[2 * n] - phase_counts[2 * n + 1] for n, p in enumerate(PHASE_NAMES)}
        errored = [m.decode() for m in results[-1]]
        errors: Dict[str, List[str]] = {}
        for record in (await self.get_many(errored)).values():
            if record.get("error") and record.get("session") == session:
                errors.setdefault(record["error"], []).append(record["id"])
        return {"members": total, "successful": stable, "failed": failed, "phases": phases, "errors": errors}

    async def ids_in(self, index_key: str) -> List[str]:
        return [m.decode() for m in await self.redis.zrange(index_key, 0, -1)]

    # -- writes --

    async def update(self, ids: Sequence[str], compute: Compute) -> Dict[str, Record]:
        """Atomically replace each record with `compute(id, current)` (None: leave it).

        `compute` may be called again for a record that changed concurrently; it
        must be a pure function of its arguments. Returns the written records.
        A computed record whose encoding equals the stored value is not written
        (nor announced): its update took effect at the read, which saw that value.
        """
        pending = list(dict.fromkeys(ids))
        changed: Dict[str, Record] = {}
        unchanged: Dict[str, Record] = {}
        changes: List[list] = []  # of tracked fields, for the change event (dashboard)
        for _ in range(MAX_ROUNDS):
            if not pending:
                break
            raws = await self.get_raw_many(pending)
            writes, results, blobs = self._plan(pending, raws, await self.decode(raws), compute)
            conflicts = set(await self.cas.apply(writes, blobs))
            for n, write in enumerate(writes):
                if n not in conflicts:
                    changed[write.member] = results.pop(write.member)
                    if write.history:
                        changes.append(change_of(write.member, changed[write.member]))
            unchanged.update(results)  # computed == stored: nothing to write (the read is the update)
            pending = [writes[n].member for n in sorted(conflicts)]
        else:
            raise TooMuchContention(f"components kept changing during the update: {', '.join(pending[:5])}")
        await self.events.components_written(changed.values(), changes)
        return {i: changed[i] if i in changed else unchanged[i] for i in ids if i in changed or i in unchanged}

    def _plan(self, ids: Sequence[str], raws: Sequence[Optional[bytes]], olds: Sequence[Optional[Record]],
              compute: Compute):
        writes: List[Write] = []
        results: Dict[str, Record] = {}
        blobs: Dict[str, bytes] = {}
        for component_id, raw, old in zip(ids, raws, olds):
            old_idx = index_keys(old) if old is not None else set()  # before compute, which may share parts
            old_scored = scored_indexes(old) if old is not None else {}
            new = compute(component_id, old)
            if new is None:
                continue
            new["id"] = component_id
            results[component_id] = new
            row_blobs: Dict[str, bytes] = {}
            value = dumps(self.blobs.intern(new, row_blobs))
            if value == raw:
                continue
            blobs.update(row_blobs)
            new_idx = index_keys(new)
            new_scored = scored_indexes(new)
            removed = tuple(old_idx - new_idx) + tuple(set(old_scored) - set(new_scored))
            writes.append(Write(keys.component(component_id), component_id, digest(raw), value,
                                removed, tuple(new_idx - old_idx), new_scored, history_entry(old, new)))
        return writes, results, blobs

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
            old = loads(raw)
            write = Write(keys.component(component_id), component_id, digest(raw), None,
                          tuple(index_keys(old)) + tuple(scored_indexes(old)), ())
            if not await self.cas.apply([write]):
                return True
        raise TooMuchContention(f"component {component_id} kept changing during the delete")


class WriteBatcher:
    """Coalesces concurrent single-record updates into batched store round trips.

    Under reporter load (thousands of PATCHes per second) a redis-py round trip
    costs more CPU than the request itself, so concurrent requests share one
    MGET and one compare-and-set call. Each record stays individually atomic.
    """

    def __init__(self, store: ComponentStore) -> None:
        self.store = store
        self.queue: List[tuple] = []
        self.running = False

    async def submit(self, component_id: str, compute: Compute) -> Optional[Record]:
        future = asyncio.get_running_loop().create_future()
        self.queue.append((component_id, compute, future))
        if not self.running:
            self.running = True
            asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.queue:
                items, self.queue = self.queue, []
                await self._flush(items)
        finally:
            self.running = False

    async def _flush(self, items: List[tuple]) -> None:
        while items:
            batch, items = _first_per_id(items)
            await self._run(batch)

    async def _run(self, batch: List[tuple]) -> None:
        computes = {cid: compute for cid, compute, _f in batch}
        errors: Dict[str, BaseException] = {}

        def guarded(cid: str, old: Optional[Record]) -> Optional[Record]:
            errors.pop(cid, None)
            try:
                return computes[cid](cid, old)
            except Exception as exc:  # delivered to that caller only
                errors[cid] = exc
                return None

        try:
            written = await self.store.update(list(computes), guarded)
        except Exception as exc:  # a store failure fails every caller of the batch
            for _cid, _compute, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for cid, _compute, future in batch:
            if future.done():
                continue
            if cid in errors:
                future.set_exception(errors[cid])
            else:
                future.set_result(written.get(cid))


def _first_per_id(items: List[tuple]) -> tuple:
    """Split so that each ID appears once per batch; later duplicates wait their turn."""
    seen: Set[str] = set()
    batch, rest = [], []
    for item in items:
        (rest if item[0] in seen else batch).append(item)
        seen.add(item[0])
    return batch, rest
