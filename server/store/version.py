"""The Redis version BOS needs (7.0: ZINTERCARD for extended status, Lua `redis.sha1hex`,
ZRANGE BYLEX with LIMIT), checked once the server can first reach Redis.

An older Redis would fail later in confusing ways (unknown command on the first extended
status); a clear message at start-up names the version found and the one needed.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping, Tuple

from redis.asyncio import Redis

MINIMUM: Tuple[int, int] = (7, 0)
LOG = logging.getLogger("bos.store")


class UnsupportedRedis(RuntimeError):
    """Redis is reachable but older than MINIMUM."""


def parse_version(text: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_info(info: Mapping[str, Any]) -> str:
    """The server's version from INFO server; UnsupportedRedis if it is older than MINIMUM."""
    found = str(info.get("redis_version") or "unknown")
    if not parse_version(found) or parse_version(found)[:2] < MINIMUM:
        raise UnsupportedRedis(f"Redis {'.'.join(map(str, MINIMUM))} or newer is required; "
                               f"the server at the configured BOS_REDIS_URL runs {found}")
    return found


async def check_version(redis: Redis) -> str:
    """Read INFO server and check it (the caller decides what an old Redis means for it)."""
    version = check_info(await redis.info("server"))
    LOG.info("Redis %s", version)
    return version
