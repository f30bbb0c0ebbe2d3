"""Fixtures for operator tests: a pass context over fake services, and a coroutine runner."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import pytest

from bos_server.operators.framework import PassContext
from bos_shared.options import DEFAULTS

from .fakes import FakeServices
from .stack import Stack


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def make_ctx() -> Callable[..., PassContext]:
    def make(services: FakeServices, **options: Any) -> PassContext:
        merged = dict(DEFAULTS)
        merged.update(options)
        return PassContext(services, merged, logging.getLogger("test.operators"))  # type: ignore[arg-type]
    return make


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """The real API, Redis, simulator (160 nodes, 10x speed) and operators, for one test module."""
    running = Stack(tmp_path_factory.mktemp("lifecycle"), nodes=160)
    yield running
    codes = running.stop()
    assert codes.get("operators") == 0, f"bos-operators did not stop cleanly: {codes}"


@pytest.fixture
def cluster(stack: Stack) -> Stack:
    """The module's stack with the fast scenario options re-applied."""
    stack.set_options()
    stack.sim.clear_service_faults()
    return stack
