"""The hardware's own time (simulator/hardware_time.py): what the benchmark subtracts from a session's wall time.

It must be the delays actually drawn (nominal ± jitter) for the steps each node
completed, so the benchmark's overhead is neither flattered by the jitter tail
nor charged with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from bos_sim.config import DEFAULT_DELAYS
from bos_sim.determinism import jittered
from bos_sim.inventory import node_xname
from bos_sim.stack import Simulator
from tests.sim.helpers import FAST, Services, eventually, start_sim
from tests.sim.test_node_timeline import cfs_prepare, program, transition

SEED = 7


@pytest.fixture(scope="module")
def sim(sim_dir: Path) -> Iterator[Simulator]:
    """Its own simulator: nothing else's nodes complete steps while a test counts."""
    simulator = start_sim(sim_dir / "hardware-time", nodes=4, seed=SEED)
    yield simulator
    assert simulator.stop() == 0, simulator.log_tail()


def drawn(kind: str, *who: object) -> float:
    return jittered(SEED, DEFAULT_DELAYS[kind], 0.1, kind, *who)


def test_a_boot_counts_the_drawn_power_on_boot_and_configure_delays(sim: Simulator) -> None:
    svc = Services(sim)
    xname = node_xname(0)
    program(svc, xname)
    cfs_prepare(svc, xname, "compute-23.4.0")
    assert sim.hardware_time(reset=True)["max_seconds"] == 0
    transition(svc, "On", [xname])
    eventually(lambda: sim.node(xname)["cfs"]["configuration_status"] == "configured", what="configured")
    tally = eventually(lambda: (t := sim.hardware_time())["steps"] == 3 and t, what="three steps")
    # power generation 1 after the On; CFS generation 2: the preparing PATCH, then the node's state reporter
    expected = drawn("power_on", xname, 1) + drawn("boot", xname, 1) + drawn("configure", xname, 2)
    assert tally["nodes"] == 1 and tally["slowest"] == xname
    assert tally["max_seconds"] == pytest.approx(expected, abs=1e-3)
    assert tally["max_seconds"] != pytest.approx(10.0, abs=1e-3)  # the jitter is in, not the nominal sum
    assert tally["max_wall_seconds"] == pytest.approx(expected / FAST, abs=1e-3)


def test_a_step_that_never_completes_counts_nothing(sim: Simulator) -> None:
    svc = Services(sim)
    xname = node_xname(1)
    sim.set_speed(1.0)  # the On stays pending (2 s) while the node is forced off
    try:
        sim.hardware_time(reset=True)
        transition(svc, "On", [xname])
        sim.control("PATCH", f"/nodes/{xname}", {"power": "off"})  # supersedes the pending On
        processed = sim.summary()["scheduler"]["processed"]
    finally:
        sim.set_speed(FAST)  # the superseded On's event falls due at once
    eventually(lambda: sim.summary()["scheduler"]["processed"] > processed, what="the stale On event")
    transition(svc, "Soft-Off", [node_xname(2)])  # already off: succeeds at once, no hardware step
    tally = sim.hardware_time()
    assert (tally["steps"], tally["nodes"], tally["max_seconds"], tally["slowest"]) == (0, 0, 0.0, None)


def test_the_timeline_gives_each_kind_of_event_its_first_and_last_time_since_the_reset(sim: Simulator) -> None:
    """bench.boot's timeline: where a session's wall time went, node events by kind."""
    svc = Services(sim)
    xnames = [node_xname(2), node_xname(3)]
    for xname in xnames:
        program(svc, xname)
        cfs_prepare(svc, xname, "compute-23.4.0")
    assert sim.hardware_time(reset=True)["events"] == {}
    transition(svc, "On", xnames)
    eventually(lambda: all(sim.node(x)["cfs"]["configuration_status"] == "configured" for x in xnames),
               what="configured")
    events = eventually(lambda: (t := sim.hardware_time())["steps"] == 6 and t["events"], what="six steps")
    order = ["On reached the node", "power_on done", "boot done", "configure done"]
    assert sorted(events) == sorted(order)
    assert all(events[kind]["count"] == 2 and 0 <= events[kind]["first"] <= events[kind]["last"] for kind in order)
    for kind in order:  # deciles (bench.boot's 10/50/90 %): between the first and the last, in order
        deciles = events[kind]["deciles"]
        assert len(deciles) == 9 and deciles == sorted(deciles)
        assert events[kind]["first"] <= deciles[0] and deciles[-1] <= events[kind]["last"]
    firsts = [events[kind]["first"] for kind in order]
    assert firsts == sorted(firsts)  # each node's steps follow one another
    assert sim.hardware_time(reset=True)["events"] == {}
