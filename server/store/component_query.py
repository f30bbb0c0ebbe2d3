"""Query planning for components (D1): which indexes a record belongs to, what a listing
asks for, and the walk of the smallest applicable index in ID order.

Each record is one JSON string. Sorted-set indexes (members scored 0, read
lexicographically) exist for: all IDs, enabled, session, staged session, phase,
computed status and "has an error"; a score index holds when the actual state was last
reported, another when each enabled component waiting on a power-off call was last acted on.
A listing walks the smallest index that applies, in ID order from `start_after_id`, and
checks every filter on the decoded record, so results are exactly those of the unindexed
definition.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, AsyncIterator, Dict, FrozenSet, List, Optional, Sequence, Tuple

from redis.asyncio import Redis

from bos_shared.components import has_artifacts
from bos_shared.status import component_status
from bos_shared.times import epoch

from . import keys

Record = Dict[str, Any]
SCAN_CHUNK = 1000


Facets = Tuple[str, bool, str, str, str, bool]
# The computed statuses power-off-forceful waits on (operators.md §5.3): an enabled component in one
# is in the score index keys.COMPONENT_POWER_OFF_STAMP, scored by when its last action was stamped
POWER_OFF_CALLED = ("power_off_gracefully_called", "power_off_forcefully_called")


def index_facets(record: Record) -> Facets:
    """What a record's index membership depends on: equal facets, equal indexes."""
    return (component_status(record), record.get("enabled") is True, record.get("session") or "",
            (record.get("staged_state") or {}).get("session") or "", (record.get("status") or {}).get("phase") or "",
            bool(record.get("error")))


@functools.lru_cache(maxsize=4096)
def facet_keys(facets: Facets) -> FrozenSet[str]:
    """The indexes of records with these facets (a bulk write has few distinct ones)."""
    status, enabled, session, staged, phase, errored = facets
    found = {keys.COMPONENT_IDS, keys.by_status(status)}
    if enabled:
        found.add(keys.COMPONENT_ENABLED)
    if session:
        found.add(keys.by_session(session))
    if staged:
        found.add(keys.by_staged_session(staged))
    if phase:
        found.add(keys.by_phase(phase))
    if errored:
        found.add(keys.COMPONENT_ERRORED)
    return frozenset(found)


def index_keys(record: Record) -> FrozenSet[str]:
    """The indexes a record belongs to."""
    return facet_keys(index_facets(record))


# Timestamps are whole seconds and a bulk write stamps every record alike: parsing each
# distinct one once saves a regex and a datetime per record read and written.
_epoch = functools.lru_cache(maxsize=4096)(epoch)


def stamp_score(stamp: Any) -> float:
    """A record's timestamp as an index score (0: absent or not a time)."""
    return (_epoch(stamp) if isinstance(stamp, str) else epoch(stamp)) or 0


def _actual_stamp(record: Record) -> Optional[float]:
    """The score of COMPONENT_ACTUAL_STAMP (None: not in it, no actual boot artifacts)."""
    actual = record.get("actual_state")
    if not isinstance(actual, dict) or not has_artifacts(actual.get("boot_artifacts")):
        return None
    return stamp_score(actual.get("last_updated"))


def scored_indexes(record: Record) -> Dict[str, float]:
    """Score indexes of a record: when its actual boot was last reported (for cleanup, §4.2); when
    its last action was, while it is enabled and waiting on a power-off call (power-off-forceful)."""
    scored: Dict[str, float] = {}
    actual = _actual_stamp(record)
    if actual is not None:
        scored[keys.COMPONENT_ACTUAL_STAMP] = actual
    if record.get("enabled") is True and component_status(record) in POWER_OFF_CALLED:
        scored[keys.COMPONENT_POWER_OFF_STAMP] = stamp_score((record.get("last_action") or {}).get("last_updated"))
    return scored


def actual_state_older_than(record: Record, cutoff: float) -> bool:
    stamp = _actual_stamp(record)
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


async def explicit_chunks(ids: List[str], start_after: Optional[str]) -> AsyncIterator[List[str]]:
    """Explicit candidate IDs (sorted) after `start_after`, in chunks, like an index walk."""
    if start_after is not None:
        ids = [i for i in ids if i > start_after]
    for start in range(0, len(ids), SCAN_CHUNK):
        yield ids[start:start + SCAN_CHUNK]


async def smallest_driver(redis: Redis, q: ComponentQuery) -> List[str]:
    options = q.drivers()
    async with redis.pipeline(transaction=False) as pipe:
        for option in options:
            for key in option:
                pipe.zcard(key)
        sizes = iter(await pipe.execute())
    totals = [sum(next(sizes) for _ in option) for option in options]
    return options[totals.index(min(totals))]

async def walk(redis: Redis, index_keys_: List[str], start_after: Optional[str]) -> AsyncIterator[List[str]]:
    """IDs of the union of sorted sets, ascending, after `start_after`, in chunks."""
    if len(index_keys_) == 1:
        async for chunk in walk_one(redis, index_keys_[0], start_after):
            yield chunk
        return
    # Several status indexes: merge their ordered streams.
    cursors = [walk_one(redis, key, start_after) for key in index_keys_]
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

async def enabled_page(redis: Redis, start_after: Optional[str], count: int) -> List[str]:
    """Up to `count` (0 = all) IDs of enabled components after `start_after`, ascending: the
    status operator's paging, which reads the records only after claiming them."""
    lower = b"-" if start_after is None else b"(" + start_after.encode()
    found = await redis.zrange(keys.COMPONENT_ENABLED, lower, b"+", bylex=True,
                               offset=0 if count > 0 else None, num=count if count > 0 else None)
    try:
        return list(map(bytes.decode, found))  # one C-level map: every pass pages through every enabled ID
    except TypeError:  # a client that already decodes its replies
        return [i.decode() if isinstance(i, bytes) else str(i) for i in found]


async def enabled_among(redis: Redis, ids: Sequence[str]) -> List[str]:
    """Those of `ids` that are enabled now, in their order (ZMSCORE on the enabled index): how the
    status operator keeps its listing of enabled IDs up to date from the write feed's IDs."""
    if not ids:
        return []
    scores = await redis.zmscore(keys.COMPONENT_ENABLED, list(ids))
    return [cid for cid, score in zip(ids, scores) if score is not None]


async def walk_one(redis: Redis, key: str, start_after: Optional[str]) -> AsyncIterator[List[str]]:
    lower = b"-" if start_after is None else b"(" + start_after.encode()
    while True:
        chunk = await redis.zrange(key, lower, b"+", bylex=True, offset=0, num=SCAN_CHUNK)
        if not chunk:
            return
        ids = [c.decode() for c in chunk]
        yield ids
        if len(ids) < SCAN_CHUNK:
            return
        lower = b"(" + chunk[-1]
