"""Run the `bos` CLI in-process against the real API server (real Redis, loopback HTTP).

The root `api` fixture's server has no S3, IMS or TAPMS, so every template
write waits for IMS retries to give up. The CLI tests instead share one
simulator-backed stack (bos-sim, redis-server, bos-server; no operators, so
tests can play the operators' part themselves) and override `api` with it:
template checks, boot sessions and tenancy are then real and fast.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from bos_cli.main import main
from tests.support.client import Api
from tests.support.stacks import ServiceStack, service_stack

SIM_NODES = 16
IMAGE = "9e3c75e1-ac42-42c7-873c-e758048897d6"  # the simulator's default image (manifest in its S3)
MANIFEST = f"s3://boot-images/{IMAGE}/manifest.json"
TENANT = "vcluster-blue"  # the simulator's default tenant

CLI_ENV = ("BOS_URL", "BOS_TOKEN_FILE", "BOS_TENANT", "BOS_CA_BUNDLE", "BOS_TIMEOUT", "BOS_FORMAT")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Runner = Callable[..., Result]


def run_cli(argv: List[str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def clean_cli_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The developer's own BOS_* settings must not leak into the tests."""
    for name in CLI_ENV:
        monkeypatch.delenv(name, raising=False)
    yield


CliStack = ServiceStack


@pytest.fixture(scope="package")
def cli_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliStack]:
    where: Path = tmp_path_factory.mktemp("cli")
    with service_stack(where, nodes=SIM_NODES) as stack:
        yield stack


@pytest.fixture
def api(cli_stack: CliStack) -> Api:
    """Overrides the root `api`: a fresh database on the simulator-backed server."""
    return cli_stack.api()


@pytest.fixture
def bos(api: Api) -> Runner:
    """`bos("sessions", "list", ...)` against the test API; returns code, stdout, stderr."""
    def run(*argv: str) -> Result:
        return run_cli(["--url", api.base, *argv])
    return run


NODES = ["x1000c0s0b0n0", "x1000c0s0b0n1", "x1000c0s0b1n0"]  # compute nodes of the simulator


def put_template(api: Api, name: str = "compute", nodes: List[str] = NODES) -> dict:
    body = {"description": "Compute nodes", "cfs": {"configuration": "compute-23.4.0"},
            "boot_sets": {"compute": {"path": MANIFEST, "type": "s3",
                                      "node_list": list(nodes)}}}
    resp = api.put(f"/v2/sessiontemplates/{name}", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def put_components(api: Api, records: List[dict]) -> List[dict]:
    resp = api.put("/v2/components", json=records)
    assert resp.status_code == 200, resp.text
    return resp.json()
