"""Fixtures for operator tests: a pass context over fake services, and a coroutine runner."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Iterator

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


def module_stack(tmp_path_factory: pytest.TempPathFactory, name: str, nodes: int) -> Iterator[Stack]:
    """The real API, Redis, simulator and operators for one test module; they must stop cleanly."""
    running = Stack(tmp_path_factory.mktemp(name), nodes=nodes)
    yield running
    codes = running.stop()
    assert codes.get("operators") == 0, f"bos-operators did not stop cleanly: {codes}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """160 simulated nodes at 10x speed; a module may override `stack` with its own size."""
    yield from module_stack(tmp_path_factory, "lifecycle", 160)


@pytest.fixture
def cluster(stack: Stack) -> Stack:
    """The module's stack with the fast scenario options re-applied."""
    stack.set_options()
    stack.sim.clear_service_faults()
    return stack
