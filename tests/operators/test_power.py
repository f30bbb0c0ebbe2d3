"""Power operators (operators.md §5), the retry gate (§2.5) and action updates (§2.4)."""

from __future__ import annotations

import asyncio

import pytest

from bos_server.clients.rest import ServiceError
from bos_server.operators import framework
from bos_server.operators.claims import Claim, LocalClaims
from bos_server.operators.framework import RETRY_LIMIT_ERROR, action_update, chunks, one_line
from bos_server.operators.power_off_forceful import PowerOffForcefulOperator
from bos_server.operators.power_off_graceful import PowerOffGracefulOperator
from bos_server.operators.power_on import PowerOnOperator

from .conftest import run
from tests.support.clock import loop_time, run_virtual

from .fakes import FakeServices, fail, node
from .helpers import ARTIFACTS, component

N = [f"x1000c0s{i}b0n0" for i in range(6)]
SBPS = dict(ARTIFACTS, kernel_parameters="quiet root=sbps-s3:s3://boot-images/img-a/rootfs:e")


def pending_on(cid, **kw):
    """A component in power_on_pending."""
    kw.setdefault("phase", "powering_on")
    return component(cid, **kw)


def services(components, **kw):
    return FakeServices(components=components, nodes=[node(x) for x in N], **kw)


def updates(svc, after=0):
    """Bulk PATCH bodies sent to BOS, in order."""
    return [c[1] for c in svc.calls[after:] if c[0] == "bos.patch_components"]


# -- generic pieces --

def test_chunks_split_by_batch_size_and_zero_means_one():
    assert chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert chunks(list(range(5)), 0) == [list(range(5))]
    assert chunks([], 3) == []


def test_one_line_errors():
    assert one_line(KeyError("rootfs")) == "'rootfs'"
    assert one_line("a\nb\t c\n") == "a b c"
    assert one_line(TimeoutError()) == "TimeoutError"


def test_action_update_increments_whether_or_not_the_action_succeeded():
    comps = [component(N[0], stats={"power_on_attempts": 2}), component(N[1], stats={})]
    assert action_update(comps, {N[1]: "boom"}, "powering_on", "power_on_attempts") == [
        {"id": N[0], "error": "", "last_action": {"action": "powering_on", "failed": False},
         "event_stats": {"power_on_attempts": 3}},
        {"id": N[1], "error": "boom", "last_action": {"action": "powering_on", "failed": False},
         "event_stats": {"power_on_attempts": 1}}]


# -- retry gate --

@pytest.mark.parametrize("attempts,policy,default,acted", [
    (2, None, 3, True), (3, None, 3, False), (0, 0, 3, False), (5, 6, 3, True), (6, 6, 3, False),
    (100, -1, 3, True), (1, None, 1, False),
])
def test_retry_gate(make_ctx, attempts, policy, default, acted):
    comp = pending_on(N[0], stats={"power_on_attempts": attempts}, retry_policy=policy)
    svc = services([comp])
    run(PowerOnOperator().run_pass(make_ctx(svc, default_retry_policy=default)))
    transitions = [c for c in svc.calls if c[0] == "pcs.transition"]
    assert bool(transitions) is acted
    if not acted:
        assert updates(svc) == [[{"id": N[0], "status": {"status_override": "failed"}, "error": RETRY_LIMIT_ERROR}]]


@pytest.mark.parametrize("error,expected", [("", True), (None, True), ("BSS broke", False)])
def test_retry_gate_keeps_a_specific_error(make_ctx, error, expected):  # D28
    svc = services([component(N[0], phase="powering_off", stats={"power_off_graceful_attempts": 3}, error=error)])
    run(PowerOffGracefulOperator().run_pass(make_ctx(svc)))
    (patch,), = updates(svc)
    assert ("error" in patch) is expected
    assert patch["status"] == {"status_override": "failed"} and "enabled" not in patch


# -- power-off-graceful --

def test_graceful_soft_off_for_pending_components_known_to_hsm(make_ctx):
    comps = [component(N[0], phase="powering_off"), component("x9999c0s0b0n0", phase="powering_off"),
             component(N[1], phase="powering_off", action="powering_off_gracefully"),  # already called
             component(N[2], phase="powering_off", enabled=False)]
    svc = services(comps)
    run(PowerOffGracefulOperator().run_pass(make_ctx(svc)))
    assert [c for c in svc.calls if c[0] == "pcs.transition"] == [("pcs.transition", "Soft-Off", [N[0]])]
    assert updates(svc) == [[{"id": N[0], "error": "", "last_action": {"action": "powering_off_gracefully",
                                                                      "failed": False},
                              "event_stats": {"power_off_graceful_attempts": 1}}]]


def test_pcs_failure_is_recorded_on_every_component_of_the_request(make_ctx):
    svc = services([component(N[0], phase="powering_off"), component(N[1], phase="powering_off")])
    svc.pcs.fail_ops.add("Soft-Off")
    run(PowerOffGracefulOperator().run_pass(make_ctx(svc)))
    preset, batch = updates(svc)  # the action update before Soft-Off, then the errors it gave
    assert all(p["event_stats"] == {"power_off_graceful_attempts": 1} and p["error"] == "" for p in preset)
    assert {p["id"] for p in batch} == {N[0], N[1]}
    assert all(set(p) == {"id", "error"} and "pcs" in p["error"] and "\n" not in p["error"] for p in batch)
    assert all("pcs" in svc.bos.components[x]["error"] for x in N[:2])


def test_graceful_writes_its_action_update_before_soft_off_and_nothing_is_powered_off_if_it_fails(make_ctx):
    """Deviation (issue 13, operators.md §5.2): the action update precedes Soft-Off, as power-on's
    precedes `On` (§5.5), so the status operator's S3/S6 patch goes with it; a write that fails
    fails the chunk before the call."""
    svc = services([component(N[0], phase="powering_off")])
    run(PowerOffGracefulOperator().run_pass(make_ctx(svc)))
    made = [c[0] for c in svc.calls]
    assert made.index("bos.patch_components") < made.index("pcs.transition")
    assert len(updates(svc)) == 1  # nothing after the call: it gave no error
    svc = services([component(N[0], phase="powering_off")])
    svc.bos.fail_patch = ServiceError("bos", "PATCH", "/components", "status 503", 503)
    with pytest.raises(ServiceError):  # the error update fails too: the pass ends (the runner logs it)
        run(PowerOffGracefulOperator().run_pass(make_ctx(svc)))
    assert [c for c in svc.calls if c[0] == "pcs.transition"] == []


# -- power-off-forceful: cadence --

def test_forceful_fires_only_after_the_wait_for_both_called_statuses(make_ctx):
    comps = [component(N[0], phase="powering_off", action="powering_off_gracefully", age=301),
             component(N[1], phase="powering_off", action="powering_off_forcefully", age=301),
             component(N[2], phase="powering_off", action="powering_off_gracefully", age=200),
             component(N[3], phase="powering_off", action="powering_off_forcefully", age=None)]
    svc = services(comps)
    ctx = make_ctx(svc)
    from .helpers import NOW
    ctx.now = NOW
    op = PowerOffForcefulOperator()
    hint = run(op.run_pass(ctx))
    assert [c for c in svc.calls if c[0] == "pcs.transition"] == [("pcs.transition", "Force-Off", [N[0], N[1], N[3]])]
    assert 100 <= hint <= 102  # wakes when N2 becomes due, not a polling period later
    (batch,) = updates(svc)
    assert all(p["last_action"] == {"action": "powering_off_forcefully", "failed": False} for p in batch)


class Clock:
    """The forceful operator's clocks (epoch and monotonic), moved by the test."""

    def __init__(self) -> None:
        from .helpers import NOW
        self.start = NOW
        self.t = 0.0

    def time(self) -> float:
        return self.start + self.t

    def monotonic(self) -> float:
        return self.t


def read_ids(svc) -> list:
    """IDs whose records the passes read, in order (store reads by ID)."""
    return [i for c in svc.calls if c[0] == "bos.components_by_ids" for i in c[1]]


def stamped_ids(svc) -> list:
    """IDs whose last action's stamp alone the passes read (bos_reads.StoreReads.action_stamps)."""
    return [i for c in svc.calls if c[0] == "bos.action_stamps" for i in c[1]]


def test_forceful_reads_only_the_due_candidates_and_the_index_lacks_only_at_a_full_look(make_ctx, monkeypatch):
    """Issue 13: a pass takes the due candidates from the store's power-off score index (scored by
    the last action's stamp) and reads those alone: a waiting candidate is neither listed nor read,
    and the pass wakes when the earliest one becomes due. Candidates the index lacks (written by a
    version without it) are found by the full look, every `polling_frequency`, their stamps read
    alone first: only a due one is read in full."""
    from bos_server.operators import power_off_forceful
    clock = Clock()
    monkeypatch.setattr(power_off_forceful, "time", clock)
    comps = [component(N[0], phase="powering_off", action="powering_off_gracefully", age=10),
             component(N[1], phase="powering_off", action="powering_off_gracefully", age=301)]
    svc = services(comps)
    op = PowerOffForcefulOperator()

    def a_pass() -> list:
        svc.calls.clear()
        ctx = make_ctx(svc, polling_frequency=1000)
        ctx.now = clock.time()
        hints.append(run(op.run_pass(ctx)))
        return [i for c in svc.calls if c[0] == "pcs.transition" for i in c[2]]

    hints: list = []
    assert a_pass() == [N[1]] and set(read_ids(svc)) == {N[1]}  # N0 waits: not read
    assert 290 <= hints[-1] <= 292  # wakes when N0 becomes due
    assert "bos.enabled_ids_in" not in svc.calls.names()  # no candidate listed
    svc.bos.unindexed |= {N[2], N[3]}  # written by an older version
    svc.bos.components[N[2]] = component(N[2], phase="powering_off", action="powering_off_gracefully", age=1000)
    svc.bos.components[N[3]] = component(N[3], phase="powering_off", action="powering_off_gracefully", age=-5000)
    clock.t = 100
    assert N[2] not in a_pass() and "bos.missing_from_power_off_index" not in svc.calls.names()
    assert N[0] not in read_ids(svc)
    clock.t = 291
    assert N[0] in a_pass()
    clock.t = 1000  # the full look: the candidates the index lacks, each stamp read alone
    assert N[2] in a_pass() and set(stamped_ids(svc)) == {N[2], N[3]}
    assert N[3] not in read_ids(svc)  # its stamp says it waits


# -- power-on --

def test_power_on_order(make_ctx):
    comps = [pending_on(N[0], desired=SBPS, configuration="cfg", session="s1"),
             pending_on(N[1], desired=SBPS, configuration="cfg", session="s1")]
    svc = services(comps)
    run(PowerOnOperator().run_pass(make_ctx(svc)))
    steps = [c[0] for c in svc.calls if c[0] not in ("hsm.query", "bos.list_components", "bos.list_sessions",
                                                     "bos.enabled_ids_in")]
    assert steps == ["bos.components_by_ids", "ims.tag", "bss.put", "redis.token", "bos.patch_components",
                     "cfs.patch", "pcs.transition"]
    (update,) = updates(svc)  # the preset and the action update in one write, before PCS On (issue 13)
    assert [c for c in svc.calls if c[0] == "cfs.patch"] == [
        ("cfs.patch", N[:2], {"enabled": False, "desired_config": "cfg", "tags": {"bos_session": "s1"}, "state": []})]
    assert [c for c in svc.calls if c[0] == "pcs.transition"] == [("pcs.transition", "On", N[:2])]
    assert update == [{"id": i, "error": "", "last_action": {"action": "powering_on", "failed": False},
                       "event_stats": {"power_on_attempts": 1},
                       "session": "s1", "desired_state": {"bss_token": "token-1"}} for i in N[:2]]  # the token rides along
    assert svc.redis.tokens["token-1"]  # durable before the power-on


def test_power_selection_reads_records_only_under_the_claim_unless_a_session_is_capped(make_ctx):
    """Issue 13: with store reads and no capped session, power-on selects from the indexes and HSM
    alone; the records are read once, under the chunk's claim. A capped session (the wave gate
    reads each candidate's session, §5.7) selects from the records."""
    def record_reads(sessions=()):
        svc = FakeServices(components=[pending_on(N[0]), pending_on(N[1], session="s2")],
                           nodes=[node(x) for x in N[:1]], sessions=sessions)
        run(PowerOnOperator().run_pass(make_ctx(svc)))
        assert [c[2] for c in svc.calls if c[0] == "pcs.transition"] == [[N[0]]]  # N1 is not in HSM
        return [c[0] for c in svc.calls if c[0] in ("bos.list_components", "bos.components_by_ids")]
    assert record_reads() == ["bos.components_by_ids"]
    capped = {"name": "s2", "status": {"status": "running"}, "max_in_flight": 10}
    assert record_reads([capped]) == ["bos.list_components", "bos.components_by_ids"]


def test_non_sbps_images_are_not_tagged_and_empty_artifacts_skip_bss(make_ctx):
    comps = [pending_on(N[0]), pending_on(N[1], desired={"kernel": "", "kernel_parameters": "", "initrd": ""})]
    svc = services(comps)
    run(PowerOnOperator().run_pass(make_ctx(svc)))
    assert "ims.tag" not in svc.calls.names()
    assert [c[1] for c in svc.calls if c[0] == "bss.put"] == [[N[0]]]
    assert [c for c in svc.calls if c[0] == "pcs.transition"] == [("pcs.transition", "On", N[:2])]


def _final(svc):
    """Each component's action update merged with any later write of its error."""
    final: dict = {}
    for batch in updates(svc):
        for patch in batch:
            final.setdefault(patch["id"], {}).update(patch)
    return final


def test_d29_bss_failure_for_one_group_keeps_those_nodes_off(make_ctx):
    bad = dict(ARTIFACTS, kernel="s3://boot-images/img-b/kernel")
    comps = [pending_on(N[0]), pending_on(N[1], desired=bad), pending_on(N[2], desired=bad)]
    svc = services(comps)
    svc.bss.fail_kernels.add(bad["kernel"])
    run(PowerOnOperator().run_pass(make_ctx(svc)))
    assert [c for c in svc.calls if c[0] == "pcs.transition"] == [("pcs.transition", "On", [N[0]])]
    assert [c[1] for c in svc.calls if c[0] == "cfs.patch"] == [[N[0]]]
    final = _final(svc)
    assert final[N[1]]["error"].startswith("Error encountered setting BSS information: ")
    assert final[N[0]]["error"] == ""
    assert all(p["event_stats"] == {"power_on_attempts": 1} for p in final.values())
    assert len(updates(svc)) == 1  # one action update before PCS On (the good group's token with it)
    assert final[N[0]]["desired_state"] == {"bss_token": "token-1"} and final[N[0]]["session"] == "s1"
    assert "desired_state" not in final[N[1]] and "desired_state" not in final[N[2]]  # no token for the failed group


def test_d29_tagging_errors(make_ctx):
    deleted = dict(SBPS, kernel="s3://boot-images/deleted/img-a/kernel")
    flat = dict(SBPS, kernel="s3://boot-images/kernel")
    other = dict(SBPS, kernel="s3://boot-images/img-c/kernel")
    comps = [pending_on(N[0], desired=SBPS), pending_on(N[1], desired=deleted), pending_on(N[2], desired=flat),
             pending_on(N[3], desired=other)]
    svc = services(comps)
    svc.ims.fail_images.add("img-c")
    run(PowerOnOperator().run_pass(make_ctx(svc)))
    final = _final(svc)
    assert final[N[0]]["error"] == ""
    assert final[N[1]]["error"] == ("Kernel path appears to refer to soft-deleted IMS image: "
                                    "'s3://boot-images/deleted/img-a/kernel'")
    assert final[N[2]]["error"] == "Unable to extract IMS ID from kernel path: s3://boot-images/kernel"
    assert final[N[3]]["error"].startswith("Error encountered tagging images ") and final[N[3]]["error"].endswith(".")
    assert [c[1] for c in svc.calls if c[0] == "ims.tag"] == ["img-a", "img-c"]
    assert [c for c in svc.calls if c[0] == "pcs.transition"] == [("pcs.transition", "On", [N[0]])]
    assert all(p["event_stats"] == {"power_on_attempts": 1} for p in final.values())  # one increment each


def test_cfs_failure_only_for_that_request(make_ctx):
    comps = [pending_on(N[0], configuration="good"), pending_on(N[1], configuration="bad")]
    svc = services(comps)
    svc.cfs.fail_configs.add("bad")
    run(PowerOnOperator().run_pass(make_ctx(svc)))
    final = _final(svc)
    assert final[N[1]]["error"].startswith("Error encountered setting CFS information: ")
    assert [c for c in svc.calls if c[0] == "pcs.transition"] == [("pcs.transition", "On", [N[0]])]
    assert updates(svc)[1:] == [[{"id": N[1], "error": final[N[1]]["error"]}]]  # only the error, after
    assert final[N[1]]["event_stats"] == {"power_on_attempts": 1}


def test_pcs_on_failure_wording(make_ctx):
    svc = services([pending_on(N[0])])
    svc.pcs.fail_ops.add("On")
    run(PowerOnOperator().run_pass(make_ctx(svc)))
    assert _final(svc)[N[0]]["error"].startswith("Error encountered calling CAPMC to power on: ")
    assert [[sorted(p) for p in batch] for batch in updates(svc)] == [
        [["desired_state", "error", "event_stats", "id", "last_action", "session"]], [["error", "id"]]]


def test_token_record_is_retried(make_ctx):
    svc = services([pending_on(N[0])])
    svc.redis.failures = 2
    run(PowerOnOperator().run_pass(make_ctx(svc)))
    assert _final(svc)[N[0]]["error"] == ""


def test_token_record_failure_is_a_bss_error(make_ctx, monkeypatch):
    import bos_server.operators.power_on as power_on

    async def no_sleep(_):
        return None
    monkeypatch.setattr(power_on.asyncio, "sleep", no_sleep)
    svc = services([pending_on(N[0])])
    svc.redis.failures = 6
    run(PowerOnOperator().run_pass(make_ctx(svc)))
    assert _final(svc)[N[0]]["error"].startswith("Error encountered setting BSS information: ")
    assert "pcs.transition" not in svc.calls.names()


def test_components_moved_on_since_selection_are_left_alone(make_ctx):
    svc = services([pending_on(N[0]), pending_on(N[1])])
    op = PowerOnOperator()

    async def scenario():
        ctx = make_ctx(svc)
        selected = await op.select(ctx)
        svc.bos.components[N[1]]["status"]["status_override"] = "on_hold"  # e.g. taken over by a new session
        for chunk in chunks(selected, 0):
            await op.claimed_chunk(ctx, chunk)
    run(scenario())
    assert [c for c in svc.calls if c[0] == "pcs.transition"] == [("pcs.transition", "On", [N[0]])]
    assert [p["id"] for p in updates(svc)[-1]] == [N[0]]


def test_chunks_are_processed_in_turn(make_ctx):
    svc = services([pending_on(x) for x in N[:5]])
    run(PowerOnOperator().run_pass(make_ctx(svc, max_component_batch_size=2)))
    assert [c[2] for c in svc.calls if c[0] == "pcs.transition"] == [N[:2], N[2:4], N[4:5]]


class BusyAtFirst(LocalClaims):
    """Another operator holds every component for the first `busy` claim attempts."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.attempts = 0

    async def claim(self, ids, into=None):
        self.attempts += 1
        if self.attempts <= self.busy:
            return into or Claim("t")
        return await super().claim(ids, into)


def test_a_chunk_held_for_a_moment_is_acted_on_in_the_same_pass(make_ctx, monkeypatch):
    """The holder (e.g. the status operator on the same page) releases within a moment: the pass
    waits for it instead of leaving the chunk to the next re-check (issue 13, hand-over latency)."""
    monkeypatch.setattr(framework, "CHUNK_CLAIM_STEP", (0.0, 0.0))
    svc = services([pending_on(N[0]), pending_on(N[1])])
    ctx = make_ctx(svc)
    ctx.claims = BusyAtFirst(busy=2)
    run(PowerOnOperator().run_pass(ctx))
    assert [c for c in svc.calls if c[0] == "pcs.transition"] == [("pcs.transition", "On", N[:2])]
    assert ctx.contended == 0 and ctx.claims.attempts == 3


def test_a_chunk_held_longer_is_left_to_a_later_pass(make_ctx, monkeypatch):
    monkeypatch.setattr(framework, "CHUNK_CLAIM_WAIT", 0.0)
    svc = services([pending_on(N[0])])
    ctx = make_ctx(svc)
    ctx.claims = BusyAtFirst(busy=1)
    assert run(PowerOnOperator().run_pass(ctx)) == ctx.recheck
    assert "pcs.transition" not in svc.calls.names() and ctx.contended == 1


# -- power-on: what runs at once (issue 13, realistic latencies; virtual clock) --

MANY = [f"x1000c1s{i // 8}b0n{i % 8}" for i in range(2500)]  # one chunk, three CFS requests of <= 1000


def slowed(svc, preset=0.0, bss=0.0, cfs=0.0):
    """Give the fakes' calls these virtual durations; returns the loop times of the PCS requests and
    the components' last actions as the On saw them."""
    seen = {"on": [], "actions": set()}

    def wrap(target, name, seconds, before=None):
        original = getattr(target, name)

        async def call(*args, **kw):
            if before:
                before()
            await asyncio.sleep(seconds)
            return await original(*args, **kw)
        setattr(target, name, call)

    def on_sent():
        seen["on"].append(loop_time())
        seen["actions"].update(c["last_action"]["action"] for c in svc.bos.components.values())
    wrap(svc.bos, "patch_components", preset)
    wrap(svc.bss, "set_boot_parameters", bss)
    wrap(svc.cfs, "patch_batch", cfs)
    wrap(svc.pcs, "transition", 0.0, before=on_sent)
    return seen


def many_services():
    comps = [pending_on(x, desired=SBPS, configuration="cfg") for x in MANY]
    return FakeServices(components=comps, nodes=[node(x) for x in MANY])


def test_power_on_calls_cfs_while_the_action_update_is_written(make_ctx):
    """The action update (the preset with it) overlaps CFS, and the CFS requests overlap each
    other: the On goes out when the slower of them is done after BSS (0.5 + 1.2 s), not after
    their sum (BSS 0.5 + update 1.2 + three CFS requests of 0.5 = 3.2 s)."""
    svc = many_services()
    seen = slowed(svc, preset=1.2, bss=0.5, cfs=0.5)
    run_virtual(PowerOnOperator().run_pass(make_ctx(svc, max_component_batch_size=2800)))
    assert len([c for c in svc.calls if c[0] == "cfs.patch"]) == 3
    assert seen["on"] == [pytest.approx(1.7)]
    assert len(updates(svc)) == 1


def test_the_action_update_is_written_before_pcs_on_even_when_it_is_the_slowest(make_ctx):
    """§5.5 step 1's guarantee: no node can come up before BOS has recorded the power-on."""
    svc = many_services()
    seen = slowed(svc, preset=2.0)
    run_virtual(PowerOnOperator().run_pass(make_ctx(svc, max_component_batch_size=2800)))
    assert seen["on"] == [pytest.approx(2.0)] and seen["actions"] == {"powering_on"}


def test_a_failed_action_update_powers_nothing_on(make_ctx):
    svc = services([pending_on(N[0])])
    original = svc.bos.patch_components
    sent = []

    async def first_fails(patches, *args, **kw):
        sent.append(patches)
        if len(sent) == 1:  # the update before PCS On
            raise fail("bos", 400)
        return await original(patches, *args, **kw)
    svc.bos.patch_components = first_fails
    run(PowerOnOperator().run_pass(make_ctx(svc)))
    assert "pcs.transition" not in svc.calls.names()
    (final,) = updates(svc)  # the chunk's whole action update carries the failure (§2.4)
    assert final[0]["error"] and final[0]["event_stats"] == {"power_on_attempts": 1}
    assert "desired_state" not in final[0]  # no token for a component with an error
