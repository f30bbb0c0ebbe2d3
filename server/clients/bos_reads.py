"""Component reads straight from the store, for operators that share the API's Redis
(operators.md §2.3, extension; docs/deviations.md). Used by BosClient when the
operators are given the API's Redis URL.

At 100,000 nodes a boot's status passes and chunk re-reads asked the API for about five
records per node, and the API spent a sixth of its CPU decoding, viewing and encoding them
for the operators, which then decoded them again (issue 13). Read from Redis, the records
are the very ones the API's listing returns (`view`: computed status, no token timestamp),
chosen by the same query (`ComponentQuery`) over the same indexes, with one decode instead
of three. Every write still goes through the API (validation, compare-and-set, history,
change events), so this changes no rule of the state machine.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Dict, Iterable, List, Optional, Sequence, Set, Tuple, cast

import msgspec

from bos_shared.records import Component

from ..component_writes import view_in_place as view
from ..store import keys, write_feed
from ..store.component_query import POWER_OFF_CALLED, ComponentQuery
from ..store.components import ComponentStore
from ..store.events import Events
from ..store.scoped import session_store

# The listing filters the store reader serves; anything else goes to the API.
FILTERS = frozenset({"enabled", "status", "session", "staged_session", "phase"})


def store_query(page_size: int = 0, start_after: Optional[str] = None, **filters: Any) -> Optional[ComponentQuery]:
    """The ComponentQuery of `GET /v2/components` with these filters (api.md §3.3.1), or None
    when a filter is one the store reader does not serve."""
    given = {k: v for k, v in filters.items() if v is not None}
    if set(given) - FILTERS:
        return None
    status = given.get("status")
    statuses = [s.strip() for s in str(status).split(",") if s.strip()] if status is not None else None
    enabled = given.get("enabled")
    return ComponentQuery(session=given.get("session"), staged_session=given.get("staged_session"),
                          enabled=None if enabled is None else enabled is True or str(enabled).lower() == "true",
                          phase=given.get("phase") or None, statuses=statuses, start_after=start_after,
                          page_size=max(0, page_size))


def membership_keys(query: ComponentQuery) -> Optional[List[str]]:
    """The indexes whose intersection is exactly `query`'s matches, or None when a filter is not
    an index membership (IDs, `enabled=false`, several statuses, a page position, a time)."""
    if (query.ids is not None or query.start_after is not None or query.actual_before is not None
            or query.enabled is False or (query.statuses is not None and len(query.statuses) != 1)):
        return None
    found = [keys.by_session(query.session)] if query.session is not None else []
    if query.staged_session is not None:
        found.append(keys.by_staged_session(query.staged_session))
    if query.enabled is True:
        found.append(keys.COMPONENT_ENABLED)
    if query.phase:
        found.append(keys.by_phase(query.phase))
    if query.statuses is not None:
        found.append(keys.by_status(query.statuses[0]))
    return found or None


def _texts(members: Sequence[Any]) -> Iterable[str]:
    """Index members as text: bytes decoded in one C-level map (the power operators list up to
    every enabled component's ID per pass), anything else as its str()."""
    try:
        return list(map(bytes.decode, members))
    except TypeError:  # a client that already decodes its replies
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]


class _LastAction(msgspec.Struct):
    """The one field of a stored record that power-off-forceful's wait reads (the rest is skipped)."""

    last_action: Any = None


_LAST_ACTION = msgspec.json.Decoder(_LastAction)


class _SessionHead(msgspec.Struct):
    """The fields of a stored session the operators' per-pass session reads use (the wave gate,
    session completion): everything but its `components` string, which the decoder skips."""

    name: str
    tenant: Any = None
    operation: Any = None
    template_name: Any = None
    status: Any = None
    max_in_flight: Any = None
    max_failed: Any = None


_SESSION_HEAD = msgspec.json.Decoder(_SessionHead)


class _StatusFields(msgspec.Struct):
    """The fields of a stored record that the status operator reads (status_rules: the desired and
    actual states, the last action, the status and error; `enabled`, its listing's filter). The
    rest (staged state, event stats, session, retry policy) is skipped unread."""

    id: str
    enabled: Any = None
    desired_state: Any = None
    actual_state: Any = None
    last_action: Any = None
    status: Any = None
    error: Any = None


_STATUS_FIELDS = msgspec.json.Decoder(_StatusFields)
_as_dict = msgspec.structs.asdict


class _ActingFields(msgspec.Struct):
    """The fields of a stored record that the power operators read once they hold it (their
    listing's filters, the retry gate and decision version, §2.4-§2.5: event stats, retry policy,
    error, session; power-on's desired boot and configuration; power-off-forceful's last action
    stamp). The actual and staged states are skipped unread."""

    id: str
    enabled: Any = None
    desired_state: Any = None
    last_action: Any = None
    status: Any = None
    error: Any = None
    event_stats: Any = None
    session: Any = None
    retry_policy: Any = None


_ACTING_FIELDS = msgspec.json.Decoder(_ActingFields)


def status_fields(raw: bytes) -> Dict[str, Any]:
    """A stored record as the status rules read it: `_StatusFields` (None for a field it lacks, as a
    dict read with `.get`), a field the stored form marks absent (record_form.ABSENT) None too.
    The status and error the stored form leaves out (their defaults) read as None, which every
    rule reads as the default (`or {}`, `or ""`); artifact references are expanded by the caller.
    A full decode (orjson, `unpack`, the listing's view) of every record the status operator
    re-read was a seventh of the operators' CPU in a 100,000-node boot (issue 13): this is half
    its cost per record."""
    return _slim(_STATUS_FIELDS, raw, ("status", "error"))


def acting_fields(raw: bytes) -> Dict[str, Any]:
    """A stored record as the power operators read it after their claim: `_ActingFields` (None for
    a field it lacks, as a dict read with `.get`); the status, error and event stats the stored
    form leaves out or marks absent (record_form) None too, which every reader takes as the
    default (`or {}`, `or ""`, `or 0`). A full decode and view of each record power-on (and, in a
    reboot, power-off-graceful) re-read under its claim was most of the cost of that re-read in a
    20,000-node boot (issue 13); this is under half of it."""
    return _slim(_ACTING_FIELDS, raw, ("status", "error", "event_stats"))


def _slim(decoder: "msgspec.json.Decoder[Any]", raw: bytes, defaulted: Tuple[str, ...]) -> Dict[str, Any]:
    """`raw` decoded by one of the slim Structs, as a dict; each of the `defaulted` fields that the
    stored form marks absent (an int: record_form.ABSENT) None."""
    record = _as_dict(decoder.decode(raw))
    for name in defaulted:
        if type(record[name]) is int:
            record[name] = None
    return record


def last_updated(raw: bytes) -> Optional[str]:
    """`last_action.last_updated` of a stored record, decoded alone; None when it has none, or
    the stored value is not the JSON object this decoder knows (the caller then reads it in full)."""
    try:
        action = _LAST_ACTION.decode(raw).last_action
    except msgspec.DecodeError:  # ValidationError included
        return None
    stamp = action.get("last_updated") if isinstance(action, dict) else None
    return stamp if isinstance(stamp, str) else None


class StoreReads:
    """`GET /v2/components` answers computed from Redis (the records, not the HTTP round trip).

    Records come with their boot-artifact sets shared (`ComponentStore.decode(shared=True)`):
    the operators read them and build new patches, never modify a record's artifact dict in
    place, and a copy of each set per record read was 7 % of the operators' CPU in a 30k boot."""

    def __init__(self, redis: Any) -> None:
        self.store = ComponentStore(redis, Events(redis))  # reads only: nothing is published
        self.sessions = session_store(redis)

    async def components_by_ids(self, ids: Sequence[str], query: ComponentQuery) -> List[Component]:
        """The records of `ids` matching `query`, in ID order (unknown IDs omitted)."""
        found: List[Component] = []
        if not ids:
            return found
        async for chunk in self.store.iter_query(query, list(ids), shared=True):
            found.extend(cast(Component, view(r)) for r in chunk)
        return found

    async def fingerprints(self, ids: Sequence[str]) -> List[Optional[int]]:
        """A hash of each stored record (None: absent), without decoding it: the status operator
        tells from it that a component it left waiting was not written since (operators.md §3.1)."""
        return [None if raw is None else hash(raw) for raw in await self.store.get_raw_many(ids)]

    async def written_since(self, last: Optional[str]) -> Tuple[Optional[str], Optional[Set[str]]]:
        """The IDs written after the write feed's entry `last`, and its position now (write_feed.py)."""
        return await write_feed.written_since(self.store.redis, last)

    async def action_stamps(self, ids: Sequence[str]) -> Dict[str, Optional[str]]:
        """Each stored record's `last_action.last_updated` (None: it has none; absent records are
        left out), without decoding the rest: power-off-forceful learns when a new candidate can
        be due from it (operators.md §5.3). A full read of each candidate was most of that
        operator's CPU in a 30,000-node reboot (issue 13)."""
        return {cid: last_updated(raw) for cid, raw in zip(ids, await self.store.get_raw_many(ids))
                if raw is not None}

    async def acting_records(self, ids: Sequence[str], query: ComponentQuery) -> List[Component]:
        """components_by_ids for the power operators' re-read under their claim: each record holds
        the fields `acting_fields` keeps (artifact sets expanded, shared), not the listing's view of
        the whole record; in full for a query that reads a field those leave out."""
        if query.session is not None or query.staged_session is not None or query.actual_before is not None:
            return await self.components_by_ids(ids, query)
        raws = await self.store.get_raw_many(sorted(set(ids)))
        records = [None if raw is None else acting_fields(raw) for raw in raws]
        await self.store.blobs.expand(records, shared=True)
        return [cast(Component, r) for r in records if r is not None and query.matches(r)]

    async def components_with_prints(self, ids: Sequence[str],
                                     query: ComponentQuery) -> Tuple[List[Component], Dict[str, int]]:
        """components_by_ids, plus the fingerprint of the very version of each record returned.
        The records are the status operator's: with its listing's filters (`enabled`, phase,
        status), each holds the fields its rules read alone (`status_fields`), not the listing's
        view of the whole record."""
        ids = sorted(set(ids))
        raws = await self.store.get_raw_many(ids)
        found: List[Component] = []
        prints: Dict[str, int] = {}
        for cid, raw, record in zip(ids, raws, await self._status_records(raws, query)):
            if record is not None and raw is not None and query.matches(record):
                found.append(cast(Component, record))
                prints[cid] = hash(raw)
        return found, prints

    async def _status_records(self, raws: Sequence[Optional[bytes]], query: ComponentQuery) -> List[Any]:
        """`raws` decoded to `status_fields`, artifact sets expanded (shared); or in full, as the
        listing shows them, for a query that reads a field those leave out (session, staged
        session, report time)."""
        if query.session is not None or query.staged_session is not None or query.actual_before is not None:
            return [None if r is None else view(r) for r in await self.store.decode(raws, shared=True)]
        records = [None if raw is None else status_fields(raw) for raw in raws]
        await self.store.blobs.expand(records, shared=True)
        return records

    async def exists(self, query: ComponentQuery) -> Optional[bool]:
        """Whether any component matches `query`, from the indexes alone when every filter is an
        index membership (session, staged session, `enabled=true`, phase, one status): one
        ZINTERCARD with LIMIT 1, no record read. None when a filter needs the records. The
        session-completion operator asks this on every pass while a session runs; the page of 1
        it asked for decoded a whole read chunk (1,000 records) to find its first match."""
        members = membership_keys(query)
        if members is None:
            return None
        return int(await self.store.redis.zintercard(len(members), members, limit=1)) > 0

    async def all_ids(self) -> List[str]:
        """Every component's ID, ascending, from the ID index alone (no record read or decoded)."""
        return await self.store.ids_in(keys.COMPONENT_IDS)

    async def enabled_ids_in(self, statuses: Sequence[str]) -> List[str]:
        """IDs of the enabled components in any of `statuses`, ascending, from the indexes alone
        (no record is read or decoded): each status index's members less those not enabled, read
        together (MULTI): `enabled_members`."""
        found: List[str] = []
        for status in statuses:
            found.extend(await self.enabled_members(keys.by_status(status)))
        # sorted, then each once (a component that moved between two statuses during the reads is
        # in both): the members come in index order, which a sort takes in linear time, where
        # sorting a set of 100,000 IDs cost each power operator's pass a whole sort
        found.sort()
        return found if len(statuses) <= 1 else list(dict.fromkeys(found))

    async def enabled_members(self, index: str) -> List[str]:
        """The members of `index` that are enabled, in index order: ZRANGE of `index` less its ZDIFF
        with the enabled index (members not enabled: few, as a disabled component keeps a power
        status only when stopped in flight), in one MULTI so both see the same instant. A ZINTER
        with the enabled index gave the same members, but built them into a sorted set of its own
        first: at 100,000 nodes in flight (a reboot's `power_off_gracefully_called`, listed by
        power-off-forceful at every pass) that cost Redis ~5x the ZRANGE and the ZDIFF together
        (issue 13)."""
        async with self.store.redis.pipeline(transaction=True) as pipe:
            pipe.zrange(index, 0, -1)
            pipe.zdiff([index, keys.COMPONENT_ENABLED])
            members, disabled = await pipe.execute()
        if disabled:
            left = frozenset(disabled)
            members = [m for m in members if m not in left]
        return list(_texts(members))

    async def power_off_due(self, cutoff: float) -> Tuple[List[str], Optional[float]]:
        """(the enabled components waiting on a power-off call whose last action was stamped before
        `cutoff` (epoch s) or not at all, the earliest stamp at or after it: None if there is none),
        from the score index keys.COMPONENT_POWER_OFF_STAMP alone, in one MULTI. power-off-forceful
        listed every candidate at every pass instead, and a reboot's passes grow with its length:
        13 passes over up to 100,000 IDs at 100,000 nodes, against 2 over 10,000 (issue 13)."""
        index = keys.COMPONENT_POWER_OFF_STAMP
        async with self.store.redis.pipeline(transaction=True) as pipe:
            pipe.zrangebyscore(index, "-inf", f"({cutoff!r}")
            pipe.zrangebyscore(index, repr(cutoff), "+inf", start=0, num=1, withscores=True)
            due, after = await pipe.execute()
        return list(_texts(due)), (float(after[0][1]) if after else None)

    async def missing_from_power_off_index(self) -> List[str]:
        """The enabled components in a power-off-called status (component_query.POWER_OFF_CALLED)
        that the score index keys.COMPONENT_POWER_OFF_STAMP lacks, ascending: each status index less
        that index (ZDIFF, in Redis: no ID of the index's members is sent), then those not enabled
        left out. Empty unless a record was written by a version without that index (a rolling
        update) or before it: the power-off-forceful's full look (docs/deploy.md)."""
        async with self.store.redis.pipeline(transaction=True) as pipe:
            for status in POWER_OFF_CALLED:
                pipe.zdiff([keys.by_status(status), keys.COMPONENT_POWER_OFF_STAMP])
            found = sorted(set().union(*map(_texts, await pipe.execute())))
        if not found:
            return found
        scores = await self.store.redis.zmscore(keys.COMPONENT_ENABLED, found)
        return [cid for cid, score in zip(found, scores) if score is not None]

    async def session_heads(self, status: Optional[str]) -> List[Dict[str, Any]]:
        """Every tenant's sessions (in `status`, if given), in the listing's order, each without
        its `components` string (`_SessionHead`). That string names every node of a running
        session (~1.4 MB at 100,000 nodes); the wave gate lists the pending and running sessions
        for their caps at every pass and hand-over, and reads nothing of it (issue 13)."""
        index = keys.sessions_by_status(status) if status else keys.SESSIONS
        raws = await self.sessions.load_raw(await self.sessions.members(index))  # the API listing's reads
        return [msgspec.structs.asdict(_SESSION_HEAD.decode(raw)) for raw in raws]

    async def session_names(self, status: Optional[str] = None) -> List[Tuple[Optional[str], str]]:
        """(tenant, name) of every tenant's session (in `status`, if given), from the sessions index
        (or that status's) alone, in its order (its members are `tenant\\0name`): no record is read.
        Session completion tells tenant sessions sharing a running session's name (D25) from them
        on every pass; it read every stored session for that, each naming its nodes (~1.7 MB at
        100,000 nodes), completed ones included (issue 13). It lists the running sessions with
        this too: it reads nothing else of them."""
        index = keys.sessions_by_status(status) if status else keys.SESSIONS
        return [keys.split_member(m) for m in await self.sessions.members(index)]

    async def pages(self, query: ComponentQuery) -> AsyncIterator[List[Component]]:
        """The whole listing of `query` as chunks (the store's read size), ID order."""
        async for chunk in self.store.iter_query(query, shared=True):
            yield [cast(Component, view(r)) for r in chunk]
