"""Fixtures that run the real parts: redis-server, the API server, HTTP on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest
import redis as redis_lib

from bos_sim.stack import ApiServer, RedisServer
from tests.support.client import Api, fresh_api
from tests.support.schedule import ModuleScheduling, check_unique, order


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """Unique IDs, longest modules first (tests/support/schedule.py)."""
    check_unique(items)
    order(items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Optional[ModuleScheduling]:
    """`--dist loadfile`: one module per unit, except the independent ones (tests/support/schedule.py)."""
    return ModuleScheduling(config, log) if config.getvalue("dist") == "loadfile" else None


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
