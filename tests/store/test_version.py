"""Redis 7.0 or newer is required and checked at start-up with a clear message."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from bos_server.store.version import UnsupportedRedis, check_info, check_version
from bos_sim.stack import RedisServer


@pytest.mark.parametrize("version", ["7.0.0", "7.0.15", "7.2.4", "8.0.1", "10.1"])
def test_supported_versions(version: str) -> None:
    assert check_info({"redis_version": version}) == version


@pytest.mark.parametrize("version", ["6.2.14", "5.0.7", "", "garbage"])
def test_older_or_unknown_versions_are_refused_naming_both(version: str) -> None:
    with pytest.raises(UnsupportedRedis, match=r"Redis 7\.0 or newer is required; .* runs "):
        check_info({"redis_version": version})


def test_the_test_redis_passes_the_check(redis_server: RedisServer) -> None:
    async def scenario() -> str:
        redis = Redis.from_url(redis_server.url)
        try:
            return await check_version(redis)
        finally:
            await redis.aclose()
    assert asyncio.run(scenario()).split(".")[0].isdigit()
