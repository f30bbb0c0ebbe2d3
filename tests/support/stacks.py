"""A simulator-backed stack for fixtures: Redis, bos-sim and bos-server (no operators).

Tests that need S3, IMS or TAPMS (template checks, boot sessions, tenancy, the
CLI) share one of these per module or package and play the operators' part
themselves where they need to.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import redis as redis_lib

from bos_sim.stack import ApiServer, RedisServer, Simulator, Stack
from tests.support.client import Api, fresh_api


@dataclass
class ServiceStack:
    stack: Stack
    redis_client: redis_lib.Redis

    @property
    def sim(self) -> Simulator:
        return self.stack.sim

    @property
    def server(self) -> ApiServer:
        return self.stack.api

    @property
    def redis(self) -> RedisServer:
        return self.stack.redis

    def api(self) -> Api:
        """A client of the freshly emptied database, default options, no service faults."""
        self.sim.clear_service_faults()
        return fresh_api(self.server.url, self.redis_client)


@contextmanager
def service_stack(where: Path, **stack_args: Any) -> Iterator[ServiceStack]:
    with Stack(where, operators=False, **stack_args) as stack:
        client = redis_lib.Redis.from_url(stack.redis.url)
        try:
            yield ServiceStack(stack, client)
        finally:
            client.close()
