"""A bounded schemathesis run: generated requests for every operation of the OpenAPI
document against the real server (real Redis, real HTTP). No request may get a 5xx, and
every documented success response must conform to its schema.

The document is the server's own (`bos_server.api.openapi`, the one `/v2/openapi.json`
serves). The run is bounded per operation (`EXAMPLES`) and in time (pytest-timeout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from bos_server.api.openapi import document
from bos_shared import __version__
from tests.support.stacks import service_stack

EXAMPLES = 50  # per operation: about 1,500 requests in all, ~1 min on 2 cores

schema = schemathesis.openapi.from_dict(document(__version__))


@pytest.fixture(scope="module")
def base_url(workdir: Path) -> Iterator[str]:
    """A server with the simulated services it depends on (TAPMS, IMS, S3), as deployed:
    a 503 then means a fault of ours, not a service that is missing from the test."""
    with service_stack(workdir / "schemathesis", nodes=4) as stack:
        yield stack.server.url


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@pytest.mark.timeout(120)
def test_no_server_error_and_responses_conform(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=[not_a_server_error, response_schema_conformance])
