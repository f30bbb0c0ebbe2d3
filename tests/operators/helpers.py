"""Builders for component records and fixed clocks shared by the operator unit tests."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from bos_shared.options import DEFAULTS
from bos_shared.times import render

NOW = datetime(2025, 1, 13, 15, 0, 0, tzinfo=timezone.utc).timestamp()
OPTIONS: Dict[str, Any] = dict(DEFAULTS)

KERNEL = "s3://boot-images/img-a/kernel"
INITRD = "s3://boot-images/img-a/initrd"
PARAMS = "console=ttyS0 spire_join_token=${SPIRE_JOIN_TOKEN} bos_update_frequency=4h"
ARTIFACTS = {"kernel": KERNEL, "kernel_parameters": PARAMS, "initrd": INITRD}
OTHER = {"kernel": "s3://boot-images/img-b/kernel", "kernel_parameters": "quiet", "initrd": "s3://boot-images/img-b/initrd"}
EMPTY = {"kernel": "", "kernel_parameters": "", "initrd": ""}


def ago(seconds: float) -> str:
    return render(datetime.fromtimestamp(NOW - seconds, tz=timezone.utc))


def component(cid: str = "x1000c0s0b0n0", *, phase: str = "", override: str = "", action: str = "session_setup",
              failed: bool = False, age: Optional[float] = 5, desired: Optional[dict] = ARTIFACTS,
              actual: Optional[dict] = EMPTY, configuration: str = "", error: Optional[str] = "",
              enabled: bool = True, stats: Optional[dict] = None, session: str = "s1",
              retry_policy: Optional[int] = None) -> Dict[str, Any]:
    """A component record as GET returns it (computed status added by the caller when needed)."""
    last_action: Dict[str, Any] = {"action": action, "failed": failed}
    if age is not None:
        last_action["last_updated"] = ago(age)
    record: Dict[str, Any] = {
        "id": cid,
        "desired_state": {"boot_artifacts": copy.deepcopy(desired), "configuration": configuration}
        if desired is not None else {"configuration": configuration},
        "actual_state": {"boot_artifacts": copy.deepcopy(actual), "bss_token": ""} if actual is not None else {},
        "last_action": last_action,
        "event_stats": dict(stats or {"power_on_attempts": 0, "power_off_graceful_attempts": 0,
                                      "power_off_forceful_attempts": 0}),
        "status": {"phase": phase, "status_override": override},
        "enabled": enabled,
        "session": session,
    }
    if error is not None:
        record["error"] = error
    if retry_policy is not None:
        record["retry_policy"] = retry_policy
    return record


def cfs(desired_config: str = "", status: str = "configured") -> Dict[str, Any]:
    return {"id": "x1000c0s0b0n0", "desired_config": desired_config, "configuration_status": status,
            "enabled": True}
