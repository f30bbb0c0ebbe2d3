"""The store's Redis client: what is safe to repeat is repeated when a connection drops.

After Redis restarts, every pooled connection is dead; the first command on each
fails with "Connection closed by server." although the new server is up. Those
commands never reached it, but in general a dropped connection does not say
whether the command ran (Redis may have died after executing it), so a command is
repeated only when running it twice has the effect and the reply of running it
once:

- reads (GET, MGET, ZRANGE, ...) and PING;
- a plain SET (no NX/XX/GET): it writes the same value again;
- scripts registered as retry-safe: the compare-and-set script carries a receipt
  key, so a replay of a write that did run returns the recorded outcome instead
  of applying it again or reporting a conflict with itself (`cas.py`);
- pipelines made only of the above.

Everything else (DEL, HSETNX, RPUSH, PUBLISH, other scripts) fails as before, and
the API answers 503. On the first dropped connection the pool's idle
connections are closed too (they are as dead as the one that failed), then
attempts are repeated with a short back-off within RETRY_BUDGET seconds: enough
to replace every dead pooled connection and ride out a short `-LOADING`, short
enough that during a real outage each command still fails within about a second. Time-outs are not repeated: the command may still be
running.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Iterable, List, Optional, Sequence, Set, Tuple, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import AuthenticationError, AuthorizationError, ConnectionError as RedisConnectionError, NoScriptError

from .. import random_ids
from .keys import cas_receipt
from .packing import HiredisPackingConnection

T = TypeVar("T")
RETRY_BUDGET = 1.0
FIRST_DELAY, MAX_DELAY = 0.02, 0.5
KEPT_CONNECTIONS = 8  # idle connections a client keeps aside for its scripts (RetryingRedis.script_connections)

READS = frozenset({
    "GET", "MGET", "EXISTS", "TYPE", "TTL", "PTTL", "STRLEN",
    "HGET", "HMGET", "HGETALL", "HEXISTS", "HLEN", "HKEYS", "HVALS",
    "LRANGE", "LLEN", "LINDEX", "SMEMBERS", "SISMEMBER", "SMISMEMBER", "SCARD",
    "ZRANGE", "ZRANGEBYSCORE", "ZRANGEBYLEX", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZREVRANGEBYLEX",
    "ZCARD", "ZSCORE", "ZMSCORE", "ZRANK", "ZREVRANK", "ZCOUNT", "ZLEXCOUNT", "ZINTER", "ZINTERCARD", "ZUNION",
    "ZDIFF",
    "SCAN", "SSCAN", "HSCAN", "ZSCAN", "PING", "ECHO", "TIME", "INFO", "DBSIZE",
    "SCRIPT LOAD", "SCRIPT EXISTS",
})
_SET_FLAGS_UNSAFE = frozenset({"NX", "XX", "GET", "KEEPTTL"})
_SCRIPT_CALLS = frozenset({"EVALSHA", "EVAL"})


def _name(value: Any) -> str:
    return (value.decode() if isinstance(value, bytes) else str(value)).upper()


def retry_safe(args: Tuple[Any, ...], safe_scripts: Set[str]) -> bool:
    """Whether running this command twice has the effect and reply of running it once."""
    name = _name(args[0])
    if name in READS:
        return True
    if name == "SET":
        return not any(isinstance(a, (str, bytes)) and _name(a) in _SET_FLAGS_UNSAFE for a in args[3:])
    if name in _SCRIPT_CALLS and len(args) > 1:
        return _name(args[1]).lower() in safe_scripts
    return False


def _dropped(exc: BaseException) -> bool:
    """A lost or refused connection (or -LOADING), not a refused login."""
    return isinstance(exc, RedisConnectionError) and not isinstance(exc, (AuthenticationError, AuthorizationError))


async def with_retry(call: Callable[[], Awaitable[T]], pool: ConnectionPool, budget: float = RETRY_BUDGET) -> T:
    deadline = time.monotonic() + budget
    delay = 0.0
    while True:
        try:
            return await call()
        except RedisConnectionError as exc:
            if not _dropped(exc) or time.monotonic() + delay > deadline:
                raise
        await pool.disconnect(inuse_connections=False)  # idle ones are stale too
        if delay:
            await asyncio.sleep(delay)
        delay = min(max(delay * 2, FIRST_DELAY), MAX_DELAY)


class RetryingRedis(Redis):
    """redis.asyncio.Redis with the retry rules above (and no blind retries of its own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.safe_scripts: Set[str] = set()
        # Pooled connections kept aside by run_kept (scripts, hot reads), idle and fully read: taking one
        # costs a list pop instead of the pool's lock, health bookkeeping and "has data" poll per command.
        self.script_connections: List[Any] = []

    def mark_retry_safe(self, sha: str) -> None:
        """Declare a script (by SHA1) idempotent: a replay must return the first run's reply."""
        self.safe_scripts.add(sha.lower())

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if not retry_safe(args, self.safe_scripts):
            return await Redis.execute_command(self, *args, **options)
        return await with_retry(lambda: Redis.execute_command(self, *args, **options), self.connection_pool)

    def pipeline(self, transaction: bool = True, shard_hint: Optional[str] = None) -> "RetryingPipeline":
        pipe = RetryingPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.safe_scripts = self.safe_scripts
        return pipe


class RetryingPipeline(Pipeline):
    """A pipeline (or MULTI/EXEC) repeated whole when every queued command is retry-safe."""

    safe_scripts: Set[str] = set()

    async def execute(self, raise_on_error: bool = True) -> Any:
        stack: List[Any] = list(self.command_stack)  # type: ignore[has-type]  # redis-py is read untyped
        if self.watching or not stack or not _all_safe((args for args, _options in stack), self.safe_scripts):
            return await Pipeline.execute(self, raise_on_error)

        async def attempt() -> Any:
            self.command_stack = list(stack)  # execute() empties it, even when it fails
            return await Pipeline.execute(self, raise_on_error)
        return await with_retry(attempt, self.connection_pool)


def _all_safe(commands: Iterable[Tuple[Any, ...]], safe_scripts: Set[str]) -> bool:
    return all(retry_safe(args, safe_scripts) for args in commands)


class ReplayableScript:
    """A Lua script a RetryingRedis may replay after a dropped connection. Each run is given a fresh
    receipt key under which the script records its first reply, so a replay answers that reply
    (cas.py, session_create.py); on a plain client, which never replays, the receipt is ""."""

    def __init__(self, redis: Redis, text: str) -> None:
        self.redis = redis
        self.script = redis.register_script(text)
        self.receipts = isinstance(redis, RetryingRedis)
        if isinstance(redis, RetryingRedis):
            redis.mark_retry_safe(self.script.sha)

    def receipt(self) -> str:
        """The receipt key for one run (ARGV), or "" when runs are never replayed."""
        return cas_receipt(random_ids.token_hex(12)) if self.receipts else ""

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        command = ("EVALSHA", self.script.sha, len(keys), *keys, *args)
        if self.receipts:
            return await with_retry(lambda: self._run(command), self.redis.connection_pool)
        return await self._run(command)

    async def _run(self, command: Tuple[Any, ...]) -> Any:
        """One EVALSHA on a kept connection (run_kept); a script Redis lost (restart, SCRIPT FLUSH) is loaded again."""
        try:
            return await run_kept(self.redis, command)
        except NoScriptError:
            await run_kept(self.redis, ("SCRIPT", "LOAD", self.script.script))
            return await run_kept(self.redis, command)


async def read_kept(redis: Redis, *command: Any) -> Any:
    """A read (READS: repeated after a dropped connection, as RetryingRedis repeats it) sent as
    run_kept sends it: the reporter's record and token MGETs, once per write batch (issue 13)."""
    if isinstance(redis, RetryingRedis):
        return await with_retry(lambda: run_kept(redis, command), redis.connection_pool)
    return await run_kept(redis, command)


async def run_kept(redis: Redis, command: Tuple[Any, ...]) -> Any:
    """One command on a pooled connection, straight: its reply as the parser gives it, no response
    callback (issue 13: the hot scripts, the session create and the compare-and-set, run once per
    request; redis-py's client layers around one command, its own retries, observability and
    callbacks, cost as much API CPU as the rest of a session create). A connection error
    disconnects the connection (redis-py's send and read do) and is raised, for with_retry to
    replay. A RetryingRedis keeps idle connections aside (script_connections)."""
    pool = redis.connection_pool
    idle: Optional[List[Any]] = getattr(redis, "script_connections", None)
    conn = idle.pop() if idle else await pool.get_connection()
    done = False
    try:
        reply = await _roundtrip(conn, command)
        done = True
        return reply
    finally:
        # Kept aside only after a whole reply was read (nothing left on the connection); after an
        # error or a cancel it goes back to the pool, whose next hand-out checks it (ensure_connection).
        if done and idle is not None and conn.is_connected and len(idle) < KEPT_CONNECTIONS:
            idle.append(conn)
        else:
            await pool.release(conn)


async def _roundtrip(conn: Any, command: Tuple[Any, ...]) -> Any:
    if type(conn) is HiredisPackingConnection:
        return await conn.roundtrip(command)
    await conn.send_command(*command)
    return await conn.read_response()
