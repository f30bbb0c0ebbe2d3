"""Fixtures for `bos-import`: a source Redis in the reference layout and the real CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Iterator, List, Tuple

import pytest
import redis as redis_lib

from bos_sim.stack import BIN, RedisServer

from .reference_fixture import Reference, populate


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("reference-redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reference(source: RedisServer) -> Reference:
    return populate(source.url)


def server_url(url: str) -> str:
    """`redis://host:port` without a database: what `--from` takes."""
    return url.rsplit("/", 1)[0]


def run_import(source_url: str, target_url: str, *args: str) -> Tuple[int, str, str]:
    done = subprocess.run([str(BIN / "bos-import"), "--from", source_url, "--redis-url", target_url, *args],
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def run_json(source_url: str, target_url: str, *args: str) -> Tuple[int, dict]:
    code, out, err = run_import(source_url, target_url, "--json", *args)
    assert out, err
    return code, json.loads(out)


def digest(url: str, dbs: List[int]) -> str:
    """A fingerprint of every key, type, value and TTL of databases `dbs` (to prove nothing changed)."""
    sha = hashlib.sha1()
    for db in dbs:
        client = redis_lib.Redis.from_url(server_url(url) + f"/{db}")
        try:
            for key in sorted(client.scan_iter(count=1000)):
                sha.update(repr((db, key, client.type(key), client.dump(key), client.ttl(key) > 0)).encode())
        finally:
            client.close()
    return sha.hexdigest()
