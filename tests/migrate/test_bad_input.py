"""`bos-import` refuses bad sources and conflicting targets clearly, and writes nothing then."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
import redis as redis_lib

from bos_sim.stack import RedisServer, free_port

from .conftest import digest, run_import, run_json, server_url
from .reference_fixture import TEMPLATES, Reference, xname


@pytest.fixture
def target(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "target")
    yield server
    server.stop()


def test_unreachable_source_is_one_clear_line_and_exit_3(target: RedisServer) -> None:
    code, out, err = run_import(f"redis://127.0.0.1:{free_port()}", target.url)
    assert code == 3 and out == ""
    assert err.startswith("bos-import: error: cannot reach the source Redis at redis://127.0.0.1:"), err
    assert len(err.strip().splitlines()) == 1


def test_unreachable_target(source: RedisServer, reference: Reference) -> None:
    code, _out, err = run_import(server_url(source.url), f"redis://127.0.0.1:{free_port()}/0", "--apply")
    assert code == 3 and "cannot reach the target Redis" in err, err


def test_a_redis_that_is_not_bos_is_refused(tmp_path: Path, target: RedisServer) -> None:
    other = RedisServer(tmp_path / "other")
    try:
        client = redis_lib.Redis.from_url(other.url)
        code, _out, err = run_import(server_url(other.url), target.url)
        assert code == 1 and "holds no BOS data: databases 0-5 are empty" in err, err
        for n in range(50):
            client.set(f"session:{n}", "abc")
            client.hset(f"user:{n}", mapping={"name": "x"})
        client.set("options", json.dumps({"polling_frequency": 5}))  # one BOS-looking key is not enough
        code, out, err = run_import(server_url(other.url), target.url, "--apply")
        assert code == 1 and out == ""
        assert "is not a BOS database: only 1 of its 101 entries in databases 0-5 are BOS records" in err, err
        assert redis_lib.Redis.from_url(target.url).dbsize() == 0
        client.close()
    finally:
        other.stop()


def test_our_own_store_as_the_source_is_refused(target: RedisServer, reference: Reference, source: RedisServer) -> None:
    code, _ = run_json(server_url(source.url), target.url, "--apply")
    assert code == 0
    code, _out, err = run_import(server_url(target.url), f"redis://127.0.0.1:{free_port()}/0")
    assert code == 1 and "holds this BOS's own store (keys bos:*)" in err, err


def test_the_target_may_not_be_a_database_of_the_source(source: RedisServer, reference: Reference) -> None:
    before = digest(source.url, list(range(6)))
    code, _out, err = run_import(server_url(source.url), server_url(source.url) + "/0", "--apply")
    assert code == 1 and "is database 0 of the source server" in err, err
    assert digest(source.url, list(range(6))) == before


def test_a_source_url_with_a_database_is_a_usage_error(source: RedisServer, target: RedisServer) -> None:
    code, _out, err = run_import(source.url, target.url)  # .../0
    assert code == 1 and "give the server only" in err, err


def test_conflicting_target_records_refuse_the_whole_import(source: RedisServer, reference: Reference,
                                                            target: RedisServer) -> None:
    code, _ = run_json(server_url(source.url), target.url, "--apply")
    assert code == 0
    client = redis_lib.Redis.from_url(target.url)
    # the target moves on: one component and one template now differ, and a new source component appears
    from bos_server.store import keys
    raw = json.loads(client.get(keys.component(xname(5))))
    raw["enabled"] = not raw.get("enabled")
    client.set(keys.component(xname(5)), json.dumps(raw))
    template_key = keys.template(None, "compute-23.4")
    changed = json.loads(client.get(template_key))
    changed["description"] = "edited on the new BOS"
    client.set(template_key, json.dumps(changed))
    source_components = redis_lib.Redis.from_url(server_url(source.url) + "/1")
    source_components.set("x7777c0s0b0n0", json.dumps({"id": "x7777c0s0b0n0", "enabled": False}))
    try:
        before = digest(target.url, [0])
        code, report = run_json(server_url(source.url), target.url, "--apply")
        assert code == 1 and report["applied"] is False
        assert {(c["kind"], c["key"]) for c in report["conflicts"]} == {("components", xname(5)),
                                                                        ("templates", "compute-23.4")}
        assert report["counts"]["components"]["new"] == 1
        assert digest(target.url, [0]) == before, "nothing may be written while a conflict is unresolved"
        code, text, _err = run_import(server_url(source.url), target.url, "--apply")
        assert code == 1 and "refused: the target already has different records" in text
        assert "components x1000c0s0b2n1: the target has a different record" in text
        # a catch-up run replaces them with the source's
        code, report = run_json(server_url(source.url), target.url, "--apply", "--overwrite")
        assert code == 0 and report["applied"] is True
        assert report["counts"]["components"]["written"] == 2 and report["counts"]["templates"]["written"] == 1
        assert json.loads(client.get(template_key))["description"] == TEMPLATES[0]["description"]
        assert client.zscore(keys.COMPONENT_IDS, "x7777c0s0b0n0") is not None
    finally:
        source_components.delete("x7777c0s0b0n0")
        source_components.close()
        client.close()
