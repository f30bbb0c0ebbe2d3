"""The simulator's memos answer what the computation they stand for answers (issue 13: each
was measured in a 100,000-node boot). In-process, on a small generated cluster."""

from __future__ import annotations

import json
import uuid

import msgspec
from hypothesis import given, strategies as st

from bos_sim.cluster import Cluster
from bos_sim.config import SimConfig
from bos_sim.determinism import _digest, seeded_uuid
from bos_sim.faults import NodeFaults
from bos_sim.inventory import generate, node_xname
from bos_sim.reporting import report_period

from bos_reporter.schedule import DEFAULT_FREQUENCY_SECONDS, frequency_seconds, period_seconds


@given(st.integers(min_value=0, max_value=2**32), st.text(max_size=20), st.integers())
def test_a_seeded_uuid_is_the_uuid4_of_its_digest(seed: int, what: str, count: int) -> None:
    expected = str(uuid.UUID(bytes=_digest(seed, (what, count), 16), version=4))
    assert seeded_uuid(seed, what, count) == expected


def _cluster() -> Cluster:
    return Cluster(generate(4), SimConfig())


def test_a_power_status_entry_is_encoded_anew_when_the_power_changes() -> None:
    cluster = _cluster()
    xname = node_xname(0)
    node = cluster.nodes[xname]

    def fresh() -> bytes:
        return msgspec.json.encode(cluster.pcs.status_entry(xname))

    first = cluster.pcs.status_json(xname)
    assert first == fresh()
    assert cluster.pcs.status_json(xname) is first  # memoised while nothing changed
    cluster.engine.set_power(node, "on")  # a new power state and power time
    assert json.loads(cluster.pcs.status_json(xname))["powerState"] == "on"
    assert cluster.pcs.status_json(xname) == fresh()
    node.power_time += 1.5  # the same state, a later time
    assert cluster.pcs.status_json(xname) == fresh() != first


def test_a_node_with_faults_is_never_answered_from_the_memo() -> None:
    cluster = _cluster()
    xname = node_xname(1)
    node = cluster.nodes[xname]
    cluster.pcs.status_json(xname)
    node.faults = NodeFaults(pcs_error="broken")
    assert json.loads(cluster.pcs.status_json(xname))["error"] == "broken"
    node.faults.pcs_error = "broken differently"  # changed in place by the control API
    assert json.loads(cluster.pcs.status_json(xname))["error"] == "broken differently"


def test_the_report_period_is_the_reporters() -> None:
    for value in ("10m", "4H", "0s", "garbage", None, "10m"):
        params = {} if value is None else {"bos_update_frequency": value}
        expected = period_seconds(frequency_seconds(value) or DEFAULT_FREQUENCY_SECONDS)
        assert report_period(params) == expected
