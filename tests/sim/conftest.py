"""Fixtures for the simulator's own tests: the real `bos-sim` process on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from bos_sim.stack import Simulator
from tests.sim.helpers import FakeBos, Services, start_sim


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim")


@pytest.fixture(scope="module")
def fake_bos() -> Iterator[FakeBos]:
    bos = FakeBos()
    yield bos
    bos.stop()


@pytest.fixture(scope="module")
def sim(sim_dir: Path, fake_bos: FakeBos) -> Iterator[Simulator]:
    """A 20-node simulator shared by a test module, reporting to the fake BOS."""
    simulator = start_sim(sim_dir, bos_url=fake_bos.url)
    yield simulator
    code = simulator.stop()
    assert code == 0, f"bos-sim did not stop cleanly ({code}):\n{simulator.log_tail()}"


@pytest.fixture(scope="module")
def svc(sim: Simulator) -> Services:
    return Services(sim)
