"""One real stack (Redis, API, simulator at 10x, operators) shared by the observability tests
of this package (history and metrics; each test takes its own fresh nodes from the pool).
The dashboard's 1,000-node boot has its own stack (test_dashboard.py)."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.operators.stack import Stack


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("observe"), nodes=40)
    yield running
    running.stop()
