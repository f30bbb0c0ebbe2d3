"""Write BSS token records the way the power-on operator does (through the server's store code)."""

from __future__ import annotations

import asyncio
from typing import Mapping

from redis.asyncio import Redis

from bos_server.store.tokens import put_token


def record_token(redis_url: str, token: str, artifacts: Mapping[str, str]) -> None:
    async def write() -> None:
        client = Redis.from_url(redis_url)
        try:
            await put_token(client, token, artifacts)
        finally:
            await client.aclose()
    asyncio.run(write())
