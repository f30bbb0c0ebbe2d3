"""Computed status (api.md §2.3) and extended status arithmetic (§2.9)."""

from __future__ import annotations

import pytest

from bos_shared.status import component_status, extended_status, status_view


@pytest.mark.parametrize("record,expected", [
    ({"status": {"status_override": "on_hold", "phase": "powering_on"}}, "on_hold"),  # 1: override first
    ({"status": {"status_override": "anything at all"}}, "anything at all"),
    ({"status": {"phase": "powering_on"}, "last_action": {"action": "powering_on", "failed": False}}, "power_on_called"),
    ({"status": {"phase": "powering_on"}, "last_action": {"action": "powering_on"}}, "power_on_called"),
    ({"status": {"phase": "powering_on"}, "last_action": {"action": "powering_on", "failed": True}}, "power_on_pending"),
    ({"status": {"phase": "powering_on"}, "last_action": {"action": "session_setup"}}, "power_on_pending"),
    ({"status": {"phase": "powering_off"}, "last_action": {"action": "powering_off_gracefully"}}, "power_off_gracefully_called"),
    ({"status": {"phase": "powering_off"}, "last_action": {"action": "powering_off_forcefully"}}, "power_off_forcefully_called"),
    ({"status": {"phase": "powering_off"}}, "power_off_pending"),
    ({"status": {"phase": "configuring"}}, "configuring"),
    ({"status": {"phase": ""}}, "stable"),
    ({}, "stable"),
])
def test_computed_status_rules_first_match_wins(record, expected) -> None:
    assert component_status(record) == expected


def test_record_without_status_is_presented_as_stable_with_empty_fields() -> None:
    assert status_view({}) == {"phase": "", "status_override": "", "status": "stable"}


def _member(cid: str, **fields) -> dict:
    return dict({"id": cid, "enabled": True}, **fields)


SESSION = {"name": "s", "status": {"start_time": "2025-01-13T15:04:05", "end_time": "2025-01-13T15:16:39",
                                   "status": "running"}}


def test_extended_status_percentages_round_to_two_places() -> None:
    members = [_member("a", enabled=False), _member("b", status={"phase": "powering_on"}),
               _member("c", status={"phase": "configuring"})]
    result = extended_status(SESSION, members, staged_count=0)
    assert result["managed_components_count"] == 3
    assert result["percent_successful"] == 33.33
    assert result["phases"] == {"percent_complete": 33.33, "percent_powering_on": 33.33,
                                "percent_powering_off": 0.0, "percent_configuring": 33.33}
    assert result["timing"] == {"start_time": "2025-01-13T15:04:05", "end_time": "2025-01-13T15:16:39",
                                "duration": "0:12:34"}
    assert result["status"] == "running"


def test_phases_count_only_enabled_components_not_on_hold() -> None:
    members = [_member("a", status={"phase": "powering_off", "status_override": "on_hold"}),
               _member("b", enabled=False, status={"phase": "powering_off"}),
               _member("c", status={"phase": "powering_off"})]
    assert extended_status(SESSION, members, 1)["phases"]["percent_powering_off"] == 25.0


def test_failed_and_staged_counts() -> None:
    members = [_member("a", status={"status_override": "failed"}), _member("b")]
    result = extended_status(SESSION, members, staged_count=2)
    assert result["percent_failed"] == 25.0
    assert result["percent_successful"] == 25.0
    assert result["percent_staged"] == 50.0
    assert result["phases"]["percent_complete"] == 50.0


def test_no_managed_components_gives_zero_percentages() -> None:
    result = extended_status(SESSION, [], 0)
    assert result["managed_components_count"] == 0
    assert result["percent_successful"] == 0.0 and result["phases"]["percent_complete"] == 0.0


def test_d20_error_summary_lists_ten_smallest_ids_then_ellipsis() -> None:
    members = [_member(f"x{n:02d}", error="boom") for n in range(12, 0, -1)] + [_member("y", error="other")]
    summary = extended_status(SESSION, members, 0)["error_summary"]
    assert summary["boom"] == {"count": 12, "list": ",".join(f"x{n:02d}" for n in range(1, 11)) + "..."}
    assert summary["other"] == {"count": 1, "list": "y"}


def test_duration_of_a_running_session_counts_to_now_and_days_render_like_timedelta() -> None:
    running = {"name": "s", "status": {"start_time": "2025-01-13T00:00:00", "end_time": None, "status": "running"}}
    from bos_shared.times import epoch
    now = epoch("2025-01-14T02:03:04")
    assert extended_status(running, [], 0, now=now)["timing"]["duration"] == "1 day, 2:03:04"
    now = epoch("2025-01-16T00:00:05")
    assert extended_status(running, [], 0, now=now)["timing"]["duration"] == "3 days, 0:00:05"
