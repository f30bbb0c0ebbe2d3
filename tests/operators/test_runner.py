"""The shared runner (operators.md §2.1-§2.2): waking, options fallback, liveness, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bos_server.operators import registry
from bos_server.operators.framework import DEBOUNCE, Operator
from bos_server.operators.main import operator_names
from bos_server.operators.power_off_forceful import PowerOffForcefulOperator
from bos_server.operators.session_completion import SessionCompletionOperator
from bos_server.operators.runner import OptionsCache, Runner, check_liveness, level_of, write_liveness
from bos_shared.options import DEFAULTS

from tests.support.clock import loop_time, run_virtual

from .conftest import run
from .fakes import FakeServices, fail

BIN = Path(sys.executable).parent


class Recorder(Operator):
    name = "recorder"
    wake_statuses = frozenset({"power_on_pending"})

    def __init__(self) -> None:
        self.passes: list = []

    async def run_pass(self, ctx):
        self.passes.append(loop_time())
        return None


class FlakyOptions(FakeServices):
    def apply_options(self, options):
        self.applied = options

    async def close(self):
        return None


@pytest.mark.parametrize("event,woken", [
    ({"kind": "options"}, set(registry.OPERATORS)),
    ({"kind": "sessions", "statuses": ["pending"]}, {"session-setup"}),
    ({"kind": "sessions", "statuses": ["running"]}, {"session-completion"}),
    ({"kind": "sessions", "statuses": ["complete"]}, {"session-cleanup"}),
    ({"kind": "sessions", "statuses": ["v1"]}, {"v1-agent"}),
    ({"kind": "components", "statuses": ["power_on_pending"], "enabled": True}, {"power-on", "v1-agent"}),
    ({"kind": "components", "statuses": ["power_off_pending"], "enabled": True}, {"power-off-graceful", "v1-agent"}),
    ({"kind": "components", "statuses": ["power_off_pending", "power_on_pending"], "enabled": True},
     {"power-on", "power-off-graceful", "v1-agent"}),  # a status pass's hand-offs: not for itself
    ({"kind": "components", "statuses": ["power_on_pending", "failed"], "enabled": True},
     {"power-on", "status", "session-completion", "v1-agent"}),  # the retry gate's failure: the status operator disables (S1)
    ({"kind": "components", "statuses": ["power_off_gracefully_called"], "enabled": True},
     {"power-off-forceful", "v1-agent"}),  # an action update: the hardware moves next (status: its looks)
    ({"kind": "components", "statuses": ["configuring"], "enabled": True}, {"configuration", "status", "v1-agent"}),
    ({"kind": "components", "statuses": ["on_hold"], "enabled": True}, {"status", "session-completion", "v1-agent"}),
    ({"kind": "components", "statuses": ["stable"], "enabled": False}, {"session-completion", "v1-agent"}),
    ({"kind": "components", "statuses": ["power_on_called"], "enabled": True}, {"v1-agent"}),
    ({"kind": "components", "statuses": ["power_on_called", "configuring"], "enabled": True},
     {"configuration", "status", "v1-agent"}),
    ({"kind": "bogus"}, set()),
])
def test_change_events_wake_only_operators_that_may_have_work(event, woken):
    assert {op.name for op in registry.build() if op.wants(event)} == woken


def test_only_names_accept_underscores():
    assert operator_names("power_on, status,") == ["power-on", "status"]
    with pytest.raises(KeyError):
        registry.build(["nope"])


def test_log_levels():
    assert level_of("debug") == 10 and level_of("bogus") == 20 and level_of(None) == 20


def test_options_defaults_until_first_success_then_last_good():  # D31
    async def scenario():
        svc = FlakyOptions()
        cache = OptionsCache(svc)  # type: ignore[arg-type]
        original = svc.bos.get_options

        async def broken():
            raise fail("bos", 503)
        svc.bos.get_options = broken
        first = await cache.refresh()
        assert first == DEFAULTS and not cache.loaded
        svc.bos.options["max_component_batch_size"] = 7
        svc.bos.get_options = original
        cache.invalidate()
        assert (await cache.refresh())["max_component_batch_size"] == 7
        svc.bos.get_options = broken
        cache.invalidate()
        assert (await cache.refresh())["max_component_batch_size"] == 7  # last good, not the default
    run(scenario())


def test_events_wake_a_loop_within_a_second_and_frequency_bounds_the_wait(tmp_path):
    """On a virtual clock: a relevant event wakes an idle loop at once, two events coalesce
    into one pass, an irrelevant one wakes nothing, and without events the next pass comes
    exactly one polling period after the last."""
    async def scenario():
        svc = FlakyOptions()
        svc.bos.options["polling_frequency"] = 60
        op = Recorder()
        runner = Runner([op], svc, liveness_file=str(tmp_path / "live"))  # type: ignore[arg-type]
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0.3)
        assert op.passes == [0.0]
        sent = loop_time()
        runner.dispatch({"kind": "components", "statuses": ["power_on_pending"], "enabled": True})
        runner.dispatch({"kind": "components", "statuses": ["power_on_pending"], "enabled": True})  # coalesced
        await asyncio.sleep(0.6)
        assert len(op.passes) == 2 and op.passes[1] == sent  # idle since 0.0: no debounce
        runner.dispatch({"kind": "components", "statuses": ["stable"], "enabled": False})  # not for this operator
        await asyncio.sleep(0.4)
        assert len(op.passes) == 2
        await asyncio.sleep(60)
        assert len(op.passes) == 3 and op.passes[2] - op.passes[1] == pytest.approx(60)
        assert check_liveness(str(tmp_path / "live"), 20) == 0
        runner.stop()
        assert await task == 0
    run_virtual(scenario())


def recording(operator_class):
    """An `operator_class` whose pass only records when it ran (the runner's clock)."""
    class Recording(operator_class):
        def __init__(self) -> None:
            self.passes: list = []

        async def run_pass(self, ctx):
            self.passes.append(loop_time())
            return None
    return Recording()


async def passes_while(op, drive) -> list:
    """Run `op` alone (polling every 60 s) while `drive(runner)` runs, then stop it: when its
    passes ran. `op.runner` is the runner, for passes that send events themselves."""
    svc = FlakyOptions()
    svc.bos.options["polling_frequency"] = 60
    runner = op.runner = Runner([op], svc)  # type: ignore[arg-type]
    task = asyncio.create_task(runner.run())
    await drive(runner)
    runner.stop()
    assert await task == 0
    return op.passes


def woken(runner: Runner, status: str, enabled: bool = True) -> None:
    runner.dispatch({"kind": "components", "statuses": [status], "enabled": enabled})


def test_events_during_a_pass_start_the_next_one_a_debounce_after_it_ended():
    """On a virtual clock: a burst of events while a pass runs (its own writes, a bulk write in
    slices) gives one more pass, DEBOUNCE after the previous one ended, not one per event."""
    class Busy(Recorder):
        async def run_pass(self, ctx):
            self.passes.append(loop_time())
            if len(self.passes) == 2:
                for _ in range(3):
                    await asyncio.sleep(0.1)
                    woken(self.runner, "power_on_pending")
            return None

    async def drive(runner: Runner) -> None:
        await asyncio.sleep(1.0)
        woken(runner, "power_on_pending")
        await asyncio.sleep(2.0)
    assert run_virtual(passes_while(Busy(), drive)) == [0.0, 1.0, pytest.approx(1.3 + DEBOUNCE)]


def test_events_during_a_pass_do_not_put_off_a_pass_asked_for_sooner_than_the_debounce():
    """On a virtual clock: a pass that asks to run again 0.05 s after it ends (the status
    operator after a look that found nodes moved) and was woken during it (its hand-overs'
    writes) runs again then, not DEBOUNCE after it ended: an event never makes a pass later
    than it would have come without one (issue 13, realistic latencies)."""
    class Hinting(Recorder):
        async def run_pass(self, ctx):
            self.passes.append(loop_time())
            if len(self.passes) == 2:
                await asyncio.sleep(0.1)
                woken(self.runner, "power_on_pending")
                return 0.05
            return None

    async def drive(runner: Runner) -> None:
        await asyncio.sleep(1.0)
        woken(runner, "power_on_pending")
        await asyncio.sleep(1.0)
    assert run_virtual(passes_while(Hinting(), drive)) == [0.0, 1.0, pytest.approx(1.15)]
    assert 0.05 < DEBOUNCE  # the debounce alone would have put it at 1.1 + DEBOUNCE


def test_session_completion_is_woken_by_the_last_settling_write_sooner_than_the_debounce():
    """On a virtual clock: the write that disables a session's last nodes comes within DEBOUNCE of
    the pass the write before it woke (the status operator looks at a session's last nodes every
    0.1-0.2 s). session-completion's own, shorter debounce starts its pass 0.03 s after that pass
    ended, not DEBOUNCE (0.15 s): the session is marked complete that much sooner (issue 13)."""
    async def drive(runner: Runner) -> None:
        await asyncio.sleep(1.0)
        woken(runner, "stable", enabled=False)
        await asyncio.sleep(0.1)  # the next settling write, 0.1 s after the first
        woken(runner, "stable", enabled=False)
        await asyncio.sleep(1.0)
    assert run_virtual(passes_while(recording(SessionCompletionOperator), drive)) == [0.0, 1.0, pytest.approx(1.1)]
    assert DEBOUNCE > 0.1  # the runner's own would have put it at 1.0 + DEBOUNCE


def test_power_off_forceful_takes_a_reboots_soft_off_writes_a_pass_a_second():
    """On a virtual clock: power-off-graceful's action updates (a reboot's batches, here every
    0.3 s) wake power-off-forceful; no candidate is due before `max_power_off_wait_time` after its
    call, so its own debounce (1 s) coalesces them into a pass a second (at DEBOUNCE, one per
    write: 45 passes in a 100,000-node reboot, issue 13). Woken idle, it still starts at once."""
    async def drive(runner: Runner) -> None:
        await asyncio.sleep(1.0)
        for _ in range(10):  # 1.0, 1.3, ... 3.7
            woken(runner, "power_off_gracefully_called")
            await asyncio.sleep(0.3)
        await asyncio.sleep(2.0)
    passes = run_virtual(passes_while(recording(PowerOffForcefulOperator), drive))
    assert passes == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])


def test_operators_of_one_process_share_its_claims():
    locks = []

    class Grab(Operator):
        name = "grab"

        async def run_pass(self, ctx):
            locks.append(ctx.claims)
            return None

    async def scenario():
        svc = FlakyOptions()
        runner = Runner([Grab(), Grab()], svc)  # type: ignore[arg-type]
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0.2)
        runner.stop()
        await task
    run_virtual(scenario())
    assert len(locks) >= 2 and all(lock is locks[0] for lock in locks)


def test_unreachable_redis_falls_back_to_polling(tmp_path):
    async def scenario():
        svc = FlakyOptions()
        svc.bos.options["polling_frequency"] = 0  # floor of MIN_WAIT between passes
        op = Recorder()
        runner = Runner([op], svc, redis_url="redis://127.0.0.1:9/0",  # type: ignore[arg-type]
                        liveness_file=str(tmp_path / "live"))
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0.5)
        assert len(op.passes) >= 3  # still polling, at least every MIN_WAIT
        assert check_liveness(str(tmp_path / "live"), 20) == 0
        runner.stop()
        assert await task == 0
    run_virtual(scenario())


def test_liveness_file_and_probe(tmp_path):
    path = tmp_path / "ts"
    assert check_liveness(str(path), 20) == 1
    write_liveness(path)
    assert check_liveness(str(path), 20) == 0
    path.write_text(f"{time.time() - 30}\n")
    assert check_liveness(str(path), 20) == 1
    path.write_text("garbage")
    assert check_liveness(str(path), 20) == 1


def test_liveness_stops_when_a_pass_is_stuck():
    async def scenario():
        runner = Runner([Recorder()], FlakyOptions(), stuck_after=1.0)  # type: ignore[arg-type]
        loop = runner.loops[0]
        loop.task = asyncio.create_task(asyncio.sleep(10))
        assert runner.healthy()
        loop.in_pass_since = loop_time() - 2
        assert not runner.healthy()
        loop.in_pass_since = None
        loop.task.cancel()
        await asyncio.sleep(0)
        assert not runner.healthy()  # a dead loop is not alive either
    run_virtual(scenario())


def test_sigterm_stops_cleanly_and_check_liveness_command(tmp_path):
    live = tmp_path / "live"
    env = dict(os.environ, BOS_LIVENESS_FILE=str(live), BOS_API_URL="http://127.0.0.1:9/v2",
               BOS_OPERATOR_LOG_LEVEL="WARNING", BOS_OPERATOR_STOP_GRACE="0.5")
    proc = subprocess.Popen([str(BIN / "bos-operators"), "--only", "status,session-setup"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60  # start-up under load (a condition, not a sleep)
        while not live.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live.exists()
        probe = subprocess.run([str(BIN / "bos-operators"), "--check-liveness"], env=env)
        assert probe.returncode == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stale = subprocess.run([str(BIN / "bos-operators"), "--check-liveness"],
                           env=dict(env, LIVENESS_DELTA_MAX="0"))
    assert stale.returncode == 1


def test_service_clients_follow_the_options():
    from bos_server.operators.services import Endpoints, Services, bos_base
    assert bos_base("http://api:9000") == bos_base("http://api:9000/v2/") == "http://api:9000/v2"
    services = Services.build(Endpoints(bos="http://api:9000"))
    services.apply_options(dict(DEFAULTS, pcs_read_timeout=33, ims_errors_fatal=True))
    by_name = {c.service: c for c in services.http}
    assert by_name["pcs"].read_timeout == 33 and by_name["hsm"].read_timeout == 20
    assert by_name["bos"].read_timeout == 10 and by_name["tapms"].read_timeout == 10
    assert by_name["ims"].retries == 8 and by_name["bss"].retries == 10
    assert all(c.connect_timeout == 3 for c in services.http)
    assert by_name["bos"].base_url == "http://api:9000/v2"


def test_urls_from_environment(monkeypatch):
    from bos_server.operators.main import parse_args
    monkeypatch.setenv("BOS_PCS_URL", "http://pcs.example")
    monkeypatch.setenv("BOS_REDIS_URL", "redis://r:1/0")
    args = parse_args(["--hsm-url", "http://hsm.example/hsm/v2"])
    assert args.pcs_url == "http://pcs.example" and args.hsm_url == "http://hsm.example/hsm/v2"
    assert args.redis_url == "redis://r:1/0" and args.cfs_url == "http://cray-cfs-api/v3"


def test_an_unavailable_service_ends_the_pass_with_one_line_not_a_traceback(caplog):
    """Issue 10 item 4: a 503 from the API after retries is logged as one line; the loop goes on."""
    from bos_server.clients.rest import ServiceUnavailable

    class Unlucky(Operator):
        name = "unlucky"
        passes = 0
        twice: asyncio.Event

        async def run_pass(self, ctx):
            Unlucky.passes += 1
            if Unlucky.passes >= 2:
                self.twice.set()
            raise ServiceUnavailable("bos", "PATCH", "http://api/v2/components", "status 503: Connection closed")

    async def scenario():
        svc = FlakyOptions()
        svc.bos.options["polling_frequency"] = 0
        op = Unlucky()
        op.twice = asyncio.Event()
        runner = Runner([op], svc, recheck=0.05)  # type: ignore[arg-type]
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(op.twice.wait(), 5)
        runner.stop()
        assert await task == 0
    with caplog.at_level("WARNING"):
        run(scenario())
    assert Unlucky.passes >= 2  # the loop kept going
    lines = [r for r in caplog.records if "unlucky pass ended early" in r.getMessage()]
    assert lines and all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)
    assert not [r for r in caplog.records if r.exc_info]


def test_change_events_are_read_for_what_the_operators_use(monkeypatch):
    """Issue 13: the operators read a change event's kind, statuses and enabled flag; the
    dashboard's `changes` (every record of a bulk write, ~190 KB for 2,800) are skipped unread,
    not decoded into lists. A malformed event, or one that is not an object, is ignored."""
    from bos_server.store.events import components_message, encoded
    runner = Runner([Recorder()], FakeServices())  # type: ignore[arg-type]
    seen: list = []
    monkeypatch.setattr(runner, "dispatch", seen.append)
    changes = [[f"x1c0s{i}b0n0", "s", "powering_on", "power_on_pending", False] for i in range(2800)]
    message = encoded(components_message([("power_on_pending", True)] * 2800, changes))
    assert message is not None and len(message) > 100_000
    for data in (message, b"", b"[1, 2]", b"{nope", b'{"kind": "options"}'):
        runner._handle(data)
    assert seen == [{"kind": "components", "statuses": ["power_on_pending"], "enabled": True},
                    {"kind": None, "statuses": None, "enabled": None},
                    {"kind": "options", "statuses": None, "enabled": None}]
