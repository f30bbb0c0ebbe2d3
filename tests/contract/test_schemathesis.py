"""A bounded schemathesis run: generated requests for every operation of the OpenAPI
document against the real server (real Redis, real HTTP). No request may get a 5xx, and
every documented success response must conform to its schema.

The document is the server's own (`bos_server.api.openapi`, the one `/v2/openapi.json`
serves). Each operation is a test of its own (the operations run on several pytest-xdist
workers: tests/support/schedule.py) and is bounded twice: at most `EXAMPLES` generated
requests, and a time box: once `MIN_EXAMPLES` have been sent, an operation whose run has
taken `SECONDS_PER_OPERATION` ends there and passes, so a slow machine sends fewer requests
instead of stretching `make test`. Failures are not shrunk (no shrink phase: it would
outlast the box); schemathesis prints the failing request to reproduce it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from bos_server.api.openapi import document
from bos_shared import __version__
from tests.support.stacks import service_stack

EXAMPLES = 300  # generated requests per operation at most (the explicit and coverage cases come on top)
MIN_EXAMPLES = 50  # always sent, whatever the time box
SECONDS_PER_OPERATION = 10.0

schema = schemathesis.openapi.from_dict(document(__version__))


class TimeBoxReached(Exception):
    """An operation used its time box after at least MIN_EXAMPLES requests: not a failure
    (tests/contract/conftest.py turns it into a pass)."""


class TimeBox:
    """Counts one operation's requests and ends its run once the box is used. Hypothesis
    can only be stopped from inside by an exception (generating the cases costs as much as
    sending them, so skipping the sends would not bound the time), and it must not hide a
    real failure: after one, the box never ends the run."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.sent = 0
        self.failed = False

    def check(self) -> None:
        used = time.monotonic() - self.started
        if not self.failed and self.sent >= MIN_EXAMPLES and used >= SECONDS_PER_OPERATION:
            raise TimeBoxReached(f"{self.sent} requests in {used:.1f}s")


@pytest.fixture(scope="module")
def base_url(workdir: Path) -> Iterator[str]:
    """A server with the simulated services it depends on (TAPMS, IMS, S3), as deployed:
    a 503 then means a fault of ours, not a service that is missing from the test."""
    with service_stack(workdir / "schemathesis", nodes=4) as stack:
        yield stack.server.url


@pytest.fixture
def time_box(record_property: Callable[[str, object], None]) -> Iterator[TimeBox]:
    """One per operation (hypothesis calls the test many times with the same fixture); the
    number of requests sent goes into the JUnit report (`--junitxml`)."""
    box = TimeBox()
    yield box
    record_property("requests_sent", box.sent)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, report_multiple_bugs=False,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
@pytest.mark.timeout(180)
def test_no_server_error_and_responses_conform(case: schemathesis.Case, base_url: str, time_box: TimeBox) -> None:
    time_box.check()
    try:
        case.call_and_validate(base_url=base_url, checks=[not_a_server_error, response_schema_conformance])
    except BaseException:
        time_box.failed = True
        raise
    time_box.sent += 1
