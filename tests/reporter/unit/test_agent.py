"""reporter.md §5 timing and §4/§6 behaviour of the loop, driven against a local HTTP server."""

from __future__ import annotations

import logging
import os
import random
import stat
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Deque, List, Optional, Set

import pytest

from bos_reporter import schedule
from bos_reporter.agent import Agent, watcher_for
from bos_reporter.auth import CommandToken, FileToken, TokenSource
from bos_reporter.config import ConfigError, load_settings
from bos_reporter.watch import FileWatcher

from .conftest import StubBos, make_settings, problem

XNAME = "x3000c0s19b1n0"
PERIOD = 10800.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeWaiter:
    """Lets time pass instantly and records every wait; can deliver scripted file changes."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: List[float] = []
        self.changes: Deque[Set[str]] = deque()
        self.before_wait: Optional[Callable[[int], None]] = None

    def wait(self, timeout: float) -> Set[str]:
        self.waits.append(timeout)
        if self.before_wait:
            self.before_wait(len(self.waits))
        if self.changes:
            return self.changes.popleft()
        self.clock.now += timeout
        return set()

    def close(self) -> None:
        pass


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def waiter(clock: FakeClock) -> FakeWaiter:
    return FakeWaiter(clock)


def make_agent(tmp_path: Path, endpoint: str, token_file: Optional[Path], waiter: Optional[FakeWaiter] = None,
               clock: Optional[FakeClock] = None, tokens: Optional[TokenSource] = None,
               period: float = PERIOD, **settings: object) -> Agent:
    (tmp_path / "run").mkdir(exist_ok=True)
    config = make_settings(tmp_path, endpoint, token_file, **settings)
    factory = (lambda _s: waiter) if waiter is not None else watcher_for
    return Agent(config, {"xname": XNAME}, XNAME, "tok-1", period, waiter_factory=factory, tokens=tokens,
                 rng=FixedRandom(0.25), clock=clock or time.monotonic)


def bearer_of(stub: StubBos) -> List[str]:
    return [r.headers["Authorization"] for r in stub.requests]


# --- report_until_success -------------------------------------------------------------------

def test_start_up_report_is_sent_at_once(stub: StubBos, tmp_path: Path, token_file: Path,
                                         waiter: FakeWaiter, clock: FakeClock) -> None:
    agent = make_agent(tmp_path, stub.url, token_file, waiter, clock)
    assert agent.report_until_success()
    assert waiter.waits == []
    assert [r.json() for r in stub.requests] == [{"id": XNAME, "actual_state": {"bss_token": "tok-1"}}]


def test_backoff_waits_2_4_6_before_retries_until_success(stub: StubBos, tmp_path: Path, token_file: Path,
                                                           waiter: FakeWaiter, clock: FakeClock) -> None:
    stub.reply(*[(500, b"boom")] * 5)
    assert make_agent(tmp_path, stub.url, token_file, waiter, clock).report_until_success()
    assert waiter.waits == [2, 4, 6, 8, 10]
    assert len(stub.requests) == 6


def test_never_gives_up_and_backoff_is_capped_at_30(stub: StubBos, tmp_path: Path, token_file: Path,
                                                     waiter: FakeWaiter, clock: FakeClock) -> None:
    stub.reply(*[(503, b"")] * 20)
    assert make_agent(tmp_path, stub.url, token_file, waiter, clock).report_until_success()
    assert waiter.waits[:3] == [2, 4, 6] and waiter.waits[-5:] == [30] * 5 and max(waiter.waits) == 30
    assert len(stub.requests) == 21


def test_404_and_409_are_retried_with_backoff(stub: StubBos, tmp_path: Path, token_file: Path,
                                              waiter: FakeWaiter, clock: FakeClock,
                                              caplog: pytest.LogCaptureFixture) -> None:
    stub.reply(problem(404, "Not Found", "no such component"),
               problem(409, "Actual state can not be updated.", "BOS is currently changing the state"))
    assert make_agent(tmp_path, stub.url, token_file, waiter, clock).report_until_success()
    assert waiter.waits == [2, 4] and len(stub.requests) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == f"BOS has no record of component '{XNAME}'; nothing to report."
    assert "BOS is currently changing the state" in warnings[1]


def test_once_gives_up_after_the_bounded_attempts(stub: StubBos, tmp_path: Path, token_file: Path,
                                                  waiter: FakeWaiter, clock: FakeClock) -> None:
    stub.reply(*[(503, b"")] * 5)
    assert not make_agent(tmp_path, stub.url, token_file, waiter, clock).report_until_success(max_attempts=3)
    assert len(stub.requests) == 3 and waiter.waits == [2, 4]


def test_r8_every_failed_attempt_is_logged_once_with_its_cause(stub: StubBos, tmp_path: Path, token_file: Path,
                                                               waiter: FakeWaiter, clock: FakeClock,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    stub.reply((500, b"database down"), (502, b"bad gateway"))
    make_agent(tmp_path, stub.url, token_file, waiter, clock).report_until_success()
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert failures == ["BOS answered 500: database down", "BOS answered 502: bad gateway"]


def test_401_makes_the_next_attempt_obtain_a_fresh_token(stub: StubBos, tmp_path: Path, waiter: FakeWaiter,
                                                         clock: FakeClock) -> None:
    counter = tmp_path / "count"
    command = tmp_path / "get-token"
    command.write_text(f"#!{sys.executable}\nimport os\np = {str(counter)!r}\n"
                       "n = int(open(p).read()) + 1 if os.path.exists(p) else 1\n"
                       "open(p, 'w').write(str(n)); print('token-%d' % n)\n")
    command.chmod(command.stat().st_mode | stat.S_IXUSR)
    stub.reply((401, b"expired"))
    agent = make_agent(tmp_path, stub.url, None, waiter, clock, tokens=CommandToken(str(command), "/spire"))
    assert agent.report_until_success()
    assert bearer_of(stub) == ["Bearer token-1", "Bearer token-2"]


def test_403_makes_a_cached_token_file_be_read_again(stub: StubBos, tmp_path: Path, token_file: Path,
                                                     waiter: FakeWaiter, clock: FakeClock) -> None:
    stub.reply((403, b"forbidden"))
    agent = make_agent(tmp_path, stub.url, token_file, waiter, clock)
    before = token_file.stat()

    def rotate(_n: int) -> None:  # same size and mtime: only invalidation can notice
        token_file.write_text("bearer-2\n")
        os.utime(token_file, ns=(before.st_atime_ns, before.st_mtime_ns))

    waiter.before_wait = rotate
    assert agent.report_until_success()
    assert bearer_of(stub) == ["Bearer bearer-1", "Bearer bearer-2"]


def test_token_failure_is_retried_every_2s_and_logged_once_a_minute(stub: StubBos, tmp_path: Path,
                                                                      waiter: FakeWaiter, clock: FakeClock,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    token_file = tmp_path / "token"  # absent for 80 s
    waiter.before_wait = lambda n: token_file.write_text("late\n") if n == 40 else None
    assert make_agent(tmp_path, stub.url, token_file, waiter, clock).report_until_success()
    assert waiter.waits == [2.0] * 40
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2  # at t=0 and t=60
    assert "cannot read token file" in errors[0].getMessage()
    assert bearer_of(stub) == ["Bearer late"]


def test_once_token_failure_counts_as_a_failed_attempt(stub: StubBos, tmp_path: Path, waiter: FakeWaiter,
                                                       clock: FakeClock) -> None:
    agent = make_agent(tmp_path, stub.url, tmp_path / "absent", waiter, clock)
    assert not agent.report_until_success(max_attempts=2)
    assert stub.requests == [] and waiter.waits == [2]


class ExplodingOnce:
    """A token source whose first use fails with a bug-like error."""

    def __init__(self) -> None:
        self.calls = 0

    def get(self) -> str:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("unexpected")
        return "bearer"

    def invalidate(self) -> None:
        pass

    def describe(self) -> str:
        return "test tokens"


def test_unexpected_local_error_is_logged_and_counts_as_failed(stub: StubBos, tmp_path: Path, waiter: FakeWaiter,
                                                               clock: FakeClock,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    agent = make_agent(tmp_path, stub.url, None, waiter, clock, tokens=ExplodingOnce())
    assert agent.report_until_success()
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage() == "Attempt 1 failed with an unexpected error." and error.exc_info
    assert waiter.waits == [2] and len(stub.requests) == 1


# --- the periodic loop ----------------------------------------------------------------------

def test_first_wait_is_random_then_every_period(stub: StubBos, tmp_path: Path, token_file: Path,
                                                waiter: FakeWaiter, clock: FakeClock) -> None:
    make_agent(tmp_path, stub.url, token_file, waiter, clock).run(max_reports=3)
    assert waiter.waits == [0.25 * PERIOD, PERIOD]
    assert len(stub.requests) == 3


def test_trigger_file_ends_the_period_and_is_removed(stub: StubBos, tmp_path: Path, token_file: Path,
                                                     waiter: FakeWaiter, clock: FakeClock) -> None:
    agent = make_agent(tmp_path, stub.url, token_file, waiter, clock)
    trigger = Path(agent.settings.trigger_file)
    waiter.before_wait = lambda n: trigger.touch()
    waiter.changes.append({"trigger"})
    agent.run(max_reports=2)
    assert waiter.waits == [0.25 * PERIOD] and clock.now == 1000.0  # no time passed
    assert len(stub.requests) == 2 and not trigger.exists()


def test_trigger_event_without_the_file_does_not_end_the_period(stub: StubBos, tmp_path: Path, token_file: Path,
                                                                waiter: FakeWaiter, clock: FakeClock) -> None:
    waiter.changes.append({"trigger"})  # e.g. the echo of our own removal of the file
    make_agent(tmp_path, stub.url, token_file, waiter, clock).run(max_reports=2)
    assert waiter.waits == [0.25 * PERIOD, 0.25 * PERIOD]


def test_stale_trigger_is_consumed_by_the_start_up_report(stub: StubBos, tmp_path: Path, token_file: Path,
                                                          waiter: FakeWaiter, clock: FakeClock) -> None:
    agent = make_agent(tmp_path, stub.url, token_file, waiter, clock)
    Path(agent.settings.trigger_file).touch()
    agent.run(max_reports=1)
    assert not Path(agent.settings.trigger_file).exists() and len(stub.requests) == 1


def test_trigger_cuts_a_backoff_wait_short(stub: StubBos, tmp_path: Path, token_file: Path, waiter: FakeWaiter,
                                           clock: FakeClock) -> None:
    stub.reply((500, b""))
    agent = make_agent(tmp_path, stub.url, token_file, waiter, clock)
    waiter.before_wait = lambda n: Path(agent.settings.trigger_file).touch()
    waiter.changes.append({"trigger"})
    assert agent.report_until_success()
    assert waiter.waits == [2] and clock.now == 1000.0 and len(stub.requests) == 2


def test_token_change_cuts_a_backoff_wait_short_and_is_read(stub: StubBos, tmp_path: Path, token_file: Path,
                                                            waiter: FakeWaiter, clock: FakeClock) -> None:
    stub.reply((401, b""))
    agent = make_agent(tmp_path, stub.url, token_file, waiter, clock)
    waiter.before_wait = lambda n: token_file.write_text("bearer-new\n")
    waiter.changes.append({"token"})
    assert agent.report_until_success()
    assert clock.now == 1000.0 and bearer_of(stub) == ["Bearer bearer-1", "Bearer bearer-new"]


def test_unusable_config_change_keeps_the_current_settings(stub: StubBos, tmp_path: Path, token_file: Path,
                                                           waiter: FakeWaiter, clock: FakeClock,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    agent = make_agent(tmp_path, stub.url, token_file, waiter, clock)

    def broken() -> object:
        raise ConfigError("BOS endpoint 'nowhere' is not an http(s) URL")

    agent.reload = broken  # type: ignore[assignment]
    waiter.changes.append({"config"})
    agent.run(max_reports=2)
    assert agent.settings.endpoint == stub.url and len(stub.requests) == 2
    assert waiter.waits == [0.25 * PERIOD, 0.25 * PERIOD]  # the period was not cut short
    assert "keeping the current settings" in caplog.text


# --- with the real watchers (inotify and polling) --------------------------------------------

def run_in_thread(target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


@pytest.fixture(params=["auto", "poll"])
def watch_mode(request: pytest.FixtureRequest) -> str:
    return request.param


def test_trigger_file_makes_it_report_at_once(stub: StubBos, tmp_path: Path, token_file: Path,
                                              watch_mode: str) -> None:
    agent = make_agent(tmp_path, stub.url, token_file, watch_mode=watch_mode)
    assert isinstance(agent.waiter, FileWatcher)
    assert set(agent.waiter.modes.values()) == {"inotify" if watch_mode == "auto" else "poll"}
    thread = run_in_thread(lambda: agent.run(max_reports=2))  # period 3 h: only the trigger can do it
    stub.wait_for(1)
    Path(agent.settings.trigger_file).touch()
    stub.wait_for(2, timeout=5)
    thread.join(5)
    assert not thread.is_alive() and not Path(agent.settings.trigger_file).exists()
    agent.close()


def test_changed_token_file_is_reread_during_backoff(stub: StubBos, tmp_path: Path, token_file: Path,
                                                     watch_mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedule, "BACKOFF_STEP", 60.0)  # only the token change can end the wait in time
    stub.reply((401, b"expired"))
    agent = make_agent(tmp_path, stub.url, token_file, watch_mode=watch_mode)
    assert isinstance(agent.tokens, FileToken)
    thread = run_in_thread(agent.report_until_success)
    stub.wait_for(1)
    token_file.write_text("bearer-rotated\n")
    stub.wait_for(2, timeout=10)
    thread.join(5)
    assert bearer_of(stub) == ["Bearer bearer-1", "Bearer bearer-rotated"]
    agent.close()


def test_changed_config_file_is_applied_and_reported_at_once(tmp_path: Path, token_file: Path,
                                                             watch_mode: str) -> None:
    first, second = StubBos(), StubBos()
    conf = tmp_path / "bos-reporter.conf"
    lines = (f"BOS_REPORTER_TOKEN_FILE={token_file}\nBOS_REPORTER_TRIGGER_FILE={tmp_path / 'run' / 'now'}\n"
             f"BOS_REPORTER_WATCH={watch_mode}\nBOS_REPORTER_POLL_INTERVAL=0.05\n")
    conf.write_text(lines + f"BOS_REPORTER_ENDPOINT={first.url}\n")
    (tmp_path / "run").mkdir()

    def reload() -> object:
        return load_settings({}, {}, str(conf))

    settings, _ = reload()  # type: ignore[misc]
    agent = Agent(settings, {"xname": XNAME}, XNAME, "tok-1", PERIOD, reload=reload,  # type: ignore[arg-type]
                  rng=FixedRandom(0.5))
    try:
        thread = run_in_thread(lambda: agent.run(max_reports=2))
        first.wait_for(1)
        conf.write_text(lines + f"BOS_REPORTER_ENDPOINT={second.url}\n")
        second.wait_for(1, timeout=5)
        thread.join(5)
        assert agent.settings.endpoint == second.url and len(first.requests) == 1
    finally:
        agent.close()
        first.close()
        second.close()
