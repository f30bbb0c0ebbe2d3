"""Operators of one process that act on each other's work at once (operators.md §3, extensions
"looked at once enabled" and "handed over at once"; issue 13, realistic latencies): session setup
has the status operator look at each batch it enables, and the status operator has power-on and
power-off-graceful act on what its write makes their work, under the same claim."""

from __future__ import annotations

import asyncio
from typing import Dict, List, Optional, Tuple

import pytest

from bos_server.operators import registry
from bos_server.operators import status as status_module
from bos_server.clients.rest import ServiceError
from bos_server.operators.claims import Claim, LocalClaims
from bos_server.operators.power_on import PowerOnOperator
from bos_server.operators.status import StatusOperator

from tests.support.clock import loop_time, run_virtual

from .conftest import run
from .fakes import FakeServices, node
from .helpers import ARTIFACTS, EMPTY, component
from .test_session_setup import boot_set, s3, session, setup

N = [f"x1000c0s{i}b0n0" for i in range(4)]
SBPS = dict(ARTIFACTS, kernel_parameters="quiet root=sbps-s3:s3://boot-images/img-a/rootfs:e")


class Releases(LocalClaims):
    """One process's claims, recording each release: (IDs, operator whose decision records go too)."""

    def __init__(self) -> None:
        self.released: List[Tuple[List[str], Optional[str]]] = []

    async def release(self, claim: Claim, operator: Optional[str] = None) -> None:
        self.released.append((sorted(claim.ids), operator))


def linked(*names: str) -> dict:
    return {op.name: op for op in registry.link([registry.OPERATORS[n]() for n in names])}


async def settled(status: StatusOperator, ctx) -> None:
    """A status pass and the hand-overs it started."""
    await status.run_pass(ctx)
    await status.settled()


def calls(svc, name: str) -> list:
    return [c for c in svc.calls if c[0] == name]


def test_status_powers_on_what_its_s2b_write_made_power_on_pending_in_the_same_pass(make_ctx):
    off = component(N[0], override="on_hold", desired=SBPS, configuration="cfg")  # S2b: power on
    booted = component(N[1], override="on_hold", actual=ARTIFACTS)  # on, booted, nothing to configure: S4b
    unknown = component(N[2], override="on_hold", desired=SBPS)  # S2b, but HSM does not know it
    svc = FakeServices(components=[off, booted, unknown], nodes=[node(x) for x in N[:2]],
                       power={N[0]: "off", N[1]: "on", N[2]: "off"}, cfs={x: {"id": x} for x in N[:3]})
    ops = linked("status", "power-on", "power-off-graceful", "session-setup")
    assert ops["status"].power == {"power-on": ops["power-on"], "power-off-graceful": ops["power-off-graceful"]}
    assert ops["session-setup"].status is ops["status"]
    ctx = make_ctx(svc)
    ctx.claims = Releases()
    run(settled(ops["status"], ctx))
    assert [c[1:] for c in calls(svc, "pcs.transition")] == [("On", [N[0]])]  # no power-on pass ran
    assert svc.bos.components[N[0]]["last_action"]["action"] == "powering_on"  # power_on_called
    assert svc.bos.components[N[2]]["status"]["phase"] == "powering_on"  # pending: power-on's pass is left it
    status_write, update, unknown_s2b = [c[1] for c in calls(svc, "bos.patch_components")]
    assert [p["id"] for p in status_write] == [N[1]]  # S4b; the S2b patches go with the hand-over
    assert [p["id"] for p in update] == [N[0]] and [p["id"] for p in unknown_s2b] == [N[2]]
    assert update[0]["status"]["phase"] == "powering_on" and update[0]["last_action"]["action"] == "powering_on"
    # the rest of the page is released at once; the leases of what was handed over with power-on's
    # decision records once its outcome is recorded
    assert ctx.claims.released == [([N[1]], None), ([N[0], N[2]], "power-on"), ([], None)]


def test_a_reboot_node_that_went_off_is_moved_on_and_powered_on_with_one_write(make_ctx):
    """The status operator's S2b patch of a node it hands to power-on (phase `powering_on`, the old
    boot's actual state cleared) is written with power-on's action update, before PCS `On`: one
    write where there were two (issue 13, realistic latencies). The record goes from powering off
    (reports refused: the 409 rule) to powering on with `last_action` `powering_on` at once."""
    went_off = component(N[0], phase="powering_off", action="powering_off_gracefully", desired=SBPS,
                         actual={**ARTIFACTS, "kernel": "old"})
    svc = FakeServices(components=[went_off], nodes=[node(N[0])], power={N[0]: "off"}, cfs={N[0]: {"id": N[0]}})
    run(settled(linked("status", "power-on")["status"], make_ctx(svc)))
    assert [c[1:] for c in calls(svc, "pcs.transition")] == [("On", [N[0]])]
    (write,) = [c[1] for c in calls(svc, "bos.patch_components")]
    assert [p["id"] for p in write] == [N[0]]
    assert write[0]["status"]["phase"] == "powering_on" and write[0]["last_action"]["action"] == "powering_on"
    assert write[0]["actual_state"]["boot_artifacts"] == {"kernel": "", "kernel_parameters": "", "initrd": ""}


def test_a_hand_over_whose_writes_fail_powers_nothing_on_and_leaves_the_s2b_decision_to_the_next_look(make_ctx):
    """Nothing is written (the API refuses): no `On`, and the S2b patch power-on was to carry is
    dropped with the hand-over, not kept for a later write; the next look decides and powers on."""
    svc = FakeServices(components=[component(N[0], override="on_hold", desired=SBPS)], nodes=[node(N[0])],
                       power={N[0]: "off"}, cfs={N[0]: {"id": N[0]}})
    ops = linked("status", "power-on")
    svc.bos.fail_patch = ServiceError("bos", "PATCH", "/components", "status 503", 503)
    run(settled(ops["status"], make_ctx(svc)))
    assert calls(svc, "pcs.transition") == [] and svc.bos.components[N[0]]["status"]["phase"] == ""
    assert not ops["power-on"].taking and not ops["power-on"]._carried
    svc.bos.fail_patch = None
    run(settled(ops["status"], make_ctx(svc)))
    assert [c[1:] for c in calls(svc, "pcs.transition")] == [("On", [N[0]])]
    assert svc.bos.components[N[0]]["status"]["phase"] == "powering_on"


def test_status_alone_in_its_process_leaves_power_on_to_its_operator(make_ctx):
    svc = FakeServices(components=[component(N[0], override="on_hold", desired=SBPS)], nodes=[node(N[0])],
                       power={N[0]: "off"}, cfs={N[0]: {"id": N[0]}})
    status = linked("status", "session-setup", "power-off-graceful")["status"]
    assert list(status.power) == ["power-off-graceful"]
    run(status.run_pass(make_ctx(svc)))
    assert calls(svc, "pcs.transition") == [] and svc.bos.components[N[0]]["status"]["phase"] == "powering_on"


def test_status_has_power_off_graceful_soft_off_what_its_s6_write_made_power_off_pending(make_ctx):
    """The S6 patch (phase `powering_off`: from then on the node's reports are refused, the 409
    rule) goes with power-off-graceful's action update, one write before `Soft-Off` (operators.md
    §3, "S3/S6 carried by power-off-graceful"; §5.2): a write less per node in a reboot."""
    running = component(N[0], override="on_hold", actual={**ARTIFACTS, "kernel": "old"})  # on, old boot: S6
    svc = FakeServices(components=[running], nodes=[node(N[0])], power={N[0]: "on"}, cfs={N[0]: {"id": N[0]}})
    run(settled(linked("status", "power-off-graceful")["status"], make_ctx(svc)))
    assert [c[1:] for c in calls(svc, "pcs.transition")] == [("Soft-Off", [N[0]])]
    assert svc.bos.components[N[0]]["last_action"]["action"] == "powering_off_gracefully"
    (write,) = [c[1] for c in calls(svc, "bos.patch_components")]
    assert write[0]["status"]["phase"] == "powering_off" and write[0]["last_action"]["action"] == "powering_off_gracefully"
    made = [c[0] for c in svc.calls]
    assert made.index("bos.patch_components") < made.index("pcs.transition")


def test_power_on_leaves_out_what_the_status_operator_is_powering_on(make_ctx):
    """A power-on pass woken by the status operator's S2b write does not select (nor wait for the
    leases of) the components that operator is powering on itself."""
    svc = FakeServices(components=[component(x, phase="powering_on", desired=SBPS) for x in N[:2]],
                       nodes=[node(x) for x in N[:2]])
    power_on = PowerOnOperator()
    power_on.taking = {N[0]}
    run(power_on.run_pass(make_ctx(svc)))
    assert [c[1:] for c in calls(svc, "pcs.transition")] == [("On", [N[1]])]


@pytest.mark.parametrize("capped", [False, True], ids=["from the indexes", "from the records"])
def test_power_on_does_not_ask_hsm_about_what_the_status_operator_is_powering_on(make_ctx, capped):
    """Its selection asks HSM only about the candidates it may act on: those being handed to it are
    left out first (a reboot's passes asked HSM about every node twice more, issue 13), whether it
    selects from the indexes or (a capped session running, the wave gate) from the records."""
    sessions = [{"name": "other", "status": {"status": "running"}, "max_in_flight": 10}] if capped else []
    svc = FakeServices(components=[component(x, phase="powering_on", desired=SBPS) for x in N[:2]],
                       nodes=[node(x) for x in N[:2]], sessions=sessions)
    power_on = PowerOnOperator()
    power_on.taking = {N[0]}
    run(power_on.run_pass(make_ctx(svc)))
    assert [c[1] for c in calls(svc, "hsm.query")] == [[N[1]]]
    assert [c[1:] for c in calls(svc, "pcs.transition")] == [("On", [N[1]])]


def test_session_setup_has_each_batch_it_enables_looked_at_and_powered_on_at_once(make_ctx):
    svc = setup([session()], power={x: "off" for x in N}, cfs={x: {"id": x} for x in N})
    ops = linked("session-setup", "status", "power-on")

    async def setup_pass() -> None:
        await ops["session-setup"].run_pass(make_ctx(svc, max_component_batch_size=1))
        await ops["status"].settled()
    run(setup_pass())
    assert svc.bos.session("s1", None)["status"]["status"] == "running"
    assert sorted(i for c in calls(svc, "pcs.transition") for i in c[2]) == N[:2]  # no status or power-on pass
    assert sorted(c[1][0] for c in calls(svc, "cfs.components")) == N[:2]  # CFS asked by ID, batch by batch
    assert all(svc.bos.components[x]["last_action"]["action"] == "powering_on" for x in N[:2])


def test_status_passes_leave_out_a_batch_looked_at_for_session_setup(make_ctx):
    svc = FakeServices(components=[component(x, override="on_hold") for x in N[:2]],
                       power={x: "off" for x in N[:2]}, cfs={x: {"id": x} for x in N[:2]})
    status = StatusOperator()
    status._pushed.add(N[0])  # setup's look at N0 is under way
    hint = run(status.run_pass(make_ctx(svc)))
    assert [c[1] for c in calls(svc, "pcs.power_status")] == [[N[1]]]
    assert hint is not None  # N0 still counts as enabled: looked at again soon if the look fails


def test_a_status_pass_does_not_wait_for_the_power_operators_it_handed_components_to(make_ctx):
    """The pass ends (and the next look can start) while power-on still works on what it handed
    over; the hand-over keeps those components' leases until power-on's outcome is recorded."""
    svc = FakeServices(components=[component(N[0], override="on_hold", desired=SBPS)], nodes=[node(N[0])],
                       power={N[0]: "off"}, cfs={N[0]: {"id": N[0]}})
    status = linked("status", "power-on")["status"]

    async def pass_then_on() -> List[str]:
        bss_answers = asyncio.Event()
        put = svc.bss.set_boot_parameters

        async def slow_put(*args):
            await bss_answers.wait()
            return await put(*args)
        svc.bss.set_boot_parameters = slow_put
        await asyncio.wait_for(status.run_pass(make_ctx(svc)), 5)  # times out if it waits for BSS
        seen = [c[0] for c in svc.calls]
        bss_answers.set()
        await status.settled()
        return seen
    during = run(pass_then_on())
    assert "pcs.transition" not in during  # the pass ended first
    assert [c[1:] for c in calls(svc, "pcs.transition")] == [("On", [N[0]])]


def test_a_status_pass_woken_by_session_setups_write_leaves_the_batch_out(make_ctx):
    """Setup holds a batch's leases while it writes it, and the write's change event wakes the
    status operator: that pass neither asks CFS or PCS about the batch nor tries to claim it (it
    found it held and looked again soon); the look `look_soon` starts after the write does."""
    template = {"name": "t1", "cfs": {"configuration": "cfg"}, "boot_sets": {"compute": boot_set(node_list=N)}}
    svc = setup([session()], template, power={x: "off" for x in N}, cfs={x: {"id": x} for x in N}, known=N[:3])
    for record in svc.bos.components.values():
        record["enabled"] = False  # what the status pass sees enabled is setup's batch
    ops = linked("session-setup", "status")
    status = ops["status"]
    write = svc.bos.patch_components
    during: list = []

    async def write_then_pass(patches, *args, **kw):
        answer = await write(patches, *args, **kw)
        if kw.get("skip_bad_ids"):  # session setup's write: a status pass runs before it returns
            before = len(svc.calls)
            ctx = make_ctx(svc)
            await status.run_pass(ctx)
            during.extend(svc.calls[before:])
            assert ctx.contended == 0
        return answer
    svc.bos.patch_components = write_then_pass

    async def setup_pass() -> None:
        await ops["session-setup"].run_pass(make_ctx(svc))
        await status.settled()
    run(setup_pass())
    assert not [c for c in during if c[0] in ("cfs.components", "pcs.power_status")]
    assert all(svc.bos.components[x]["status"]["phase"] == "powering_on" for x in N[:3])  # looked at after
    assert not status._pushed  # N3 (not in BOS) given back at once, the batch once looked at


def test_a_status_pass_leaves_out_what_it_is_handing_to_power_on(make_ctx):
    """Power-on's preset, written during a hand-over, wakes the status operator: that pass leaves
    the components out (the hand-over holds their leases until power-on's outcome is recorded)."""
    svc = FakeServices(components=[component(N[0], override="on_hold", desired=SBPS)], nodes=[node(N[0])],
                       power={N[0]: "off"}, cfs={N[0]: {"id": N[0]}})
    status = linked("status", "power-on")["status"]
    ctx = make_ctx(svc)

    async def pass_during_hand_over() -> list:
        on_sent = asyncio.Event()
        pcs_answers = asyncio.Event()
        transition = svc.pcs.transition

        async def slow_on(operation, ids):
            on_sent.set()
            await pcs_answers.wait()
            return await transition(operation, ids)
        svc.pcs.transition = slow_on
        await status.run_pass(ctx)
        await asyncio.wait_for(on_sent.wait(), 5)  # the preset is written: N0 is powering on
        before = len(svc.calls)
        await status.run_pass(ctx)
        seen = svc.calls[before:]
        pcs_answers.set()
        await status.settled()
        return seen
    during = run(pass_during_hand_over())
    assert ctx.contended == 0
    assert not [c for c in during if c[0] in ("cfs.components", "pcs.power_status", "bos.components_with_prints")]
    assert svc.bos.components[N[0]]["last_action"]["action"] == "powering_on"


ROUND_TRIPS = (("bos", "components_by_ids"), ("bos", "patch_components"), ("pcs", "power_status"),
               ("pcs", "transition"), ("cfs", "components"), ("cfs", "patch_batch"), ("hsm", "query"),
               ("bss", "set_boot_parameters"), ("ims", "tag_sbps"))


def one_second_each(svc) -> List[Tuple[str, float]]:
    """Make every request to BOS, PCS, CFS, HSM, BSS and IMS take one second (of a virtual clock):
    returns the list each request's (service.method, start time) goes to."""
    started: List[Tuple[str, float]] = []

    def slowed(call, name: str):
        async def slow(*args, **kw):
            started.append((name, loop_time()))
            await asyncio.sleep(1)
            return await call(*args, **kw)
        return slow
    for service, method in ROUND_TRIPS:
        owner = getattr(svc, service)
        setattr(owner, method, slowed(getattr(owner, method), f"{service}.{method}"))
    return started


def rounds_since(started: List[Tuple[str, float]], began: float) -> List[List[str]]:
    """The requests `one_second_each` saw, grouped by the (virtual) second they started in, in order:
    the round trips in a row that a chain of requests took."""
    rounds: Dict[float, List[str]] = {}
    for name, time in started:
        rounds.setdefault(time - began, []).append(name)
    return list(rounds.values())


def test_a_batch_set_up_is_powered_on_after_its_requests_that_need_not_wait_for_each_other_went_at_once(make_ctx):
    """The status look at a batch session setup enabled asks CFS and PCS while it re-reads the
    batch, and power-on asks HSM while it re-reads what was handed over: each request one after
    the other was a round trip more in each batch's way to `On` (issue 13, realistic latencies:
    the last batch of a 10,000-node boot left ~2.6 s after the session was created)."""
    svc = setup([session()], power={x: "off" for x in N}, cfs={x: {"id": x} for x in N})
    ops = linked("session-setup", "status", "power-on")
    started = one_second_each(svc)

    async def setup_pass() -> float:
        began = loop_time()
        await ops["session-setup"].run_pass(make_ctx(svc))
        await ops["status"].settled()
        return began
    rounds = rounds_since(started, run_virtual(setup_pass()))
    assert rounds == [
        ["hsm.query"],  # setup's inventory
        ["bos.patch_components"],  # setup's write of the batch
        ["bos.components_by_ids", "pcs.power_status", "cfs.components"],  # the status look's re-read, P and CFS
        ["bos.components_by_ids", "hsm.query"],  # power-on's re-read and HSM existence
        ["ims.tag_sbps"], ["bss.set_boot_parameters"],
        ["bos.patch_components", "cfs.patch_batch"],  # power-on's action update, with the S2b patch
        ["pcs.transition"]]  # `On` after 7 round trips (11 with the requests one after the other, 8 with S2b
    # written by the status operator before the hand-over)


def test_power_on_tags_the_image_while_it_records_its_decisions(make_ctx):
    """The chunk's SBPS image is tagged (§5.6 step 1) at once with the decision record, not after
    it: a tag is no power action, BSS write or CFS patch (docs/ha.md), and the two one after the
    other were a round trip more in each batch's way to `On` (issue 13, realistic latencies)."""
    svc = setup([session()], power={x: "off" for x in N}, cfs={x: {"id": x} for x in N})
    ops = linked("session-setup", "status", "power-on")
    started = one_second_each(svc)

    async def setup_pass() -> float:
        ctx = make_ctx(svc)
        mark = ctx.claims.mark

        async def slow_mark(*args, **kw):
            started.append(("claims.mark", loop_time()))
            await asyncio.sleep(1)
            return await mark(*args, **kw)
        ctx.claims.mark = slow_mark  # type: ignore[method-assign]
        began = loop_time()
        await ops["session-setup"].run_pass(ctx)
        await ops["status"].settled()
        return began
    rounds = rounds_since(started, run_virtual(setup_pass()))
    assert rounds[3:] == [
        ["bos.components_by_ids", "hsm.query"],  # power-on's re-read and HSM existence
        ["claims.mark", "ims.tag_sbps"], ["bss.set_boot_parameters"], ["bos.patch_components", "cfs.patch_batch"],
        ["pcs.transition"]]
    assert [name for name, _time in started].count("ims.tag_sbps") == 1  # act takes the overlap's outcome
    powering_on = sorted(x for x, c in svc.bos.components.items() if c["last_action"]["action"] == "powering_on")
    assert [c[1:] for c in calls(svc, "pcs.transition")] == [("On", powering_on)] and powering_on


@pytest.mark.parametrize("limit, on_at", [(2, [7, 7, 12, 12, 17, 17, 22, 22]), (4, [7, 7, 8, 8, 12, 12, 13, 13])])
def test_the_looks_at_batches_setup_wrote_and_their_hand_overs_go_on_as_many_at_once_as_the_limits_say(
        make_ctx, monkeypatch, limit, on_at):
    """Eight batches of one node, every request one second (of a virtual clock): setup writes two
    at a time, and the looks at them and their hand-overs (about five round trips each) go on
    PUSHED_IN_FLIGHT and HAND_OVERS_IN_FLIGHT at a time (two: operators' memory at 100,000 nodes,
    status.py); a later batch waits for a slot at each stage. At four of each the last `On` leaves
    at 13 s (issue 13, realistic latencies: the third and fourth batches of a 10,000-node boot
    waited 0.2-0.6 s at two)."""
    monkeypatch.setattr(status_module, "PUSHED_IN_FLIGHT", limit)
    monkeypatch.setattr(status_module, "HAND_OVERS_IN_FLIGHT", limit)
    nodes = [f"x1000c0s{i}b0n0" for i in range(8)]
    template = {"name": "t1", "cfs": {"configuration": "cfg"}, "boot_sets": {"compute": boot_set(node_list=nodes)}}
    svc = FakeServices(sessions=[session()], templates={(None, "t1"): template}, nodes=[node(x) for x in nodes],
                       components=[component(x, session="") for x in nodes], s3=s3(),
                       power={x: "off" for x in nodes}, cfs={x: {"id": x} for x in nodes})
    ops = linked("session-setup", "status", "power-on")
    started = one_second_each(svc)

    async def setup_pass() -> float:
        began = loop_time()
        await ops["session-setup"].run_pass(make_ctx(svc, max_component_batch_size=1))
        await ops["status"].settled()
        return began
    began = run_virtual(setup_pass())
    assert [time - began for name, time in started if name == "pcs.transition"] == on_at
    assert sorted(x for c in calls(svc, "pcs.transition") for x in c[2]) == nodes


def test_a_hand_over_frees_its_slot_once_its_power_operator_has_acted(make_ctx, monkeypatch):
    """Issue 13, realistic latencies: a hand-over's slot (HAND_OVERS_IN_FLIGHT) is free once its
    power operator has made its call (here Soft-Off), not after what follows it (the update of the
    errors the call gave, the release of the leases with the decision records): the next page's
    Soft-Off goes out while the first page's error is still being written. Held to the end, a
    traced 10,000-node reboot's last pages waited 0.12-0.16 s (then for the action update, now
    written before the call: `ComponentOperator.preset`)."""
    monkeypatch.setattr(status_module, "HAND_OVERS_IN_FLIGHT", 1)
    comps = [component(x, override="on_hold", desired=EMPTY, actual=ARTIFACTS) for x in N[:2]]  # on: S3
    svc = FakeServices(components=comps, nodes=[node(x) for x in N[:2]], power={x: "on" for x in N[:2]},
                       cfs={x: {"id": x} for x in N[:2]})
    svc.pcs.fail_ops.add("Soft-Off")
    written = svc.bos.patch_components
    error_goes_on = asyncio.Event()

    async def patch_components(patches, *args, **kwargs):
        if any(p.get("error") and "last_action" not in p for p in patches):
            await error_goes_on.wait()  # the first page's error update, held until both Soft-Offs are out
        return await written(patches, *args, **kwargs)
    monkeypatch.setattr(svc.bos, "patch_components", patch_components)
    status = linked("status", "power-off-graceful")["status"]

    async def main() -> list:
        ctx = make_ctx(svc, max_component_batch_size=1)
        passing = asyncio.ensure_future(settled(status, ctx))
        for _ in range(200):  # until both Soft-Offs are out (or the second waits for the first's slot)
            if len(calls(svc, "pcs.transition")) == 2:
                break
            await asyncio.sleep(0)
        soft_offs = [c[1:] for c in calls(svc, "pcs.transition")]
        error_goes_on.set()
        await passing
        return soft_offs
    assert run(main()) == [("Soft-Off", [N[0]]), ("Soft-Off", [N[1]])]
    assert all(svc.bos.components[x]["last_action"]["action"] == "powering_off_gracefully" for x in N[:2])
    assert all(svc.bos.components[x]["error"] for x in N[:2])
