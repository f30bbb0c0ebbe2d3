"""When to report (reporter.md §5): period, randomised first wait, back-off.

All pure: the clock and the random source are the caller's.
"""

from __future__ import annotations

import random
from typing import Optional

from bos_shared.ages import parse_duration

DEFAULT_FREQUENCY = "4h"
DEFAULT_FREQUENCY_SECONDS = 4 * 3600
PERIOD_FACTOR = 0.75  # keeps reports fresher than component_actual_state_ttl
BACKOFF_STEP = 2.0
BACKOFF_CAP = 30.0
TOKEN_RETRY_SECONDS = 2.0  # §4: a failing token command is retried every 2 s
TOKEN_ERROR_LOG_SECONDS = 60.0  # ... and logged at most once a minute


def frequency_seconds(value: Optional[str]) -> Optional[int]:
    """Seconds of a `bos_update_frequency` value; None when malformed (R3).

    Units are case-insensitive because the server sends
    `component_actual_state_ttl` verbatim, and that option allows `4H`.
    A zero value is malformed: it would make the reporter spin.
    """
    seconds = parse_duration(value)
    if seconds is None or seconds <= 0:
        return None
    return seconds


def period_seconds(frequency: int) -> float:
    """Time between periodic reports: 0.75 x the update frequency."""
    return PERIOD_FACTOR * frequency


def first_wait(period: float, rng: random.Random) -> float:
    """Wait after the start-up report, uniform in [0, period): spreads a full-system boot."""
    wait = rng.random() * period
    return wait if wait < period else 0.0


def backoff_delay(attempt: int) -> float:
    """Wait before attempt `attempt` (1-based): 0, 2, 4, ..., capped at 30 s."""
    return min(BACKOFF_CAP, BACKOFF_STEP * max(0, attempt - 1))
