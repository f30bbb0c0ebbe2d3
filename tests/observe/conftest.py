"""One real stack (Redis, API, simulator at 10x, operators) for the observability tests:
history, metrics and the dashboard watch the same kind of boots."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.operators.stack import Stack


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("observe"), nodes=40)
    yield running
    running.stop()
