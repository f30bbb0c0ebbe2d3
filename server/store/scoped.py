"""Records namespaced by (tenant, name): sessions and session templates (api.md §1.8, §6.1).

Each kind has its own sorted-set indexes (D1: listing never scans another kind)
whose members `tenant\\0name` sort exactly as (tenant or "", name) (D20).
Writes go through the same compare-and-set as components (D2).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set

from redis.asyncio import Redis

from . import keys
from .cas import MISSING, CasWriter, Write, digest
from .codec import dumps, loads
from .components import MAX_ROUNDS, TooMuchContention

Record = Dict[str, Any]


class ScopedStore:
    def __init__(self, redis: Redis, key: Callable[[Optional[str], str], str],
                 indexes: Callable[[Record], Set[str]], all_index: str,
                 tenant_index: Callable[[Optional[str]], str]) -> None:
        self.redis = redis
        self.key = key
        self.indexes = indexes
        self.all_index = all_index
        self.tenant_index = tenant_index
        self.cas = CasWriter(redis)

    async def get(self, tenant: Optional[str], name: str) -> Optional[Record]:
        raw = await self.get_raw(tenant, name)
        return loads(raw) if raw is not None else None

    async def get_raw(self, tenant: Optional[str], name: str) -> Optional[bytes]:
        """The record's JSON as stored (codec.dumps): what a GET answers, without decoding and
        encoding it again (a session names up to 100,000 components in one ~1.5 MB string)."""
        raw: Optional[bytes] = await self.redis.get(self.key(tenant, name))
        return raw

    async def members(self, index: str) -> List[str]:
        return [m.decode() for m in await self.redis.zrange(index, 0, -1)]

    async def list(self, tenant: Optional[str] = None, all_tenants: bool = True,
                   within: Optional[str] = None) -> List[Record]:
        """Records sorted by (tenant or "", name): every tenant's, or one tenant's; optionally ∩ `within`."""
        return await self.load(await self._listed(tenant, all_tenants, within))

    async def list_raw(self, tenant: Optional[str] = None, all_tenants: bool = True,
                       within: Optional[str] = None) -> List[bytes]:
        """list()'s records as stored (see get_raw)."""
        return await self.load_raw(await self._listed(tenant, all_tenants, within))

    async def _listed(self, tenant: Optional[str], all_tenants: bool, within: Optional[str]) -> List[str]:
        index = self.all_index if all_tenants else self.tenant_index(tenant)
        members = await self.members(index)
        if within is not None:
            allowed = set(await self.members(within))
            members = [m for m in members if m in allowed]
        return members

    async def load(self, members: Sequence[str]) -> List[Record]:
        return [loads(raw) for raw in await self.load_raw(members)]

    async def load_raw(self, members: Sequence[str]) -> List[bytes]:
        out: List[bytes] = []
        for start in range(0, len(members), 1000):
            part = members[start:start + 1000]
            raws = await self.redis.mget([self.key(*keys.split_member(m)) for m in part])
            out.extend(raw for raw in raws if raw is not None)
        return out

    async def create(self, record: Record, event: Optional[bytes] = None) -> bool:
        """Insert unless (tenant, name) exists, atomically; False if it existed.

        `event`: the change event to publish when it was inserted (by the same script, cas.py).
        """
        write = self._write(record, None, MISSING)
        return not await self.cas.apply([write], event=event)

    async def put(self, record: Record) -> None:
        await self.update(record.get("tenant"), record["name"], lambda _old: record, create=True)

    async def update(self, tenant: Optional[str], name: str, compute: Callable[[Record], Record],
                     create: bool = False) -> Optional[Record]:
        """Atomically replace the record with compute(current); None if it does not exist."""
        for _ in range(MAX_ROUNDS):
            raw = await self.redis.get(self.key(tenant, name))
            if raw is None and not create:
                return None
            old = loads(raw) if raw is not None else None
            new = compute(old)  # type: ignore[arg-type]  # None only when `create` (a new record)
            if not await self.cas.apply([self._write(new, old, digest(raw))]):
                return new
        raise TooMuchContention(f"{name} kept changing during the update")

    async def swap(self, old: Record, new: Record) -> bool:
        """Replace `old` (as read) with `new` unless it changed meanwhile."""
        return not await self.cas.apply([self._write(new, old, digest(dumps(old)))])

    async def delete_many(self, records: Iterable[Record], extra_keys: Callable[[Record], List[str]] = lambda r: []) -> None:
        records = list(records)
        writes = [self._write(None, r, digest(dumps(r))) for r in records]
        # Deleting what we read: a concurrent change makes that one record survive, which is safe,
        # as long as its companions (saved statuses) survive with it.
        survivors = set(await self.cas.apply(writes))
        extra = [k for i, r in enumerate(records) if i not in survivors for k in extra_keys(r)]
        if extra:
            await self.redis.delete(*extra)

    async def delete(self, tenant: Optional[str], name: str) -> bool:
        raw = await self.redis.get(self.key(tenant, name))
        if raw is None:
            return False
        old = loads(raw)
        return not await self.cas.apply([self._write(None, old, digest(raw))])

    def _write(self, new: Optional[Record], old: Optional[Record], expected: str) -> Write:
        ref = new if new is not None else old
        assert ref is not None
        tenant, name = ref.get("tenant"), ref["name"]
        old_idx = self.indexes(old) if old is not None else set()
        new_idx = self.indexes(new) if new is not None else set()
        return Write(self.key(tenant, name), keys.scoped_member(tenant, name), expected,
                     dumps(new) if new is not None else None,
                     tuple(old_idx - new_idx), tuple(new_idx - old_idx))


def session_indexes(record: Record) -> Set[str]:
    tenant = record.get("tenant")
    found = {keys.SESSIONS, keys.sessions_by_name(record["name"]), keys.sessions_by_tenant(tenant)}
    status = (record.get("status") or {}).get("status")
    if status:
        found.add(keys.sessions_by_status(status))
    return found


def template_indexes(record: Record) -> Set[str]:
    return {keys.TEMPLATES, keys.templates_by_tenant(record.get("tenant"))}


def session_store(redis: Redis) -> ScopedStore:
    return ScopedStore(redis, keys.session, session_indexes, keys.SESSIONS, keys.sessions_by_tenant)


def template_store(redis: Redis) -> ScopedStore:
    return ScopedStore(redis, keys.template, template_indexes, keys.TEMPLATES, keys.templates_by_tenant)
