"""The warning of reports with an unknown BSS referral token (api.md §2.4 step 1), bounded.

An admin must learn that nodes report tokens the API cannot resolve (a lost token record, a
foreign BSS), but not through one log line per report: with a new unknown token in every report
(issue 13, reporter workload (a)) Python logging was ~16 % of a report's instructions, and a
boot of 100,000 such nodes wrote 100,000 lines. So, per worker process:

- the first unknown token after a quiet interval is logged at once, token and component, as
  before (a single stray report still shows up immediately);
- the ones that follow within INTERVAL seconds are only counted, keeping the first EXAMPLES;
- one summary line at the interval's end (a timer of the event loop; or the next report, or
  the worker's shut-down, `flush`) gives their count and those examples.

A report that follows is thus a counter increment and a clock read, and the log holds at most
two lines per interval and worker, whatever the rate of reports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, List, Optional, Tuple

INTERVAL = 10.0  # seconds during which further unknown tokens are counted, not logged
EXAMPLES = 3  # (token, component) pairs named in a summary
FIRST = "Unknown BSS referral token %s reported for %s"
SUMMARY = "%d more reports of unknown BSS referral tokens in the last %g s, the first: %s"


class UnknownTokens:
    """Counts reports of unknown tokens and logs them as the module docstring says."""

    def __init__(self, log: logging.Logger, interval: float = INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._until = float("-inf")  # the end of the current interval
        self._count = 0
        self._examples: List[Tuple[str, str]] = []
        self._timer: Optional[asyncio.TimerHandle] = None

    def report(self, token: str, component_id: str) -> None:
        """One report of `token`, unknown, for `component_id`."""
        if self._clock() < self._until:
            self._count += 1
            if len(self._examples) < EXAMPLES:
                self._examples.append((token, component_id))
                if self._timer is None:
                    self._schedule()
            return
        self.flush()  # a previous interval's summary no timer wrote (no event loop)
        self._until = self._clock() + self._interval
        self._log.warning(FIRST, token, component_id)

    def flush(self) -> None:
        """Write the summary of the reports counted so far, if any (the timer, shut-down)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._count:
            named = ", ".join(f"{token} for {component}" for token, component in self._examples)
            self._log.warning(SUMMARY, self._count, self._interval, named)
        self._count = 0
        self._examples = []

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script, a unit test): the next report or flush writes it
            return
        self._timer = loop.call_at(loop.time() + max(0.0, self._until - self._clock()), self.flush)
