"""Fixtures that run the real parts: redis-server, the API server, HTTP on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest
import redis as redis_lib

from bos_sim.stack import ApiServer, RedisServer
from tests.support.client import Api, fresh_api
from tests.support.schedule import group_and_order


@pytest.hookimpl(tryfirst=True)  # before xdist reads the group marks
def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """One module per xdist worker, longest first (tests/support/schedule.py)."""
    group_and_order(items)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir / "redis")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_client(redis_server: RedisServer) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def api_server(workdir: Path, redis_server: RedisServer) -> Iterator[ApiServer]:
    server = ApiServer(workdir / "api", redis_server.url)
    yield server
    code = server.stop()
    assert code == 0, f"bos-server did not stop cleanly ({code}):\n{server.log_tail()}"


@pytest.fixture
def api(api_server: ApiServer, redis_client: redis_lib.Redis) -> Api:
    """A client of a freshly emptied database with default options."""
    return fresh_api(api_server.url, redis_client)
