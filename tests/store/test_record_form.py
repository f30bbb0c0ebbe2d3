"""The stored form of component records (store/record_form.py): smaller, and read back as written."""

from __future__ import annotations

import copy
from typing import Any, Dict

import pytest

from bos_server.jsonio import dumps, loads
from bos_server.store.record_form import pack, unpack

TOKEN = "2143071d-8627-421b-befb-1633d17e0d20"
BOOTED: Dict[str, Any] = {
    "id": "x1000c0s0b0n0",
    "actual_state": {"boot_artifacts": "9c86a19dc8a09d4f2696", "bss_token": TOKEN, "last_updated": "2026-12-01T15:56:11"},
    "desired_state": {"configuration": "compute-23.4.0", "boot_artifacts": "0903dfb3b94132203738", "bss_token": TOKEN,
                      "last_updated": "2026-12-01T15:56:10"},
    "staged_state": {"last_updated": "2026-12-01T15:56:08"},
    "last_action": {"action": "powering_on", "failed": False, "last_updated": "2026-12-01T15:56:11"},
    "enabled": False, "error": "", "session": "bench-boot",
    "event_stats": {"power_on_attempts": 0, "power_off_graceful_attempts": 0, "power_off_forceful_attempts": 0},
    "status": {"status_override": "", "phase": ""}}


@pytest.mark.parametrize("record", [
    BOOTED,
    {"id": "bare"},  # no defaults at all: they must not appear on reading
    {"id": "x1", "error": "boom", "status": {"phase": "powering_on", "status_override": ""},
     "event_stats": {"power_on_attempts": 2, "power_off_graceful_attempts": 0, "power_off_forceful_attempts": 0}},
    {"id": "x2", "actual_state": {"bss_token": TOKEN}, "desired_state": {"bss_token": "other"}},
    {"id": "x3", "actual_state": {"bss_token": ""}, "desired_state": {"bss_token": ""}},
    {"id": "x4", "status": {"phase": ""}},  # a partial status is kept as it is
])
def test_records_read_back_as_written(record: Dict[str, Any]) -> None:
    before = copy.deepcopy(record)
    stored = dumps(pack(record))
    assert record == before, "pack changed the record it was given"
    assert unpack(loads(stored)) == record


def test_a_booted_record_fits_the_512_byte_allocation() -> None:
    """Defaults left out and the repeated BSS token written as 1: 699 -> under 512 bytes (with Redis's
    string header), so a booted record takes the 512-byte allocator class instead of 768 (docs/metrics.md)."""
    assert len(dumps(BOOTED)) > 640
    assert len(dumps(pack(BOOTED))) + 5 <= 512
