"""The simulator's Go-style time stamps (httputil.stamp): the per-second memo prints exactly
what datetime's strftime prints, fraction rounding and its carry into the next second included."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, strategies as st

from bos_sim import httputil


def reference(epoch: float, nanos: bool) -> str:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    if not nanos:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond * 1000:09d}Z"


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False), st.booleans())
def test_a_stamp_is_what_strftime_prints(epoch: float, nanos: bool) -> None:
    assert httputil.stamp(epoch, nanos) == reference(epoch, nanos)


def test_a_fraction_that_rounds_up_carries_into_the_next_second() -> None:
    for epoch in (1764000000.9999995, 1764000000.9999996, 1764000059.9999999, 1764003599.99999951):
        httputil.stamp(epoch - 0.5)  # the memo knows the earlier second already
        assert httputil.stamp(epoch) == reference(epoch, True)
        assert httputil.stamp(epoch, nanos=False) == reference(epoch, False)
    assert httputil.stamp(1764000000.9999996) == "2025-11-24T16:00:01.000000000Z"
