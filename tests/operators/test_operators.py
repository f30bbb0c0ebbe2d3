"""Passes of the status, configuration, actual-state-cleanup, discovery, session-completion
and session-cleanup operators against fake services (operators.md §3, §4, §7)."""

from __future__ import annotations

import itertools
import time
from types import SimpleNamespace

import pytest

from bos_server.operators import status as status_module
from bos_server.operators.actual_state_cleanup import ActualStateCleanupOperator
from bos_server.operators.claims import LocalClaims
from bos_server.operators.configuration import ConfigurationOperator
from bos_server.operators.discovery import DiscoveryOperator, new_record
from bos_server.operators.session_cleanup import SessionCleanupOperator
from bos_server.operators.session_completion import SessionCompletionOperator
from bos_server.operators.status import StatusOperator
from bos_shared.options import DEFAULTS

from .conftest import run
from .fakes import FakeServices, node
from .helpers import ARTIFACTS, NOW, ago, component

N = [f"x1000c0s{i}b0n0" for i in range(6)]
COSTLY = 1e9  # LOOK_SHARE as if every look were costly: the back-off goes up to RECHECK_IN_TRANSITION


def patched(svc):
    return [p for c in svc.calls if c[0] == "bos.patch_components" for p in c[1]]


# -- status --

def test_status_pass_uses_pcs_and_cfs_and_patches_in_bulk(make_ctx):
    comps = [component(N[0], override="on_hold"), component(N[1], override="on_hold", actual=ARTIFACTS),
             component(N[2], enabled=False)]
    svc = FakeServices(components=comps, power={N[0]: "off", N[1]: "on"},
                       cfs={N[0]: {"id": N[0]}, N[1]: {"id": N[1], "desired_config": ""}})
    hint = run(StatusOperator().run_pass(make_ctx(svc)))
    assert [c for c in svc.calls if c[0] == "pcs.power_status"] == [("pcs.power_status", N[:2])]
    assert patched(svc) == [{"id": N[0], "status": {"status_override": "", "phase": "powering_on"}},
                            {"id": N[1], "status": {"status_override": ""}, "enabled": False}]
    assert len([c for c in svc.calls if c[0] == "bos.patch_components"]) == 1
    assert hint is not None  # N0 is still in flight: re-check soon


def test_status_pass_nothing_enabled_is_cheap(make_ctx):
    svc = FakeServices(components=[component(N[0], enabled=False)])
    assert run(StatusOperator().run_pass(make_ctx(svc))) is None
    assert svc.calls.names() == ["redis.enabled_page"]  # IDs only: no record is read before a claim


def test_status_pages_through_the_api_without_the_store(make_ctx):
    comps = [component(x, override="on_hold") for x in N]
    svc = FakeServices(components=comps, power={x: "off" for x in N}, cfs={x: {"id": x} for x in N})
    svc.redis = None
    run(StatusOperator().run_pass(make_ctx(svc, max_component_batch_size=4)))
    assert [c[1] for c in svc.calls if c[0] == "bos.component_page"] == [None, N[3]]
    assert len(patched(svc)) == 6


def test_status_fetches_all_of_cfs_once_for_many_components(make_ctx, monkeypatch):  # D26
    monkeypatch.setattr(status_module, "CFS_BY_ID_MAX", 4)
    comps = [component(x, override="on_hold") for x in N]
    svc = FakeServices(components=comps, power={x: "off" for x in N}, cfs={x: {"id": x} for x in N})
    run(StatusOperator().run_pass(make_ctx(svc, max_component_batch_size=4)))
    assert svc.calls.names().count("cfs.all_components") == 1 and "cfs.components" not in svc.calls.names()
    assert [c[1] for c in svc.calls if c[0] == "redis.enabled_page"] == [None, N[3]]  # paged by start_after_id
    assert [len(c[1]) for c in svc.calls if c[0] == "pcs.power_status"] == [4, 2]
    assert len(patched(svc)) == 6


def test_status_asks_cfs_by_id_for_few_components(make_ctx, monkeypatch):
    monkeypatch.setattr(status_module, "CFS_BY_ID_MAX", 6)
    comps = [component(x, override="on_hold") for x in N]
    svc = FakeServices(components=comps, power={x: "off" for x in N}, cfs={x: {"id": x} for x in N})
    run(StatusOperator().run_pass(make_ctx(svc)))
    assert [c for c in svc.calls if c[0].startswith("cfs.")] == [("cfs.components", N)]


def test_status_asks_cfs_by_id_for_a_small_share_of_the_cluster_however_few_are_enabled(make_ctx, monkeypatch):
    """A session being set up batch by batch, or its last nodes: 6 of 40 components enabled. CFS
    lists the whole cluster, so the share is of all components, not of the enabled ones."""
    monkeypatch.setattr(status_module, "CFS_BY_ID_MAX", 4)
    others = [component(f"x9000c0s{n}b0n0", enabled=False) for n in range(34)]
    comps = [component(x, override="on_hold") for x in N] + others
    svc = FakeServices(components=comps, power={x: "off" for x in N}, cfs={c["id"]: {"id": c["id"]} for c in comps})
    run(StatusOperator().run_pass(make_ctx(svc)))
    assert [c for c in svc.calls if c[0].startswith("cfs.")] == [("cfs.components", N)]
    assert len(patched(svc)) == 6


def ticking(monkeypatch) -> None:
    """The status operator's monotonic clock moves 1 µs a reading: its passes take next to no time,
    so the waits they ask for are the intervals whatever the load (a look's cost stays above 0 for
    LOOK_SHARE); its epoch clock is the real one (the actions of `component` have timed out)."""
    ticks = itertools.count()
    monkeypatch.setattr(status_module, "time", SimpleNamespace(time=time.time, monotonic=lambda: next(ticks) * 1e-6))


def test_status_looks_again_soon_after_progress_and_backs_off_without(make_ctx, monkeypatch):
    """Hardware changes reach BOS only through the status operator's looks (issue 13): right
    after a look that moved components on, the next comes soon; looks that move nothing back off
    to the re-check interval; the next change brings the short interval back."""
    svc = FakeServices(components=[component(N[0], override="on_hold")], power={N[0]: "off"},
                       cfs={N[0]: {"id": N[0]}})
    monkeypatch.setattr(status_module, "RECHECK_AFTER_LAST_MOVED", status_module.RECHECK_AFTER_PROGRESS)  # own test
    ticking(monkeypatch)
    op = StatusOperator()
    every = {"polling_frequency": 0}  # every pass a full look: the component (handed off) is looked at
    hints = [run(op.run_pass(make_ctx(svc, **every))) for _ in range(5)]  # moved to powering_on, stays off
    fast, slow = status_module.RECHECK_AFTER_PROGRESS, make_ctx(svc).recheck  # a fake pass takes far less
    assert [round(h, 2) for h in hints] == [fast, 2 * fast, 4 * fast, slow, slow]
    held = make_ctx(svc, **every)
    held.claims = Withholding({N[0]})  # another operator holds it for a moment: no back-off
    assert round(run(op.run_pass(held)), 2) == fast and held.contended == 1
    svc.pcs.power[N[0]] = "on"  # came on without booting the desired artifacts: S6 moves it again
    monkeypatch.setattr(status_module, "FEW_IN_TRANSITION", 0)  # then powering off: backs off as if many
    monkeypatch.setattr(status_module, "LOOK_SHARE", COSTLY)
    assert [round(run(op.run_pass(make_ctx(svc, **every))), 2) for _ in range(2)] == [fast, 2 * fast]
    assert len(patched(svc)) == 2


class Clock:
    """The status operator's clocks (epoch and monotonic), moved by the test."""

    def __init__(self) -> None:
        self.t = 0.0

    def time(self) -> float:
        return NOW + self.t

    def monotonic(self) -> float:
        return self.t


def looked_at(svc) -> list:
    return [ids for name, ids in ((c[0], c[1]) for c in svc.calls) if name == "pcs.power_status"]


def test_status_leaves_components_waiting_for_a_write_alone_until_their_record_changes(make_ctx, monkeypatch):
    """Issue 13: a node waiting for its report (S5) or for power-on (S2b) is not claimed, re-read,
    nor asked about at PCS and CFS on every pass while its record is unchanged: a fingerprint of
    the stored record says so. The report (a write) brings it back at once."""
    monkeypatch.setattr(status_module, "time", Clock())
    waiting = component(N[0], phase="powering_on", action="powering_on")  # S5: on, not yet reported
    pending = component(N[1], phase="powering_on")  # S2b: off, power-on not asked for yet
    svc = FakeServices(components=[waiting, pending], power={N[0]: "on", N[1]: "off"},
                       cfs={x: {"id": x} for x in N[:2]})
    op = StatusOperator()
    assert run(op.run_pass(make_ctx(svc))) is not None and patched(svc) == []
    assert looked_at(svc) == [N[:2]]
    svc.calls.clear()
    assert run(op.run_pass(make_ctx(svc))) is not None  # both still enabled: looked at again soon
    assert svc.calls.names() == ["bos.enabled_ids_in", "redis.enabled_page", "bos.fingerprints"]
    svc.bos.components[N[0]]["actual_state"]["boot_artifacts"] = dict(ARTIFACTS)  # the node reports
    run(op.run_pass(make_ctx(svc)))
    assert looked_at(svc) == [[N[0]]]
    assert [(p["id"], p.get("enabled")) for p in patched(svc)] == [(N[0], False)]  # S4b: booted, done


def test_status_learns_which_waiting_components_were_written_from_the_write_feed(make_ctx, monkeypatch):
    """Issue 13: with the store's write feed (store/write_feed.py), a pass reads nothing of the
    components left waiting (no fingerprints: at 20,000 nodes 10-14k whole records a pass) unless
    the feed names them written since the last pass; a pass the feed cannot answer checks their
    fingerprints instead. Nor does it list the enabled index again: the IDs the feed names are
    asked about (ZMSCORE) and the listing of the pass before kept (~0.1 s of CPU a pass at 100,000)."""
    monkeypatch.setattr(status_module, "time", Clock())
    waiting = [component(i, phase="powering_on", action="powering_on") for i in N[:2]]  # S5: on, not yet reported
    svc = FakeServices(components=waiting, power={i: "on" for i in N[:2]}, cfs={i: {"id": i} for i in N[:2]})
    svc.bos.feed = []
    op = StatusOperator()
    assert run(op.run_pass(make_ctx(svc))) is not None and patched(svc) == []
    for _ in range(2):
        svc.calls.clear()
        assert run(op.run_pass(make_ctx(svc))) is not None
        assert svc.calls.names() == ["bos.enabled_ids_in"]
    svc.bos.components[N[0]]["actual_state"]["boot_artifacts"] = dict(ARTIFACTS)  # the node reports
    svc.bos.feed.append([N[0]])
    run(op.run_pass(make_ctx(svc)))
    assert [c[1] for c in svc.calls if c[0] in ("redis.zmscore", "redis.enabled_page")] == [[N[0]]]
    assert looked_at(svc) == [[N[0]]]
    assert [(p["id"], p.get("enabled")) for p in patched(svc)] == [(N[0], False)]  # S4b: booted, done
    svc.bos.feed = None  # the feed cannot answer (its last entry trimmed away): the fingerprints say
    svc.calls.clear()
    run(op.run_pass(make_ctx(svc)))
    assert svc.calls.names() == ["bos.enabled_ids_in", "redis.enabled_page", "bos.fingerprints"]


def test_status_follows_which_components_are_enabled_through_the_write_feed(make_ctx, monkeypatch):
    """The enabled IDs a pass listed are kept while the write feed answers: a component a write
    named in it enabled is looked at by the next pass, one it disabled neither looked at nor
    counted as enabled (the session's last node: the pass that finds none enabled ends the look),
    without listing the enabled index again; a full look (every `polling_frequency`) lists it."""
    clock = Clock()
    monkeypatch.setattr(status_module, "time", clock)
    waiting = component(N[0], phase="powering_on", action="powering_on")  # S5: on, not yet reported
    later = component(N[1], override="on_hold", enabled=False)
    svc = FakeServices(components=[waiting, later], power={i: "on" for i in N[:2]}, cfs={i: {"id": i} for i in N[:2]})
    svc.bos.feed = []
    op = StatusOperator()
    run(op.run_pass(make_ctx(svc)))
    svc.bos.components[N[1]]["enabled"] = True  # session setup enables it
    svc.bos.feed.append([N[1]])
    svc.calls.clear()
    run(op.run_pass(make_ctx(svc)))
    assert "redis.enabled_page" not in svc.calls.names() and looked_at(svc) == [[N[1]]]
    svc.bos.components[N[0]]["enabled"] = False  # disabled by an administrator
    svc.bos.components[N[1]]["enabled"] = False
    svc.bos.feed.append(N[:2])
    svc.calls.clear()
    assert run(op.run_pass(make_ctx(svc))) is None  # nothing enabled: no further look due
    assert "redis.enabled_page" not in svc.calls.names() and looked_at(svc) == []
    svc.bos.components[N[0]]["enabled"] = True  # not through the API: only a listing sees it
    clock.t += DEFAULTS["polling_frequency"]
    svc.calls.clear()
    run(op.run_pass(make_ctx(svc)))
    assert "redis.enabled_page" in svc.calls.names() and looked_at(svc) == [[N[0]]]


def test_status_remembers_no_component_read_before_the_write_feed_was_read_again(make_ctx, monkeypatch):
    """A look at a batch session setup enabled (`look_soon`) runs beside the passes: a record it
    read before a pass read the write feed may have been written in between, named in the entries
    that pass consumed. It is not left waiting then (looked at again by the next pass)."""
    monkeypatch.setattr(status_module, "time", Clock())
    waiting = component(N[0], phase="powering_on", action="powering_on")  # S5
    svc = FakeServices(components=[waiting], power={N[0]: "on"}, cfs={N[0]: {"id": N[0]}})
    op = StatusOperator()
    ctx = make_ctx(svc)
    for round_, remembered in ((op._round - 1, False), (op._round, True)):
        run(op._evaluate_chunk(ctx, [waiting], {N[0]: "on"}, {N[0]: {"id": N[0]}}, {N[0]: 1}, round_))
        assert (N[0] in op._waiting) is remembered


def test_status_leaves_components_handed_off_to_a_power_operator_alone_until_it_writes(make_ctx, monkeypatch):
    """Issue 13 (realistic latencies): once this operator hands components to a power operator
    (S2b: `power_on_pending`; S6: `power_off_pending`), its passes neither claim, re-read nor ask
    PCS about them (claiming them kept power-on waiting for their leases) until the power
    operator's write, or the full look every polling_frequency."""
    clock = Clock()
    monkeypatch.setattr(status_module, "time", clock)
    off = component(N[0], override="on_hold")  # node off: S2b, to power-on
    running = component(N[1], override="on_hold", actual={**ARTIFACTS, "kernel": "old"})  # on, old boot: S6
    svc = FakeServices(components=[off, running], power={N[0]: "off", N[1]: "on"},
                       cfs={x: {"id": x} for x in N[:2]})
    op = StatusOperator()
    slow = {"polling_frequency": 1000}
    assert run(op.run_pass(make_ctx(svc, **slow))) is not None
    assert [(p["id"], p["status"]["phase"]) for p in patched(svc)] == [(N[0], "powering_on"), (N[1], "powering_off")]
    for _ in range(2):
        svc.calls.clear()
        clock.t += 1
        held = make_ctx(svc, **slow)
        held.claims = Withholding({N[0], N[1]})  # the power operators act on them now
        assert run(op.run_pass(held)) is not None  # still enabled: looked at again later
        assert held.contended == 0 and looked_at(svc) == [] and patched(svc) == []
        assert "bos.components_by_ids" not in svc.calls.names()
    svc.bos.components[N[0]]["last_action"] = {"action": "powering_on", "failed": False,
                                               "last_updated": ago(0)}  # power-on's write: power_on_called
    svc.calls.clear()
    clock.t += 1
    run(op.run_pass(make_ctx(svc, **slow)))
    assert looked_at(svc) == [[N[0]]]
    svc.calls.clear()
    clock.t += 1000  # the full look
    run(op.run_pass(make_ctx(svc, **slow)))
    assert N[1] in [i for ids in looked_at(svc) for i in ids]


@pytest.mark.parametrize("feed", [False, True], ids=["fingerprints", "write-feed"])
def test_status_looks_at_a_waiting_component_at_its_deadline_and_at_each_full_look(make_ctx, monkeypatch, feed):
    """What only the hardware changes (power went off, the node left PCS) is seen when the last
    action's time-out could change the decision, and at the full look every polling_frequency;
    alike whether the waiting components are told unwritten by their fingerprints or the write feed."""
    clock = Clock()
    monkeypatch.setattr(status_module, "time", clock)
    late = component(N[0], phase="powering_on", action="powering_on", age=5)  # power-on wait ends at +115 s
    gone = component(N[1], phase="powering_on", action="powering_on", age=-1000)  # ends at +1120 s
    svc = FakeServices(components=[late, gone], power={N[0]: "on", N[1]: "on"},
                       cfs={x: {"id": x} for x in N[:2]})
    svc.bos.feed = [] if feed else None
    op = StatusOperator()
    ctx = {"max_power_on_wait_time": 120, "max_boot_wait_time": 1200, "polling_frequency": 1000}
    run(op.run_pass(make_ctx(svc, **ctx)))
    svc.pcs.power[N[0]] = "off"
    del svc.pcs.power[N[1]]
    clock.t = 100
    run(op.run_pass(make_ctx(svc, **ctx)))
    assert patched(svc) == [] and len(looked_at(svc)) == 1
    clock.t = 116  # N0's power-on wait ran out: S2b, failed; N1 still waits
    run(op.run_pass(make_ctx(svc, **ctx)))
    assert looked_at(svc)[1:] == [[N[0]]]
    assert patched(svc) == [{"id": N[0], "status": {"status_override": ""}, "last_action": {"failed": True}}]
    clock.t = 1001  # the full look: N1 left PCS (S0)
    run(op.run_pass(make_ctx(svc, **ctx)))
    assert N[1] in looked_at(svc)[2]
    assert [p["status"]["status_override"] for p in patched(svc) if p["id"] == N[1]] == ["on_hold"]


@pytest.mark.parametrize("feed", [False, True], ids=["fingerprints", "write-feed"])
def test_the_full_look_asks_pcs_and_cfs_about_waiting_components_and_rereads_only_those_that_changed(
        make_ctx, monkeypatch, feed):
    """Issue 13: the full look every polling_frequency asks PCS and CFS about every component left
    waiting (for its report, for its power state, in transition), and claims, re-reads and decides
    only those whose record, P or CFS fields differ from what they were decided with: the others
    decide the same. Re-reading all of them was three to four reads of each node per 100,000-node
    boot. A node that left CFS while waiting for its report is put on hold (S0) at that look."""
    clock = Clock()
    monkeypatch.setattr(status_module, "time", clock)
    booting = [component(i, phase="powering_on", action="powering_on") for i in N[:2]]  # S5: wait for a write
    configuring = component(N[2], phase="configuring", actual=ARTIFACTS, configuration="cfg")  # S4e: P and CFS
    stopping = component(N[3], phase="powering_off", action="powering_off_gracefully", desired=None)  # S3: P
    pending = {"desired_config": "cfg", "configuration_status": "pending"}
    svc = FakeServices(components=[*booting, configuring, stopping], power={i: "on" for i in N[:4]},
                       cfs={i: {"id": i, **pending} for i in N[:4]})
    svc.bos.feed = [] if feed else None
    op = StatusOperator()
    slow = {"polling_frequency": 1000, "max_power_on_wait_time": 5000, "max_boot_wait_time": 5000}  # no time-out
    run(op.run_pass(make_ctx(svc, **slow)))
    assert patched(svc) == [] and sorted(op._waiting) == N[:4]
    del svc.cfs.records[N[1]]  # left CFS while booting
    svc.cfs.records[N[3]] = {"id": N[3], "desired_config": "cfg", "configuration_status": "configured"}
    svc.calls.clear()
    clock.t += 1000  # the full look
    run(op.run_pass(make_ctx(svc, **slow)))
    assert sorted(i for ids in looked_at(svc) for i in ids) == N[:4]  # PCS asked about every one
    asked_cfs = [c for c in svc.calls if c[0].startswith("cfs.")]
    assert asked_cfs == [("cfs.components", N[:4])]
    assert [c[1] for c in svc.calls if c[0] == "bos.components_by_ids"] == [[N[1], N[3]]]  # changed only
    assert [(p["id"], p["status"]["status_override"]) for p in patched(svc)] == [(N[1], "on_hold")]
    assert sorted(op._waiting) == [N[0], N[2], N[3]]  # N3 decided again (S3: unchanged), remembered


def test_status_remembers_a_component_whose_cfs_fields_are_no_json_scalars(make_ctx, monkeypatch):
    """Observations are shared between waiting components (a dict keyed by them): one that holds an
    unhashable CFS field (a misbehaving CFS) is remembered as it is, not lost with its page."""
    monkeypatch.setattr(status_module, "time", Clock())
    configuring = component(N[0], phase="configuring", actual=ARTIFACTS, configuration="cfg")  # S4a: left as it is
    odd = {"id": N[0], "desired_config": {"a": 1}, "configuration_status": "pending"}
    svc = FakeServices(components=[configuring], power={N[0]: "on"}, cfs={N[0]: odd})
    op = StatusOperator()
    run(op._evaluate_chunk(make_ctx(svc), [configuring], {N[0]: "on"}, {N[0]: odd}, {N[0]: 1}, op._round))
    assert patched(svc) == [] and op._waiting[N[0]][2] == ("on", {"a": 1}, "pending")


def test_status_asks_only_pcs_and_cfs_about_components_in_transition_until_either_changes(make_ctx, monkeypatch):
    """Issue 13 (realistic latencies): a node configuring (S4e) or powering off (S3) changes only
    when CFS or PCS says so, or its record is written. While neither says anything new, a look is
    one by-ID question to each (no claim, no re-read, no write), so looks can come often; the one
    that changed is then claimed, re-read and decided, with the P just read."""
    clock = Clock()
    monkeypatch.setattr(status_module, "time", clock)
    booted = dict(desired=ARTIFACTS, actual=ARTIFACTS, configuration="cfg")
    configuring = component(N[0], phase="configuring", **booted)
    stopping = component(N[1], phase="powering_off", action="powering_off_gracefully", desired=None)
    pending = {"id": N[0], "desired_config": "cfg", "configuration_status": "pending"}
    svc = FakeServices(components=[configuring, stopping], power={N[0]: "on", N[1]: "on"},
                       cfs={N[0]: pending, N[1]: {"id": N[1], "desired_config": ""}})
    op = StatusOperator()
    assert run(op.run_pass(make_ctx(svc))) is not None and patched(svc) == []
    for _ in range(2):
        svc.calls.clear()
        clock.t += 1
        assert run(op.run_pass(make_ctx(svc))) is not None  # both in flight: looked at again soon
        assert svc.calls.names() == ["bos.enabled_ids_in", "redis.enabled_page", "bos.fingerprints",
                                     "cfs.components", "pcs.power_status"]
        assert looked_at(svc) == [N[:2]] and patched(svc) == []
    svc.cfs.records[N[0]] = dict(pending, configuration_status="configured")
    svc.calls.clear()
    clock.t += 1
    assert run(op.run_pass(make_ctx(svc))) is not None  # N1 still powering off
    assert looked_at(svc) == [N[:2]]  # the watch's question only: N0's P is not asked again
    assert [c[1] for c in svc.calls if c[0] == "bos.components_by_ids"] == [[N[0]]]  # claimed, re-read
    assert patched(svc) == [{"id": N[0], "status": {"status_override": "", "phase": ""},
                             "event_stats": {"power_on_attempts": 0, "power_off_graceful_attempts": 0,
                                             "power_off_forceful_attempts": 0}, "enabled": False}]
    svc.pcs.power[N[1]] = "off"  # the node went down: S2a
    clock.t += 1
    run(op.run_pass(make_ctx(svc)))
    assert [(p["id"], p.get("enabled")) for p in patched(svc)[1:]] == [(N[1], False)]


def test_status_asks_only_pcs_about_components_waiting_for_their_power_state(make_ctx, monkeypatch):
    """Issue 13 (realistic latencies): a node powering off (S6) waits for PCS alone; CFS is not
    asked about it at each look (a reboot's nodes powering off listed all of CFS twice a second),
    but by ID once PCS says it is off, before it is decided (S2b, not S0: CFS knows it)."""
    clock = Clock()
    monkeypatch.setattr(status_module, "time", clock)
    stopping = component(N[0], phase="powering_off", action="powering_off_gracefully",
                         actual={**ARTIFACTS, "kernel": "old"})
    svc = FakeServices(components=[stopping], power={N[0]: "on"}, cfs={N[0]: {"id": N[0], "desired_config": ""}})
    op = StatusOperator()
    assert run(op.run_pass(make_ctx(svc))) is not None and patched(svc) == []
    for _ in range(2):
        svc.calls.clear()
        clock.t += 1
        run(op.run_pass(make_ctx(svc)))
        assert looked_at(svc) == [[N[0]]] and "cfs.components" not in svc.calls.names()
    svc.pcs.power[N[0]] = "off"  # Soft-Off done
    svc.calls.clear()
    clock.t += 1
    run(op.run_pass(make_ctx(svc)))
    assert [c[1] for c in svc.calls if c[0] == "cfs.components"] == [[N[0]]]
    assert [(p["id"], p["status"]) for p in patched(svc)] == [(N[0], {"status_override": "", "phase": "powering_on"})]


def test_status_backs_off_less_while_components_wait_for_pcs_or_cfs(make_ctx, monkeypatch):
    """Issue 13: while a node configures, only CFS can say it is done; the looks back off to
    RECHECK_IN_TRANSITION, not to the re-check interval, so the last node of a session is
    noticed soon after CFS says so; and not at all while few are in transition (a session's
    last nodes: their looks are cheap)."""
    svc = FakeServices(components=[component(N[0], phase="configuring", actual=ARTIFACTS, configuration="cfg")],
                       power={N[0]: "on"},
                       cfs={N[0]: {"id": N[0], "desired_config": "cfg", "configuration_status": "pending"}})
    ticking(monkeypatch)
    op = StatusOperator()
    fast, capped = status_module.RECHECK_AFTER_PROGRESS, status_module.RECHECK_IN_TRANSITION
    assert make_ctx(svc).recheck > capped and status_module.FEW_IN_TRANSITION >= 1
    assert [round(run(op.run_pass(make_ctx(svc))), 2) for _ in range(3)] == [fast, fast, fast]
    monkeypatch.setattr(status_module, "FEW_IN_TRANSITION", 0)  # as if many were in transition
    monkeypatch.setattr(status_module, "LOOK_SHARE", COSTLY)  # ... and their looks were costly
    assert [round(run(op.run_pass(make_ctx(svc))), 2) for _ in range(4)] == [2 * fast, capped, capped, capped]
    assert patched(svc) == []


def configuring(cid: str) -> dict:
    """A node configuring its desired configuration (S4e while CFS says `pending`)."""
    return component(cid, phase="configuring", actual=ARTIFACTS, configuration="cfg")


def pending_in_cfs(*ids: str) -> dict:
    return {i: {"id": i, "desired_config": "cfg", "configuration_status": "pending"} for i in ids}


def looks_take(svc, clock: "Clock", seconds: float) -> None:
    """Each PCS question of `svc` takes `seconds` on `clock` (a look's cost)."""
    ask = svc.pcs.power_status

    async def slow(ids):
        clock.t += seconds
        return await ask(ids)
    svc.pcs.power_status = slow


def writes_take(svc, clock: "Clock", seconds: float) -> None:
    """Each write of components to BOS by `svc` takes `seconds` on `clock` (a pass's writes)."""
    write = svc.bos.patch_components

    async def slow(*args, **kwargs):
        clock.t += seconds
        return await write(*args, **kwargs)
    svc.bos.patch_components = slow


def cadence_of(op, make_ctx, svc, clock: "Clock", passes: int) -> list:
    """From each pass's start to the next's (the pass on `clock`, then the wait it asked for), each
    pass when the previous one asked to come back: the time between two looks that both ask."""
    cadence = []
    for _ in range(passes):
        began = clock.t
        ctx = make_ctx(svc)
        ctx.elapsed = lambda began=began: clock.t - began  # the pass's duration on `clock` too
        hint = run(op.run_pass(ctx))  # (the pass moves the clock: not `clock.t += run(...)`)
        clock.t += hint
        cadence.append(round(clock.t - began, 2))
    return cadence


@pytest.mark.parametrize("cost, expected", [(0.0, [0.2, 0.2, 0.2, 0.2]), (0.1, [0.2, 0.4, 0.4, 0.4]),
                                            (0.3, [0.3, 0.4, 0.5, 0.5])])
def test_status_backs_off_in_transition_no_further_than_its_looks_cost(make_ctx, monkeypatch, cost, expected):
    """Issue 13 (a reboot's off -> On lag): while many components are in transition the looks
    back off no further than LOOK_SHARE times what the last look took (at least
    RECHECK_AFTER_PROGRESS, at most RECHECK_IN_TRANSITION): a look at 10,000 nodes powering off
    costs ~0.05 s, and at 0.5 s between looks a node that went off waited up to that long for
    its `On`."""
    clock = Clock()
    monkeypatch.setattr(status_module, "time", clock)
    monkeypatch.setattr(status_module, "FEW_IN_TRANSITION", 0)  # as if many were in transition
    svc = FakeServices(components=[configuring(N[0])], power={N[0]: "on"}, cfs=pending_in_cfs(N[0]))
    looks_take(svc, clock, cost)
    assert (status_module.RECHECK_AFTER_PROGRESS, status_module.RECHECK_IN_TRANSITION, status_module.LOOK_SHARE) \
        == (0.2, 0.5, 4)
    assert cadence_of(StatusOperator(), make_ctx, svc, clock, 4) == expected
    assert len(looked_at(svc)) == 4 and patched(svc) == []


def test_status_looks_again_soon_after_a_look_that_found_progress(make_ctx, monkeypatch):
    """Issue 13: the look after one that found nodes moved comes RECHECK_AFTER_PROGRESS after it,
    not the backed-off interval the looks had before: the nodes of a session move together, and a
    reboot's nodes found off one look waited half a second more for the next look at the others."""
    clock = Clock()
    monkeypatch.setattr(status_module, "time", clock)
    monkeypatch.setattr(status_module, "FEW_IN_TRANSITION", 0)
    monkeypatch.setattr(status_module, "LOOK_SHARE", COSTLY)
    svc = FakeServices(components=[configuring(N[0]), configuring(N[1])], power={N[0]: "on", N[1]: "on"},
                       cfs=pending_in_cfs(N[0], N[1]))
    looks_take(svc, clock, 0.01)
    op = StatusOperator()
    capped = status_module.RECHECK_IN_TRANSITION
    assert cadence_of(op, make_ctx, svc, clock, 4)[-2:] == [capped, capped]  # backed off
    svc.cfs.records[N[0]]["configuration_status"] = "configured"
    fast = status_module.RECHECK_AFTER_PROGRESS
    assert cadence_of(op, make_ctx, svc, clock, 1) == [fast] and [p["id"] for p in patched(svc)] == [N[0]]  # S4c
    svc.calls.clear()
    assert cadence_of(op, make_ctx, svc, clock, 1) == [fast * 2]
    assert looked_at(svc) == [[N[1]]]  # N1's look was due: asked about, not skipped


@pytest.mark.parametrize("few, after_progress", [(200, 0.1), (1, 0.2)])
def test_status_looks_again_sooner_after_progress_when_few_remain_in_transition(make_ctx, monkeypatch, few,
                                                                                 after_progress):
    """Issue 13 (the realistic boot's tail, a reboot's last soft-offs): after a pass that moved
    components on and left no more than FEW_IN_TRANSITION in transition (a session's last nodes),
    the next look comes in RECHECK_AFTER_LAST_MOVED; with more left, in RECHECK_AFTER_PROGRESS. A
    look that finds nothing never brings the next one sooner than RECHECK_AFTER_PROGRESS: a node
    that does not move is not asked about at 10 Hz."""
    clock = Clock()
    monkeypatch.setattr(status_module, "time", clock)
    monkeypatch.setattr(status_module, "FEW_IN_TRANSITION", few)
    svc = FakeServices(components=[configuring(N[0]), configuring(N[1]), configuring(N[2])],
                       power={i: "on" for i in N[:3]}, cfs=pending_in_cfs(*N[:3]))
    looks_take(svc, clock, 0.01)
    assert status_module.RECHECK_AFTER_LAST_MOVED == 0.1
    op = StatusOperator()
    cadence_of(op, make_ctx, svc, clock, 2)
    svc.cfs.records[N[0]]["configuration_status"] = "configured"
    assert cadence_of(op, make_ctx, svc, clock, 1) == [after_progress] and [p["id"] for p in patched(svc)] == [N[0]]
    svc.calls.clear()
    assert cadence_of(op, make_ctx, svc, clock, 3) == [0.2, 0.2, 0.2]  # N1 and N2 stuck: no faster than 0.2
    assert looked_at(svc) == [N[1:3]] * 3  # each of those looks was due: asked about, not skipped


@pytest.mark.parametrize("write", [0.1, 0.3])
def test_status_times_the_next_look_from_the_look_not_from_the_pass_s_writes(make_ctx, monkeypatch, write):
    """Issue 13 (the realistic boot's tail and the reboot's off -> On): the next look is due the
    re-check interval after the last look began, whatever the pass wrote after it: a look that
    found 2,800 nodes configured wrote them for 0.2-0.5 s, and a wait of at least the whole pass
    put the looks of a 10,000-node boot's last nodes 0.5-0.7 s apart. A pass that took longer
    than the interval is followed by the next look at once."""
    clock = Clock()
    monkeypatch.setattr(status_module, "time", clock)
    monkeypatch.setattr(status_module, "LOOK_SHARE", COSTLY)
    monkeypatch.setattr(status_module, "FEW_IN_TRANSITION", 0)  # many left: not RECHECK_AFTER_LAST_MOVED
    svc = FakeServices(components=[configuring(N[0]), configuring(N[1]), configuring(N[2])],
                       power={i: "on" for i in N[:3]}, cfs=pending_in_cfs(*N[:3]))
    looks_take(svc, clock, 0.01)
    writes_take(svc, clock, write)
    op = StatusOperator()
    fast = status_module.RECHECK_AFTER_PROGRESS
    assert cadence_of(op, make_ctx, svc, clock, 2) == [fast, 2 * fast]  # nothing written: backs off
    svc.cfs.records[N[0]]["configuration_status"] = "configured"
    assert cadence_of(op, make_ctx, svc, clock, 1) == [round(max(fast, 0.01 + write), 2)]  # S4c written
    svc.cfs.records[N[1]]["configuration_status"] = "configured"
    assert cadence_of(op, make_ctx, svc, clock, 1) == [round(max(fast, 0.01 + write), 2)]
    assert [p["id"] for p in patched(svc)] == [N[0], N[1]]


def test_status_asks_pcs_and_cfs_about_components_in_transition_on_its_timer_not_at_every_write(
        make_ctx, monkeypatch):
    """Issue 13: during a boot every node's report wakes the status operator; such a pass looks at
    the reported node, but asks PCS and CFS about the nodes in transition only when their look is
    due (the re-check interval after the last look began), not on every write."""
    clock = Clock()
    monkeypatch.setattr(status_module, "time", clock)
    configuring = component(N[0], phase="configuring", actual=ARTIFACTS, configuration="cfg")
    booting = component(N[1], phase="powering_on", action="powering_on")  # S5: waits for its report
    svc = FakeServices(components=[configuring, booting], power={N[0]: "on", N[1]: "on"},
                       cfs={N[0]: {"id": N[0], "desired_config": "cfg", "configuration_status": "pending"},
                            N[1]: {"id": N[1], "desired_config": "cfg", "configuration_status": "pending"}})
    op = StatusOperator()
    assert round(run(op.run_pass(make_ctx(svc))), 2) == status_module.RECHECK_AFTER_PROGRESS
    svc.bos.components[N[1]]["actual_state"]["boot_artifacts"] = dict(ARTIFACTS)  # N1 reports
    svc.calls.clear()
    clock.t += 0.1  # woken by the report, before N0's look is due
    run(op.run_pass(make_ctx(svc)))
    assert looked_at(svc) == [[N[1]]] and [c[1] for c in svc.calls if c[0] == "cfs.components"] == [[N[1]]]
    assert [(p["id"], p["status"].get("phase")) for p in patched(svc)] == [(N[1], "configuring")]  # S4e
    svc.calls.clear()
    clock.t += status_module.RECHECK_AFTER_PROGRESS  # N0's look is due: asked, unchanged
    run(op.run_pass(make_ctx(svc)))
    assert looked_at(svc) == [[N[0]], [N[1]]] and patched(svc) == []  # N1: its record changed (S4e written)


class Withholding(LocalClaims):
    """Claims for one process in which another operator holds `held`."""

    def __init__(self, held: set) -> None:
        self.held = held

    async def claim(self, ids, into=None):
        return await super().claim([i for i in ids if i not in self.held], into)


def test_status_pcs_failure_changes_nothing(make_ctx):
    svc = FakeServices(components=[component(N[0], override="on_hold")], power={N[0]: "off"}, cfs={N[0]: {"id": N[0]}})
    svc.pcs.fail_ops.add("status")
    run(StatusOperator().run_pass(make_ctx(svc)))
    assert patched(svc) == []


# -- configuration --

def test_configuration_skips_components_missing_from_cfs_and_pushes_the_rest(make_ctx):  # D27
    comps = [component(x, phase="configuring", configuration="cfg", session="s1") for x in N[:3]]
    comps.append(component(N[3], phase="configuring", configuration="other", session="s2"))
    records = {N[0]: {"id": N[0], "desired_config": "old"}, N[2]: {"id": N[2], "desired_config": "cfg"},
               N[3]: {"id": N[3], "desired_config": ""}}
    svc = FakeServices(components=comps, cfs=records)
    run(ConfigurationOperator().run_pass(make_ctx(svc)))
    assert [c[1:] for c in svc.calls if c[0] == "cfs.patch"] == [
        ([N[0]], {"enabled": True, "desired_config": "cfg", "tags": {"bos_session": "s1"}}),
        ([N[3]], {"enabled": True, "desired_config": "other", "tags": {"bos_session": "s2"}})]
    assert patched(svc) == [{"id": N[0], "error": ""}, {"id": N[3], "error": ""}]


def test_configuration_records_cfs_errors(make_ctx):
    svc = FakeServices(components=[component(N[0], phase="configuring", configuration="bad")],
                       cfs={N[0]: {"id": N[0], "desired_config": ""}})
    svc.cfs.fail_configs.add("bad")
    run(ConfigurationOperator().run_pass(make_ctx(svc)))
    (patch,) = patched(svc)
    assert "cfs" in patch["error"] and set(patch) == {"id", "error"}


# -- actual-state-cleanup --

def test_actual_state_cleanup_selects_stale_non_empty_states(make_ctx):
    def with_actual(cid, artifacts, updated):
        comp = component(cid, enabled=False)
        comp["actual_state"] = {"boot_artifacts": dict(artifacts), "bss_token": "t"}
        if updated is not None:
            comp["actual_state"]["last_updated"] = updated
        return comp
    empty = {"kernel": "", "kernel_parameters": "", "initrd": "", "timestamp": "2020-01-01T00:00:00"}
    comps = [with_actual(N[0], ARTIFACTS, ago(4 * 3600 + 1)), with_actual(N[1], ARTIFACTS, ago(100)),
             with_actual(N[2], empty, ago(99999)), with_actual(N[3], ARTIFACTS, None)]
    svc = FakeServices(components=comps)
    ctx = make_ctx(svc)
    ctx.now = NOW
    run(ActualStateCleanupOperator().run_pass(ctx))
    batches = [c[1] for c in svc.calls if c[0] == "bos.patch_components"]
    empty_actual = {"boot_artifacts": {"kernel": "", "kernel_parameters": "", "initrd": ""}, "bss_token": ""}
    assert batches[0] == [{"id": N[0], "actual_state": empty_actual}, {"id": N[3], "actual_state": empty_actual}]
    assert batches[1] == [{"id": N[0], "error": "", "last_action": {"action": "actual_state_cleanup", "failed": False}},
                          {"id": N[3], "error": "", "last_action": {"action": "actual_state_cleanup", "failed": False}}]


# -- discovery --

def test_discovery_creates_missing_nodes_only(make_ctx):
    hsm = [node(N[2]), node(N[0]), node(N[1]), {"ID": "x1000c0s0b0", "Type": "NodeBMC"}]
    svc = FakeServices(components=[component(N[1])], nodes=hsm)
    run(DiscoveryOperator().run_pass(make_ctx(svc)))
    assert [c for c in svc.calls if c[0] == "bos.create_components"] == [("bos.create_components", [N[0], N[2]])]
    assert "bos.component_ids" in svc.calls.names() and "bos.list_components" not in svc.calls.names()  # IDs only
    assert new_record(N[0]) == {
        "id": N[0], "actual_state": {"boot_artifacts": {"kernel": "", "kernel_parameters": "", "initrd": ""},
                                     "bss_token": ""},
        "desired_state": {"configuration": "", "boot_artifacts": {"kernel": "", "kernel_parameters": "", "initrd": ""},
                          "bss_token": ""},
        "staged_state": {}, "last_action": {"action": "newly_discovered", "failed": False},
        "enabled": False, "error": "", "session": ""}


# -- session completion --

def running(name, tenant=None):
    return {"name": name, "tenant": tenant, "operation": "boot", "template_name": "t", "components": "",
            "status": {"status": "running", "start_time": "2025-01-13T15:00:00", "end_time": None, "error": None}}


def completion(make_ctx, sessions, comps, tenants=None):
    svc = FakeServices(sessions=sessions, components=comps, tenants=tenants or {})
    run(SessionCompletionOperator().run_pass(make_ctx(svc)))
    return svc, {(s["name"], s["tenant"]): s["status"]["status"] for s in svc.bos.sessions}


def test_session_completes_when_no_component_is_enabled_or_staged(make_ctx):
    staged = component(N[2], enabled=False, session="")
    staged["staged_state"] = {"session": "s3"}
    comps = [component(N[0], session="s1", enabled=False), component(N[1], session="s2", enabled=True), staged]
    svc, states = completion(make_ctx, [running("s1"), running("s2"), running("s3")], comps)
    assert states == {("s1", None): "complete", ("s2", None): "running", ("s3", None): "running"}
    names = [c[0] for c in svc.calls if c[0] in ("bos.patch_session", "bos.save_session_status")]
    assert names == ["bos.patch_session", "bos.save_session_status"]
    assert "bos.list_sessions" not in svc.calls.names()  # the running sessions' names only (issue 13)
    patch = next(c for c in svc.calls if c[0] == "bos.patch_session")[3]
    assert patch["status"]["status"] == "complete" and patch["status"]["end_time"] and "error" not in patch["status"]


def test_tenant_session_ignores_components_it_does_not_own(make_ctx):
    comps = [component(N[0], session="s1"), component(N[1], session="s2")]
    _, states = completion(make_ctx, [running("s1", "blue"), running("s2", "blue")], comps,
                           tenants={"blue": [N[1]]})
    assert states == {("s1", "blue"): "complete", ("s2", "blue"): "running"}


def test_d25_untenanted_session_ignores_same_named_tenant_sessions_nodes(make_ctx):
    comps = [component(N[0], session="s1")]  # enabled, owned by tenant blue, which has its own "s1"
    _, states = completion(make_ctx, [running("s1"), running("s1", "blue")], comps, tenants={"blue": [N[0]]})
    assert states == {("s1", None): "complete", ("s1", "blue"): "running"}
    _, states = completion(make_ctx, [running("s1")], comps, tenants={"blue": [N[0]]})
    assert states == {("s1", None): "running"}  # no tenant session named s1: the reference rule


# -- session cleanup --

def test_session_cleanup_disabled_by_zero_ttl(make_ctx):
    for ttl in ("0", "0m", "0d"):
        svc = FakeServices()
        run(SessionCleanupOperator().run_pass(make_ctx(svc, cleanup_completed_session_ttl=ttl)))
        assert svc.calls == []


def test_session_cleanup_deletes_old_complete_sessions(make_ctx):
    svc = FakeServices()
    run(SessionCleanupOperator().run_pass(make_ctx(svc, cleanup_completed_session_ttl="2h")))
    assert svc.calls == [("bos.delete_sessions", "complete", "2h")]
