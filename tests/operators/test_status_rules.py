"""The status decision table (operators.md §3.2) and patch building (§3.3), row by row."""

from __future__ import annotations

import pytest

from bos_shared.components import empty_actual_state, zero_event_stats
from bos_server.operators.status_rules import (CFS_FAILED, NO_CFS, NO_PCS, build_patch, decide, evaluate,
                                              time_exceeded)

from .helpers import ARTIFACTS, EMPTY, NOW, OPTIONS, OTHER, cfs, component

ID = "x1000c0s0b0n0"
HELD = dict(override="on_hold")  # just enabled by session setup
ZERO = zero_event_stats()

# (name, component kwargs, P, F, expected rule, expected patch or None)
ROWS = [
    # -- S0: PCS or CFS did not return the component --
    ("s0_power_missing", HELD, None, cfs(), "S0",
     {"id": ID, "status": {"status_override": "on_hold"}, "enabled": False, "error": NO_PCS}),
    ("s0_power_empty", HELD, "", cfs(), "S0",
     {"id": ID, "status": {"status_override": "on_hold"}, "enabled": False, "error": NO_PCS}),
    ("s0_undefined_without_cfs_blames_pcs", HELD, "undefined", None, "S0",
     {"id": ID, "status": {"status_override": "on_hold"}, "enabled": False, "error": NO_PCS}),
    ("s0_cfs_missing_blames_cfs", HELD, "on", None, "S0",
     {"id": ID, "status": {"status_override": "on_hold"}, "enabled": False, "error": NO_CFS}),
    ("s0_off_and_cfs_missing", HELD, "off", None, "S0",
     {"id": ID, "status": {"status_override": "on_hold"}, "enabled": False, "error": NO_CFS}),
    ("s0_from_powering_off_clears_actual_and_counters", dict(phase="powering_off", action="powering_off_gracefully"),
     None, cfs(), "S0",
     {"id": ID, "status": {"status_override": "on_hold", "phase": ""}, "event_stats": ZERO,
      "actual_state": empty_actual_state(), "enabled": False, "error": NO_PCS}),
    ("s0_pcs_error_string_is_not_missing_but_cfs_is", HELD, "permission denied", None, "S0",
     {"id": ID, "status": {"status_override": "on_hold"}, "enabled": False, "error": NO_CFS}),
    # -- S2a: off and nothing to boot: shutdown done --
    ("s2a_off_and_desired_off", dict(desired=None, **HELD), "off", cfs(), "S2a",
     {"id": ID, "status": {"status_override": ""}, "enabled": False}),
    ("s2a_empty_kernel_counts_as_off", dict(desired=dict(EMPTY, initrd="x"), phase="powering_off",
                                             action="powering_off_gracefully"), "off", cfs(), "S2a",
     {"id": ID, "status": {"status_override": "", "phase": ""}, "event_stats": ZERO,
      "actual_state": empty_actual_state(), "enabled": False}),
    # -- S2b: off, must boot --
    ("s2b_off_needs_power_on", HELD, "off", cfs(), "S2b",
     {"id": ID, "status": {"status_override": "", "phase": "powering_on"}}),
    ("s2b_leaving_powering_off_clears_actual_state", dict(phase="powering_off", action="powering_off_forcefully"),
     "off", cfs(), "S2b",
     {"id": ID, "status": {"status_override": "", "phase": "powering_on"}, "actual_state": empty_actual_state()}),
    ("s2b_power_on_within_wait_changes_nothing", dict(phase="powering_on", action="powering_on", age=100),
     "off", cfs(), "S2b", None),
    ("s2b_power_on_late_sets_failed", dict(phase="powering_on", action="powering_on", age=121),
     "off", cfs(), "S2b",
     {"id": ID, "status": {"status_override": ""}, "last_action": {"failed": True}}),
    ("s2b_failed_written_only_once", dict(phase="powering_on", action="powering_on", age=500, failed=True),
     "off", cfs(), "S2b", None),
    ("s2b_missing_last_updated_counts_as_late", dict(phase="powering_on", action="powering_on", age=None),
     "off", cfs(), "S2b",
     {"id": ID, "status": {"status_override": ""}, "last_action": {"failed": True}}),
    ("s2b_other_action_never_sets_failed", dict(phase="powering_on", action="session_setup", age=5000),
     "off", cfs(), "S2b", None),
    # -- S3: on, desired off --
    ("s3_on_and_desired_off", dict(desired=None, **HELD), "on", cfs(), "S3",
     {"id": ID, "status": {"status_override": "", "phase": "powering_off"}}),
    ("s3_undefined_with_cfs_is_treated_as_on", dict(desired=None, **HELD), "undefined", cfs(), "S3",
     {"id": ID, "status": {"status_override": "", "phase": "powering_off"}}),
    ("s3_pcs_error_string_is_treated_as_on", dict(desired=None, **HELD), "Component not found in component map.",
     cfs(), "S3", {"id": ID, "status": {"status_override": "", "phase": "powering_off"}}),
    # -- S4: on and booted the desired artifacts --
    ("s4a_configuration_differs", dict(actual=ARTIFACTS, configuration="c1", **HELD), "on", cfs("c0"), "S4a",
     {"id": ID, "status": {"status_override": "", "phase": "configuring"}}),
    ("s4a_missing_cfs_desired_config_counts_as_empty", dict(actual=ARTIFACTS, configuration="c1", **HELD), "on",
     {"id": ID, "configuration_status": "unconfigured"}, "S4a",
     {"id": ID, "status": {"status_override": "", "phase": "configuring"}}),
    ("s4b_nothing_to_configure", dict(actual=ARTIFACTS, phase="powering_on", action="powering_on",
                                      stats={"power_on_attempts": 2}), "on", cfs("", "unconfigured"), "S4b",
     {"id": ID, "status": {"status_override": "", "phase": ""}, "event_stats": ZERO, "enabled": False}),
    ("s4b_spire_token_ignored_in_comparison",
     dict(actual=dict(ARTIFACTS, kernel_parameters="console=ttyS0  spire_join_token=abc bos_update_frequency=4h"),
          **HELD), "on", cfs(), "S4b", {"id": ID, "status": {"status_override": ""}, "enabled": False}),
    ("s4c_configured", dict(actual=ARTIFACTS, configuration="c1", phase="configuring"), "on",
     cfs("c1", "Configured"), "S4c",
     {"id": ID, "status": {"status_override": "", "phase": ""}, "event_stats": ZERO, "enabled": False}),
    ("s4d_cfs_failed", dict(actual=ARTIFACTS, configuration="c1", phase="configuring"), "on", cfs("c1", "failed"),
     "S4d", {"id": ID, "status": {"status_override": "failed"}, "enabled": False, "error": CFS_FAILED}),
    ("s4e_cfs_pending", dict(actual=ARTIFACTS, configuration="c1", phase="powering_on", action="powering_on"),
     "on", cfs("c1", "pending"), "S4e", {"id": ID, "status": {"status_override": "", "phase": "configuring"}}),
    ("s4e_still_pending_changes_nothing", dict(actual=ARTIFACTS, configuration="c1", phase="configuring"),
     "on", cfs("c1", "pending"), "S4e", None),
    ("s4f_unconfigured_is_invalid", dict(actual=ARTIFACTS, configuration="c1", phase="configuring"), "on",
     cfs("c1", "unconfigured"), "S4f",
     {"id": ID, "status": {"status_override": "failed"}, "enabled": False,
      "error": "cfs is not reporting a valid configuration status for this component: unconfigured"}),
    ("s4f_empty_status", dict(actual=ARTIFACTS, configuration="c1", phase="configuring"), "on",
     cfs("c1", ""), "S4f",
     {"id": ID, "status": {"status_override": "failed"}, "enabled": False,
      "error": "cfs is not reporting a valid configuration status for this component: "}),
    # -- S5: waiting for the boot --
    ("s5_waiting_for_report", dict(phase="powering_on", action="powering_on", age=1199), "on", cfs(), "S5", None),
    ("s5_waiting_releases_hold", dict(action="powering_on", age=10, **HELD), "on", cfs(), "S5",
     {"id": ID, "status": {"status_override": "", "phase": "powering_on"}}),
    # -- S6: reboot needed or boot timed out --
    ("s6_running_other_artifacts", dict(actual=OTHER, **HELD), "on", cfs(), "S6",
     {"id": ID, "status": {"status_override": "", "phase": "powering_off"}}),
    ("s6_boot_timed_out", dict(phase="powering_on", action="powering_on", age=1201), "on", cfs(), "S6",
     {"id": ID, "status": {"status_override": "", "phase": "powering_off"}}),
    ("s6_missing_last_updated_means_timed_out", dict(phase="powering_on", action="powering_on", age=None),
     "on", cfs(), "S6", {"id": ID, "status": {"status_override": "", "phase": "powering_off"}}),
    ("s6_absent_actual_state_does_not_match", dict(actual=None, **HELD), "on", cfs(), "S6",
     {"id": ID, "status": {"status_override": "", "phase": "powering_off"}}),
    # -- S1: a failed component stays failed and is disabled, whatever the chain decides --
    ("s1_with_s2a", dict(desired=None, override="failed", phase="powering_off", action="powering_off_forcefully"),
     "off", cfs(), "S1+S2a",
     {"id": ID, "status": {"status_override": "failed", "phase": ""}, "event_stats": ZERO,
      "actual_state": empty_actual_state(), "enabled": False}),
    ("s1_with_s2b", dict(override="failed", phase="powering_on"), "off", cfs(), "S1+S2b",
     {"id": ID, "status": {"status_override": "failed"}, "enabled": False}),
    ("s1_with_s2b_late_power_on", dict(override="failed", phase="powering_on", action="powering_on", age=300),
     "off", cfs(), "S1+S2b",
     {"id": ID, "status": {"status_override": "failed"}, "enabled": False, "last_action": {"failed": True}}),
    ("s1_with_s3", dict(override="failed", desired=None, phase="powering_off"), "on", cfs(), "S1+S3",
     {"id": ID, "status": {"status_override": "failed"}, "enabled": False}),
    ("s1_with_s4a", dict(override="failed", actual=ARTIFACTS, configuration="c1"), "on", cfs("c0"), "S1+S4a",
     {"id": ID, "status": {"status_override": "failed", "phase": "configuring"}, "enabled": False}),
    ("s1_with_s4b", dict(override="failed", actual=ARTIFACTS, phase="powering_on"), "on", cfs(), "S1+S4b",
     {"id": ID, "status": {"status_override": "failed", "phase": ""}, "event_stats": ZERO, "enabled": False}),
    ("s1_with_s4c", dict(override="failed", actual=ARTIFACTS, configuration="c1", phase="configuring"), "on",
     cfs("c1", "configured"), "S1+S4c",
     {"id": ID, "status": {"status_override": "failed", "phase": ""}, "event_stats": ZERO, "enabled": False}),
    ("s1_with_s4d", dict(override="failed", actual=ARTIFACTS, configuration="c1", phase="configuring"), "on",
     cfs("c1", "failed"), "S1+S4d",
     {"id": ID, "status": {"status_override": "failed"}, "enabled": False, "error": CFS_FAILED}),
    ("s1_with_s4e", dict(override="failed", actual=ARTIFACTS, configuration="c1", phase="configuring"), "on",
     cfs("c1", "pending"), "S1+S4e", {"id": ID, "status": {"status_override": "failed"}, "enabled": False}),
    ("s1_with_s5", dict(override="failed", phase="powering_on", action="powering_on", age=5), "on", cfs(),
     "S1+S5", {"id": ID, "status": {"status_override": "failed"}, "enabled": False}),
    ("s1_with_s6", dict(override="failed", phase="powering_on", action="powering_on", age=5000), "on", cfs(),
     "S1+S6", {"id": ID, "status": {"status_override": "failed", "phase": "powering_off"}, "enabled": False}),
    ("s1_keeps_existing_error", dict(override="failed", phase="powering_on", error="The retry limit has been hit"),
     "off", cfs(), "S1+S2b", {"id": ID, "status": {"status_override": "failed"}, "enabled": False}),
    ("s0_beats_s1", dict(override="failed", phase="powering_on"), None, cfs(), "S0",
     {"id": ID, "status": {"status_override": "on_hold", "phase": ""}, "event_stats": ZERO, "enabled": False,
      "error": NO_PCS}),
]


@pytest.mark.parametrize("name,kwargs,power,cfs_record,rule,expected", ROWS, ids=[r[0] for r in ROWS])
def test_decision_table(name, kwargs, power, cfs_record, rule, expected):
    record = component(**kwargs)
    assert decide(record, power, cfs_record, NOW, OPTIONS).rule == rule
    assert evaluate(record, power, cfs_record, NOW, OPTIONS) == expected


def test_every_rule_is_covered_by_the_table():
    rules = {row[4].split("+")[-1] for row in ROWS}
    assert rules == {"S0", "S2a", "S2b", "S3", "S4a", "S4b", "S4c", "S4d", "S4e", "S4f", "S5", "S6"}
    combined = {row[4].split("+")[1] for row in ROWS if row[4].startswith("S1+")}
    assert combined == {"S2a", "S2b", "S3", "S4a", "S4b", "S4c", "S4d", "S4e", "S5", "S6"}


def test_time_since_last_action_is_strictly_greater():
    record = component(age=120)
    assert not time_exceeded(record, 120, NOW)
    assert time_exceeded(record, 119, NOW)


def test_counters_zeroed_only_on_a_transition_to_empty_phase():
    record = component(phase="powering_on", action="powering_on", age=5000, stats={"power_on_attempts": 2})
    patch = evaluate(record, "on", cfs(), NOW, OPTIONS)  # S6: to powering_off
    assert "event_stats" not in patch
    stable = component(phase="", actual=ARTIFACTS, **HELD)  # S4b with the phase already ""
    assert "event_stats" not in evaluate(stable, "on", cfs(), NOW, OPTIONS)


def test_actual_state_cleared_only_when_leaving_powering_off():
    for phase in ("powering_on", "configuring", ""):
        record = component(phase=phase, desired=None)
        patch = evaluate(record, "on", cfs(), NOW, OPTIONS)  # S3 -> powering_off
        assert "actual_state" not in patch
    same = component(phase="powering_off", desired=None, action="powering_off_gracefully")
    assert evaluate(same, "on", cfs(), NOW, OPTIONS) is None  # staying in powering_off


def test_status_operator_never_enables_and_never_clears_failed_flag():
    for row in ROWS:
        patch = evaluate(component(**row[1]), row[2], row[3], NOW, OPTIONS)
        if patch is None:
            continue
        assert patch.get("enabled", False) is False
        assert (patch.get("last_action") or {}).get("failed", True) is True


def test_patch_only_when_something_changes():
    record = component(phase="powering_on", action="powering_on", age=3)
    decision = decide(record, "on", cfs(), NOW, OPTIONS)
    assert decision.rule == "S5"
    assert build_patch(record, decision) is None


def test_custom_wait_times_from_options():
    options = dict(OPTIONS, max_power_on_wait_time=10, max_boot_wait_time=30)
    off = component(phase="powering_on", action="powering_on", age=11)
    assert decide(off, "off", cfs(), NOW, options).set_failed
    on = component(phase="powering_on", action="powering_on", age=31)
    assert decide(on, "on", cfs(), NOW, options).rule == "S6"


@pytest.mark.parametrize("phase,override,action,failed,expected", [
    ("powering_on", "failed", "powering_on", False, "failed"),  # override wins
    ("powering_on", "on_hold", "powering_on", False, "on_hold"),
    ("powering_on", "", "powering_on", False, "power_on_called"),
    ("powering_on", "", "powering_on", True, "power_on_pending"),  # failed power-on is retried
    ("powering_on", "", "session_setup", False, "power_on_pending"),
    ("powering_off", "", "powering_off_gracefully", False, "power_off_gracefully_called"),
    ("powering_off", "", "powering_off_forcefully", False, "power_off_forcefully_called"),
    ("powering_off", "", "session_setup", False, "power_off_pending"),
    ("configuring", "", "powering_on", False, "configuring"),
    ("", "", "powering_on", False, "stable"),
])
def test_computed_status_hand_off(phase, override, action, failed, expected):
    from bos_shared.status import component_status
    assert component_status(component(phase=phase, override=override, action=action, failed=failed)) == expected
