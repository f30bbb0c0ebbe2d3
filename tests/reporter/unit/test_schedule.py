"""reporter.md §5 and §2.1: period, random first wait, back-off."""

from __future__ import annotations

import random
from typing import Optional

import pytest

from bos_reporter import schedule


@pytest.mark.parametrize("value, seconds", [
    ("4h", 14400), ("90m", 5400), ("30s", 30), ("1d", 86400), ("2w", 1209600),
    ("4H", 14400),  # component_actual_state_ttl allows upper-case units and is sent verbatim
])
def test_frequency_is_digits_then_one_unit(value: str, seconds: int) -> None:
    assert schedule.frequency_seconds(value) == seconds


@pytest.mark.parametrize("value", ["1.5h", "4", "h", "4hr", "-1h", "4 h", "four", "", "0h", "0", "00m", None])
def test_r3_malformed_or_zero_frequency_is_rejected(value: Optional[str]) -> None:
    assert schedule.frequency_seconds(value) is None


def test_period_is_three_quarters_of_the_frequency() -> None:
    assert schedule.period_seconds(14400) == 10800
    assert schedule.period_seconds(schedule.DEFAULT_FREQUENCY_SECONDS) == 3 * 3600


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize("draw, expected", [(0.0, 0.0), (0.5, 5400.0), (0.999, 10789.2)])
def test_first_wait_is_uniform_in_zero_to_period(draw: float, expected: float) -> None:
    assert schedule.first_wait(10800, FixedRandom(draw)) == pytest.approx(expected)


def test_first_wait_stays_below_the_period() -> None:
    rng = random.Random(1234)
    waits = [schedule.first_wait(60.0, rng) for _ in range(2000)]
    assert all(0.0 <= w < 60.0 for w in waits)
    assert min(waits) < 6 and max(waits) > 54  # spread over the whole range


def test_backoff_sequence_is_0_2_4_capped_at_30() -> None:
    delays = [schedule.backoff_delay(attempt) for attempt in range(1, 20)]
    assert delays[:5] == [0, 2, 4, 6, 8]
    assert delays[15] == 30 and delays[16:] == [30, 30, 30]
    assert max(delays) == 30
