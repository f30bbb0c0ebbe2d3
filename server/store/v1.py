"""v1 sessions and their status trees in Redis (v1.md §2.3-§2.4).

A status tree is stored as sets, not as one document: every category of every
phase is a sorted set of node IDs and each phase's `errors` is a sorted set of
`message\\x00node`. A node moving between categories is then two O(log N)
commands, errors merge by union (L17), and the computed metadata
(`error_count`, `complete`, `in_progress`) is a handful of ZCARDs, whatever
the number of nodes: a 10,000-node session status costs what a 10-node one does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from redis.asyncio import Redis

from bos_shared.schema_v1 import BOA_CATEGORY_ORDER, CATEGORIES

from . import keys
from .codec import dumps, loads

Record = Dict[str, Any]
TIMES = ("start_time", "stop_time")


def agent_time() -> str:
    """The agent's time format (v1.md §1.1): `YYYY-MM-DD HH:MM:SS.ffffff`, UTC, no zone."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def server_time() -> str:
    """The server's format for a session status created with the session (v1.md §1.1)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _field(phase: Optional[str], name: str) -> str:
    """Boot-set hash field of a time: `start_time` for the boot set, `boot.start_time` for a phase."""
    return f"{phase}.{name}" if phase else name


class V1Store:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    # -- session records --

    async def create_session(self, record: Record, start_time: str) -> None:
        sid = record["id"]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.v1_session(sid), dumps(record))
            pipe.zadd(keys.V1_SESSIONS, {sid: 0})
            pipe.zadd(keys.V1_ACTIVE, {sid: 0})
            pipe.hset(keys.v1_status(sid), "start_time", start_time)
            await pipe.execute()

    async def get_session(self, sid: str) -> Optional[Record]:
        raw = await self.redis.get(keys.v1_session(sid))
        return loads(raw) if raw is not None else None

    async def session_ids(self) -> List[str]:
        return [_text(m) for m in await self.redis.zrange(keys.V1_SESSIONS, 0, -1)]

    async def active_ids(self) -> List[str]:
        return [_text(m) for m in await self.redis.zrange(keys.V1_ACTIVE, 0, -1)]

    async def deactivate(self, sid: str) -> None:
        await self.redis.zrem(keys.V1_ACTIVE, sid)

    async def delete_session(self, sid: str) -> bool:
        """The record, its whole status tree and the agent's state; False if there was none."""
        removed = await self.redis.delete(keys.v1_session(sid))
        await self.delete_status(sid)
        await self.redis.delete(keys.v1_agent(sid), keys.v1_in_flight(sid))
        await self.redis.zrem(keys.V1_ACTIVE, sid)
        await self.redis.zrem(keys.V1_SESSIONS, sid)
        return bool(removed)

    # -- session status --

    async def status_exists(self, sid: str) -> bool:
        return bool(await self.redis.exists(keys.v1_status(sid)))

    async def create_status(self, sid: str, boot_sets: Sequence[str], start_time: str) -> bool:
        """False if a status exists (409); `boot_sets` recorded in order."""
        if not await self.redis.hsetnx(keys.v1_status(sid), "start_time", start_time):
            return False
        for name in dict.fromkeys(boot_sets):
            await self.redis.rpush(keys.v1_status_boot_sets(sid), name)
        return True

    async def status_fields(self, sid: str) -> Optional[Dict[str, str]]:
        raw = await self.redis.hgetall(keys.v1_status(sid))
        if not raw:
            return None
        return {_text(k): _text(v) for k, v in raw.items()}

    async def set_status_field(self, sid: str, name: str, value: str, first_wins: bool = True) -> None:
        if first_wins:
            await self.redis.hsetnx(keys.v1_status(sid), name, value)
        else:
            await self.redis.hset(keys.v1_status(sid), name, value)

    async def boot_set_names(self, sid: str) -> List[str]:
        return [_text(m) for m in await self.redis.lrange(keys.v1_status_boot_sets(sid), 0, -1)]

    async def session_error_count(self, sid: str, boot_sets: Sequence[str]) -> int:
        layouts = await self.layouts(sid, boot_sets)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name, layout in layouts.items():
                for phase in layout["phases"]:
                    pipe.zcard(keys.v1_category(sid, name, phase["name"], "failed"))
            counts = await pipe.execute()
        return sum(counts)

    async def delete_status(self, sid: str) -> bool:
        existed = await self.status_exists(sid)
        for name in await self.boot_set_names(sid):
            await self.delete_boot_set(sid, name)
        await self.redis.delete(keys.v1_status(sid), keys.v1_status_boot_sets(sid))
        return existed

    # -- boot-set status --

    async def layouts(self, sid: str, boot_sets: Iterable[str]) -> Dict[str, Record]:
        names = list(boot_sets)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hget(keys.v1_boot_set(sid, name), "layout")
            raws = await pipe.execute()
        return {n: loads(r) for n, r in zip(names, raws) if r is not None}

    async def layout(self, sid: str, boot_set: str) -> Optional[Record]:
        return (await self.layouts(sid, [boot_set])).get(boot_set)

    async def create_boot_set(self, sid: str, boot_set: str, phases: Sequence[Mapping[str, Any]],
                              times: Mapping[str, str]) -> bool:
        """False if it exists (409). `phases`: name, categories {name: nodes} in order, errors, times."""
        layout = {"phases": [{"name": p["name"], "categories": _category_order(p["categories"])}
                             for p in phases]}
        key = keys.v1_boot_set(sid, boot_set)
        if not await self.redis.hsetnx(key, "layout", dumps(layout)):
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            for name, stamp in times.items():
                pipe.hset(key, name, stamp)
            for phase in phases:
                for category, nodes in phase["categories"].items():
                    if nodes:
                        pipe.zadd(keys.v1_category(sid, boot_set, phase["name"], category), dict.fromkeys(nodes, 0))
                for message, nodes in (phase.get("errors") or {}).items():
                    if nodes:
                        pipe.zadd(keys.v1_errors(sid, boot_set, phase["name"]),
                                  {f"{message}\x00{n}": 0 for n in nodes})
                for time_name in TIMES:
                    value = (phase.get("metadata") or {}).get(time_name)
                    if value:
                        pipe.hset(key, _field(phase["name"], time_name), value)
            pipe.lrem(keys.v1_status_boot_sets(sid), 0, boot_set)
            pipe.rpush(keys.v1_status_boot_sets(sid), boot_set)
            await pipe.execute()
        return True

    async def boot_set_times(self, sid: str, boot_set: str) -> Dict[str, str]:
        raw = await self.redis.hgetall(keys.v1_boot_set(sid, boot_set))
        return {_text(k): _text(v) for k, v in raw.items() if _text(k) != "layout"}

    async def set_time(self, sid: str, boot_set: str, phase: Optional[str], name: str, value: Optional[str],
                       first_wins: bool = False) -> None:
        key, field = keys.v1_boot_set(sid, boot_set), _field(phase, name)
        if value is None:
            await self.redis.hdel(key, field)
        elif first_wins:
            await self.redis.hsetnx(key, field, value)
        else:
            await self.redis.hset(key, field, value)

    async def category_counts(self, sid: str, boot_set: str, layout: Mapping[str, Any]) -> Dict[Tuple[str, str], int]:
        pairs = [(p["name"], c) for p in layout["phases"] for c in p["categories"]]
        async with self.redis.pipeline(transaction=False) as pipe:
            for phase, category in pairs:
                pipe.zcard(keys.v1_category(sid, boot_set, phase, category))
            counts = await pipe.execute()
        return dict(zip(pairs, counts))

    async def nodes(self, sid: str, boot_set: str, phase: str, category: str) -> List[str]:
        return [_text(m) for m in await self.redis.zrange(keys.v1_category(sid, boot_set, phase, category), 0, -1)]

    async def errors(self, sid: str, boot_set: str, phase: str) -> Dict[str, List[str]]:
        out: Dict[str, List[str]] = {}
        for member in await self.redis.zrange(keys.v1_errors(sid, boot_set, phase), 0, -1):
            message, _, node = _text(member).rpartition("\x00")
            out.setdefault(message, []).append(node)
        return out

    async def move(self, sid: str, boot_set: str, phase: str, source: str, destination: str,
                   nodes: Sequence[str]) -> None:
        """NodeChangeList: remove from `source`, add to `destination` (sets; v1.md §2.4)."""
        if source == destination or not nodes:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.v1_category(sid, boot_set, phase, source), *nodes)
            pipe.zadd(keys.v1_category(sid, boot_set, phase, destination), dict.fromkeys(nodes, 0))
            await pipe.execute()

    async def add_errors(self, sid: str, boot_set: str, phase: str, errors: Mapping[str, Sequence[str]]) -> None:
        members = {f"{m}\x00{n}": 0 for m, nodes in errors.items() for n in nodes}
        if members:
            await self.redis.zadd(keys.v1_errors(sid, boot_set, phase), members)

    async def delete_boot_set(self, sid: str, boot_set: str) -> bool:
        layout = await self.layout(sid, boot_set)
        if layout is None:
            return False
        doomed = [keys.v1_boot_set(sid, boot_set)]
        for phase in layout["phases"]:
            doomed.append(keys.v1_errors(sid, boot_set, phase["name"]))
            doomed += [keys.v1_category(sid, boot_set, phase["name"], c) for c in CATEGORIES]
        await self.redis.delete(*doomed)
        await self.redis.lrem(keys.v1_status_boot_sets(sid), 0, boot_set)
        return True


def _category_order(categories: Mapping[str, Any]) -> List[str]:
    """Categories as created, then the missing ones in BOA's order (v1.md §2.4)."""
    order = [c for c in categories if c in CATEGORIES]
    return order + [c for c in BOA_CATEGORY_ORDER if c not in order]


# -- the agent's book-keeping (operators/v1_agent.py) --

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class AgentState:
    """Progress of the agent through one session, in Redis so any operator replica can resume it (L13)."""

    def __init__(self, redis: Redis, sid: str) -> None:
        self.redis = redis
        self.sid = sid
        self.key = keys.v1_agent(sid)
        self.flight = keys.v1_in_flight(sid)

    async def get(self, *names: str) -> List[Optional[str]]:
        return [None if v is None else _text(v) for v in await self.redis.hmget(self.key, list(names))]

    async def set(self, values: Mapping[str, str]) -> None:
        if values:
            await self.redis.hset(self.key, mapping=dict(values))

    async def failing_since(self, now: float) -> float:
        """When the current run of failures began (recorded now if it just began)."""
        await self.redis.hsetnx(self.key, "failing_since", str(now))
        raw = await self.redis.hget(self.key, "failing_since")
        return float(_text(raw)) if raw is not None else now

    async def clear_failure(self) -> None:
        await self.redis.hdel(self.key, "failing_since")

    async def add_in_flight(self, members: Iterable[str]) -> None:
        members = list(members)
        if members:
            await self.redis.zadd(self.flight, dict.fromkeys(members, 0))

    async def in_flight(self) -> List[str]:
        return [_text(m) for m in await self.redis.zrange(self.flight, 0, -1)]

    async def land(self, members: Sequence[str]) -> None:
        if members:
            await self.redis.zrem(self.flight, *members)


async def place(store: V1Store, sid: str, boot_set: str, phase: str, category: str, nodes: Sequence[str]) -> None:
    """Put `nodes` in `category` of a phase and in no other category of it."""
    if not nodes:
        return
    async with store.redis.pipeline(transaction=True) as pipe:
        for other in CATEGORIES:
            if other != category:
                pipe.zrem(keys.v1_category(sid, boot_set, phase, other), *nodes)
        pipe.zadd(keys.v1_category(sid, boot_set, phase, category), dict.fromkeys(nodes, 0))
        await pipe.execute()


async def take_lock(redis: Redis, token: str, seconds: int) -> bool:
    return bool(await redis.set(keys.V1_AGENT_LOCK, token, nx=True, ex=seconds))


async def release_lock(redis: Redis, token: str) -> None:
    await redis.eval(_RELEASE, 1, keys.V1_AGENT_LOCK, token)
