"""Constant component shapes (api.md §2.1) and the boot-artifact comparison (D23)."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

ARTIFACT_KEYS = ("kernel", "kernel_parameters", "initrd")
COUNTERS = ("power_on_attempts", "power_off_graceful_attempts", "power_off_forceful_attempts")


def empty_boot_artifacts() -> Dict[str, str]:
    return {"kernel": "", "kernel_parameters": "", "initrd": ""}


def empty_actual_state() -> Dict[str, Any]:
    return {"boot_artifacts": empty_boot_artifacts(), "bss_token": ""}


def empty_desired_state() -> Dict[str, Any]:
    return {"configuration": "", "boot_artifacts": empty_boot_artifacts(), "bss_token": ""}


def empty_staged_state() -> Dict[str, Any]:
    return {"configuration": "", "boot_artifacts": empty_boot_artifacts()}


def zero_event_stats() -> Dict[str, int]:
    return dict.fromkeys(COUNTERS, 0)


IGNORED_WORDS = ("spire_join_token=", "bos_session_id=")  # D23; v1 session IDs (v1.md §4.3)


def _words(params: Optional[str]) -> List[str]:
    return [w for w in (params or "").split() if not w.startswith(IGNORED_WORDS)]


def boot_artifacts_match(desired: Optional[Mapping[str, Any]], actual: Optional[Mapping[str, Any]]) -> bool:
    """Desired and actual boot artifacts are the same boot (operators.md §1.1, D23)."""
    if desired is None:
        return actual is None
    if actual is None:
        return False
    if desired is actual:  # one shared artifact set (a booted node's, as the operators read it)
        return True
    desired_params, actual_params = desired.get("kernel_parameters"), actual.get("kernel_parameters")
    return (desired.get("kernel", "") == actual.get("kernel", "")
            and desired.get("initrd", "") == actual.get("initrd", "")
            and (desired_params == actual_params or _words(desired_params) == _words(actual_params)))


def desired_boot_is_off(desired_state: Optional[Mapping[str, Any]]) -> bool:
    """No desired boot artifacts, or no desired kernel (operators.md §1.1)."""
    artifacts = (desired_state or {}).get("boot_artifacts")
    return not artifacts or not artifacts.get("kernel")


def has_artifacts(artifacts: Optional[Mapping[str, Any]]) -> bool:
    """Any non-empty kernel, kernel_parameters or initrd (timestamp ignored)."""
    return bool(artifacts) and any(map(artifacts.get, ARTIFACT_KEYS))  # type: ignore[union-attr]
