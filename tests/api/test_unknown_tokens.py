"""Reports of unknown BSS tokens are warned of in bounded form (server/unknown_tokens.py): the first
at once, the rest of an interval counted into one summary line. Each test goes red when a report
is logged on its own line again (LOG.warning per report, ~16 % of a report's instructions)."""

from __future__ import annotations

import asyncio
import logging
from typing import List

from bos_server import component_writes
from bos_server.component_writes import apply_auto_fields
from bos_server.unknown_tokens import UnknownTokens


class Lines(logging.Handler):
    """The messages logged, formatted; `logged` is set on each (the timer's summary)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: List[str] = []
        self.logged = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.logged.set()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _logger(name: str) -> "tuple[logging.Logger, Lines]":
    log = logging.getLogger(name)
    log.propagate = False
    lines = Lines()
    log.handlers = [lines]
    return log, lines


def test_the_reports_of_an_interval_after_the_first_are_one_summary_line() -> None:
    log, lines = _logger("test.unknown.summary")
    clock = Clock()
    unknown = UnknownTokens(log, interval=10.0, clock=clock)
    for n in range(100):
        unknown.report(f"tok{n}", f"x{n}")
        clock.now += 0.05  # 100 reports in 5 s
    assert lines.lines == ["Unknown BSS referral token tok0 reported for x0"]
    clock.now += 6.0  # past the interval
    unknown.report("late", "x100")  # no event loop, so no timer: the next report writes the summary
    assert lines.lines[1:] == [
        "99 more reports of unknown BSS referral tokens in the last 10 s, the first: tok1 for x1, tok2 for x2, tok3 for x3",
        "Unknown BSS referral token late reported for x100"]
    unknown.flush()
    assert len(lines.lines) == 3, "a flush with nothing counted writes nothing"


def test_the_summary_is_written_when_the_interval_ends_without_another_report() -> None:
    log, lines = _logger("test.unknown.timer")

    async def main() -> None:
        unknown = UnknownTokens(log, interval=0.05)
        unknown.report("a", "x1")
        unknown.report("b", "x2")
        lines.logged.clear()
        await asyncio.wait_for(lines.logged.wait(), 10)  # the event loop's timer, no report needed

    asyncio.run(main())
    assert lines.lines == ["Unknown BSS referral token a reported for x1",
                           "1 more reports of unknown BSS referral tokens in the last 0.05 s, the first: b for x2"]


def test_the_write_path_warns_through_the_bounded_log(monkeypatch) -> None:
    log, lines = _logger("test.unknown.writes")
    monkeypatch.setattr(component_writes, "UNKNOWN_TOKENS", UnknownTokens(log, interval=3600.0))
    for n in range(50):
        out = apply_auto_fields({"id": f"x{n}", "actual_state": {"bss_token": f"t{n}"}}, {}, "NOW")
        assert out["actual_state"] == {"bss_token": f"t{n}"}  # an unknown token leaves the data unchanged
    assert lines.lines == ["Unknown BSS referral token t0 reported for x0"]
    component_writes.UNKNOWN_TOKENS.flush()
    assert lines.lines[1].startswith("49 more reports of unknown BSS referral tokens in the last 3600 s, the first: "
                                     "t1 for x1, t2 for x2, t3 for x3"), lines.lines
