"""The status operator's decision table (operators.md §3.2) and patch building (§3.3).

Pure functions of (component, power value P, CFS record F, now, options): no I/O,
so every rule is tested as a table (tests/operators/test_status_rules.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from bos_shared.components import (boot_artifacts_match, desired_boot_is_off, empty_actual_state,
                                   zero_event_stats)
from bos_shared.status import component_status
from bos_shared.times import epoch

ON_HOLD = "on_hold"
FAILED = "failed"
NO_PCS = "Component information was not returned by pcs"
NO_CFS = "Component information was not returned by cfs"
CFS_FAILED = "cfs configuration failed"
CFS_INVALID = "cfs is not reporting a valid configuration status for this component: {}"


@dataclass(frozen=True)
class Decision:
    """What the table decided for one component; `rule` names the row (for logs and tests)."""

    rule: str
    phase: str
    override: str = ""
    disable: bool = False
    error: str = ""
    set_failed: bool = False


# The rows whose decision is always the same, made once: a frozen dataclass's __init__ sets each
# field through object.__setattr__, and one Decision per record evaluated was a twentieth of the
# status operator's CPU in a 20,000-node reboot (issue 13). Decisions are immutable: shared safely.
S0_NO_PCS = Decision("S0", "", ON_HOLD, True, NO_PCS)
S0_NO_CFS = Decision("S0", "", ON_HOLD, True, NO_CFS)
S2A = Decision("S2a", "", disable=True)
S2B = Decision("S2b", "powering_on")
S2B_LATE = Decision("S2b", "powering_on", set_failed=True)
S3 = Decision("S3", "powering_off")
S4A = Decision("S4a", "configuring")
S4B = Decision("S4b", "", disable=True)
S4C = Decision("S4c", "", disable=True)
S4D = Decision("S4d", "configuring", FAILED, True, CFS_FAILED)
S4E = Decision("S4e", "configuring")
S5 = Decision("S5", "powering_on")
S6 = Decision("S6", "powering_off")


def time_exceeded(component: Mapping[str, Any], seconds: float, now: float) -> bool:
    """§1.1: `last_action.last_updated` absent (or unreadable), or now > last_updated + seconds."""
    stamp = epoch((component.get("last_action") or {}).get("last_updated"))
    return stamp is None or now > stamp + seconds


def seconds_until(component: Mapping[str, Any], seconds: float, now: float) -> Optional[float]:
    """Time left before `time_exceeded` becomes true (None if it already is)."""
    stamp = epoch((component.get("last_action") or {}).get("last_updated"))
    if stamp is None or now > stamp + seconds:
        return None
    return stamp + seconds - now


def _last_action(component: Mapping[str, Any]) -> str:
    return (component.get("last_action") or {}).get("action") or ""


def decide_phase(component: Mapping[str, Any], power: Optional[str], cfs: Optional[Mapping[str, Any]],
                 now: float, options: Mapping[str, Any]) -> Decision:
    """S0 or the S2-S6 chain (S1 is applied afterwards by `decide`)."""
    if not power or cfs is None:  # S0
        return S0_NO_PCS if (not power or power == "undefined") else S0_NO_CFS
    desired = component.get("desired_state") or {}
    if power == "off":
        if desired_boot_is_off(desired):
            return S2A
        late = (_last_action(component) == "powering_on"
                and time_exceeded(component, options["max_power_on_wait_time"], now))
        return S2B_LATE if late else S2B
    if desired_boot_is_off(desired):
        return S3
    actual = component.get("actual_state") or {}
    if boot_artifacts_match(desired.get("boot_artifacts"), actual.get("boot_artifacts")):
        return _configuration_rule(desired.get("configuration") or "", cfs)
    if (_last_action(component) == "powering_on"
            and not time_exceeded(component, options["max_boot_wait_time"], now)):
        return S5
    return S6


def _configuration_rule(configuration: str, cfs: Mapping[str, Any]) -> Decision:
    """S4a-S4f: the node runs the desired boot; what remains is configuration."""
    if configuration != (cfs.get("desired_config") or ""):
        return S4A
    if not configuration:
        return S4B
    cfs_status = str(cfs.get("configuration_status") or "").lower()
    if cfs_status == "configured":
        return S4C
    if cfs_status == "failed":
        return S4D
    if cfs_status == "pending":
        return S4E
    return Decision("S4f", "configuring", FAILED, True, CFS_INVALID.format(cfs_status))


def decide(component: Mapping[str, Any], power: Optional[str], cfs: Optional[Mapping[str, Any]],
           now: float, options: Mapping[str, Any]) -> Decision:
    """The full table: S0, or S2-S6 with S1 (a `failed` component stays failed and is disabled)."""
    decision = decide_phase(component, power, cfs, now, options)
    if decision.rule != "S0" and component_status(component) == FAILED:  # S1
        return Decision("S1+" + decision.rule, decision.phase, FAILED, True, decision.error,
                        decision.set_failed)
    return decision


def build_patch(component: Mapping[str, Any], decision: Decision) -> Optional[Dict[str, Any]]:
    """§3.3: the minimal patch for `decision`, or None when nothing changes."""
    status = component.get("status") or {}
    patch: Dict[str, Any] = {"id": component["id"], "status": {"status_override": decision.override}}
    changed = False
    if decision.phase != (status.get("phase") or ""):
        if decision.phase == "":
            patch["event_stats"] = zero_event_stats()
        if (status.get("phase") or "") == "powering_off":
            patch["actual_state"] = empty_actual_state()  # the node went down: its old boot is gone
        patch["status"]["phase"] = decision.phase
        changed = True
    if decision.override != (status.get("status_override") or ""):
        changed = True
    if decision.disable:
        patch["enabled"] = False
        changed = True
    if decision.error and decision.error != (component.get("error") or ""):
        patch["error"] = decision.error
        changed = True
    if decision.set_failed and (component.get("last_action") or {}).get("failed") is not True:
        patch["last_action"] = {"failed": True}
        changed = True
    return patch if changed else None


def evaluate(component: Mapping[str, Any], power: Optional[str], cfs: Optional[Mapping[str, Any]],
             now: float, options: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """Decision table plus patch building: the status operator's whole per-component step."""
    return build_patch(component, decide(component, power, cfs, now, options))
