"""Redis with Sentinel failover (deploy/k8s/components/sentinel; server/store/connection.py).

A real primary, a replica and a Sentinel on loopback; bos-server given a
`redis+sentinel://` URL. After a forced failover the API answers from the new
primary by itself, and nothing written before the failover is lost.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import redis as redis_lib
import requests

from bos_server.store.redis_url import RedisUrlError, redis_from_url
from bos_sim.stack import ApiServer, ManagedProcess, RedisServer, free_port, wait_until

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server missing")


def _pings(port: int):
    def check() -> bool:
        try:
            return bool(redis_lib.Redis(port=port, socket_connect_timeout=0.5).ping())
        except redis_lib.RedisError:
            return False
    return check


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[dict]:
    procs: List[ManagedProcess] = []
    try:
        primary = RedisServer(tmp_path / "primary")
        procs.append(primary)
        replica_port = free_port()
        (tmp_path / "replica").mkdir()
        procs.append(ManagedProcess("replica", [shutil.which("redis-server"), "--port", str(replica_port),
                                                "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path / "replica"),
                                                "--replicaof", "127.0.0.1", str(primary.port)],
                                    tmp_path / "replica" / "log"))
        wait_until(_pings(replica_port), 15, "replica")
        sentinel_port = free_port()
        conf = tmp_path / "sentinel.conf"
        conf.write_text(f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                        f"sentinel monitor bos 127.0.0.1 {primary.port} 1\n"
                        "sentinel down-after-milliseconds bos 1000\nsentinel failover-timeout bos 10000\n")
        procs.append(ManagedProcess("sentinel", [shutil.which("redis-server"), str(conf), "--sentinel"],
                                    tmp_path / "sentinel.log"))
        wait_until(_pings(sentinel_port), 15, "sentinel")
        yield {"primary": primary.port, "replica": replica_port, "sentinel": sentinel_port}
    finally:
        for proc in reversed(procs):
            proc.stop()


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_the_api_follows_a_sentinel_failover(sentinel_setup: dict, tmp_path: Path) -> None:
    ports = sentinel_setup
    sentinel = redis_lib.Redis(port=ports["sentinel"])
    _wait(lambda: sentinel.sentinel_master("bos").get("num-slaves", 0) >= 1, 20, "the sentinel to see the replica")
    api = ApiServer(tmp_path / "api", f"redis+sentinel://127.0.0.1:{ports['sentinel']}/bos/0")
    try:
        put = lambda cid: requests.put(f"{api.url}/v2/components/{cid}", json={"enabled": False}, timeout=10)
        assert requests.get(f"{api.url}/v2/healthz", timeout=10).status_code == 200
        assert put("x1000c0s0b0n0").status_code == 200
        _wait(lambda: redis_lib.Redis(host="127.0.0.1", port=ports["replica"]).exists("bos:comp:x1000c0s0b0n0"), 10, "replication")
        sentinel.execute_command("SENTINEL", "FAILOVER", "bos")
        _wait(lambda: int(sentinel.sentinel_get_master_addr_by_name("bos")[1]) == ports["replica"], 30,
              "the replica to be promoted")
        old = redis_lib.Redis(host="127.0.0.1", port=ports["primary"])
        _wait(lambda: old.info("replication")["role"] == "slave", 30, "the old primary to be demoted")
        _wait(lambda: put("x1000c0s0b0n1").status_code == 200, 30, "writes on the new primary")
        listed = requests.get(f"{api.url}/v2/components", timeout=10).json()
        assert [c["id"] for c in listed] == ["x1000c0s0b0n0", "x1000c0s0b0n1"]
        assert redis_lib.Redis(host="127.0.0.1", port=ports["replica"]).exists("bos:comp:x1000c0s0b0n1")
    finally:
        assert api.stop() == 0


@pytest.mark.parametrize("url, message", [
    ("redis+sentinel://127.0.0.1:26379", "names the service"),
    ("redis+sentinel://127.0.0.1:26379/bos/x", "names the service"),
    ("redis+sentinel://127.0.0.1:port/bos", "bad Sentinel address"),
])
def test_bad_sentinel_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(RedisUrlError, match=message):
        redis_from_url(url)


def test_sentinel_url_parts() -> None:
    client = redis_from_url("rediss+sentinel://:s3cret@a:26380,[::1]/bos/3?sentinel_password=other")
    pool = client.connection_pool
    assert pool.service_name == "bos"
    assert pool.connection_kwargs["db"] == 3 and pool.connection_kwargs["password"] == "s3cret"
    assert [(s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
            for s in pool.sentinel_manager.sentinels] == [("a", 26380), ("::1", 26379)]
    assert pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs["password"] == "other"
