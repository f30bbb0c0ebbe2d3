"""The reporter against the real API and Redis: actual_state changes, back-off, recovery (reporter.md §5, §6)."""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import redis as redis_lib

from bos_sim.stack import BIN, ApiServer, RedisServer
from tests.support.client import Api
from tests.support.tokens import record_token

from .conftest import ARTIFACTS, XNAME, Node, booted_node, eventually

REPORTER = str(BIN / "bos-reporter")


def actual_state(api: Api) -> Dict[str, Any]:
    resp = api.get(f"/v2/components/{XNAME}")
    return resp.json().get("actual_state") or {} if resp.status_code == 200 else {}


def report_once(node: Node, api_url: str, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run([REPORTER, "--once", *node.args(api_url), *more], env=node.env(), capture_output=True,
                          text=True, timeout=60)


def bss_token_of(node: Node) -> str:
    return node.cmdline.read_text().split("bss_referral_token=")[1].split()[0]


def test_once_resolves_the_token_into_actual_boot_artifacts(api: Api, api_server: ApiServer,
                                                            redis_server: RedisServer, node: Node) -> None:
    assert api.put(f"/v2/components/{XNAME}", json={"enabled": False}).status_code == 200
    record_token(redis_server.url, bss_token_of(node), ARTIFACTS)
    done = report_once(node, f"{api_server.url}/v2")
    assert done.returncode == 0, done.stderr
    state = actual_state(api)
    assert state["bss_token"] == bss_token_of(node)
    assert state["boot_artifacts"] == ARTIFACTS
    assert state["last_updated"]


def test_unknown_token_is_stored_and_boot_artifacts_stay(api: Api, api_server: ApiServer, tmp_path: Path) -> None:
    node = booted_node(tmp_path / "node", str(uuid.uuid4()))  # never recorded (the server caches records)
    previous = {"kernel": "s3://boot-images/old/kernel", "kernel_parameters": "old", "initrd": "s3://old/initrd"}
    api.put(f"/v2/components/{XNAME}", json={"enabled": False, "actual_state": {"boot_artifacts": previous}})
    done = report_once(node, api_server.url)  # a bare server URL means its /v2 API
    assert done.returncode == 0, done.stderr
    state = actual_state(api)
    assert state["bss_token"] == bss_token_of(node)
    assert state["boot_artifacts"] == previous


def test_409_while_bos_changes_the_node_then_success_once_disabled(api: Api, api_server: ApiServer,
                                                                   node: Node) -> None:
    api.put("/v2/components", json=[{"id": XNAME, "enabled": True, "last_action": {"action": "session_setup"}}])
    api.patch("/v2/components", json=[{"id": XNAME, "status": {"phase": "powering_off", "status_override": ""}}])
    refused = report_once(node, f"{api_server.url}/v2", "--attempts", "1")
    assert refused.returncode == 1
    assert "Actual state can not be updated." in refused.stderr and "WARNING" in refused.stderr
    assert actual_state(api).get("bss_token", "") == ""
    api.patch(f"/v2/components/{XNAME}", json={"enabled": False})
    accepted = report_once(node, f"{api_server.url}/v2")
    assert accepted.returncode == 0, accepted.stderr
    assert actual_state(api)["bss_token"] == bss_token_of(node)


def test_404_when_bos_does_not_know_the_node(api: Api, api_server: ApiServer, node: Node) -> None:
    done = report_once(node, f"{api_server.url}/v2", "--attempts", "1")
    assert done.returncode == 1
    assert f"BOS has no record of component '{XNAME}'; nothing to report." in done.stderr


# --- the service: back-off while the API is down, recovery when it returns --------------------

def redis_db(server: RedisServer, db: int) -> str:
    url = server.url.rsplit("/", 1)[0] + f"/{db}"
    client = redis_lib.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def servers() -> Iterator[List[ApiServer]]:
    started: List[ApiServer] = []
    yield started
    for server in started:
        server.stop()


def test_service_backs_off_while_the_api_is_down_and_recovers(redis_server: RedisServer, tmp_path: Path,
                                                              node: Node, servers: List[ApiServer]) -> None:
    servers.append(ApiServer(tmp_path / "api", redis_db(redis_server, 5)))
    first = servers[0]
    api = Api(first.url)
    api.put(f"/v2/components/{XNAME}", json={"enabled": False})
    log = tmp_path / "reporter.log"
    node.cmdline.write_text(node.cmdline.read_text().strip() + " bos_log_level=INFO\n")
    with open(log, "w") as sink:
        reporter = subprocess.Popen([REPORTER, *node.args(f"{first.url}/v2")], env=node.env(), stderr=sink)
    try:
        # start-up report
        eventually(lambda: actual_state(api).get("bss_token") == bss_token_of(node), 20, "start-up report", log)

        # API down: a triggered report fails and backs off 2 s, then 4 s
        assert first.stop() == 0
        node.trigger.touch()
        eventually(lambda: "Waiting 4 seconds before attempt 3." in log.read_text(), 20, "back-off", log)
        text = log.read_text()
        assert text.count("Connection refused") >= 2 and "Waiting 2 seconds before attempt 2." in text

        # API back (same port, empty database): 404 until the node is known, then the report lands
        servers.append(ApiServer(tmp_path / "api", redis_db(redis_server, 6), port=first.port))
        again = Api(servers[1].url)
        again.put(f"/v2/components/{XNAME}", json={"enabled": False})
        eventually(lambda: actual_state(again).get("bss_token") == bss_token_of(node), 60, "recovery", log)
        # the agent logs the success once it has read the answer: after the record changed
        updated = f"Updated the actual_state record for BOS component '{XNAME}'."
        eventually(lambda: updated in log.read_text().split("Waiting 4 seconds before attempt 3.")[1], 20,
                   "the agent's log of the recovered report", log)
        assert reporter.poll() is None  # the service never gave up
    finally:
        reporter.send_signal(signal.SIGTERM)
        reporter.wait(10)
    assert reporter.returncode == 0, log.read_text()[-3000:]
