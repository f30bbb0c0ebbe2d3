"""What a v1 session asks of the engine, in order (v1.md §1, §4.2): pure functions, no I/O.

A v1 operation becomes a list of **stages**. Each stage hands some boot sets'
nodes to the v2 engine with one engine operation and covers some v1 phases.
A stage starts only when every node of the previous one has finished
(succeeded or failed), which is how `boot_ordinal` and `shutdown_ordinal` are
honoured (L2); inside a stage every node moves at its own pace (L4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

from bos_shared.schema_v1 import OPERATION_PHASES

BOOT, REBOOT, SHUTDOWN, CONFIGURE = "boot", "reboot", "shutdown", "configure"


@dataclass(frozen=True)
class Stage:
    engine_op: str  # boot, reboot, shutdown (v2 operations) or configure (no power action)
    phases: Tuple[str, ...]  # the v1 phases this stage carries out, in order
    boot_sets: Tuple[str, ...]

    def to_json(self) -> Dict[str, Any]:
        return {"engine_op": self.engine_op, "phases": list(self.phases), "boot_sets": list(self.boot_sets)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Stage":
        return cls(data["engine_op"], tuple(data["phases"]), tuple(data["boot_sets"]))


def _by_ordinal(boot_sets: Mapping[str, Mapping[str, Any]], field: str) -> List[Tuple[str, ...]]:
    """Boot-set names grouped by ordinal, lowest first (absent = 0; template order within a group)."""
    groups: Dict[int, List[str]] = {}
    for name, boot_set in boot_sets.items():
        groups.setdefault(int(boot_set.get(field) or 0), []).append(name)
    return [tuple(groups[k]) for k in sorted(groups)]


def plan(operation: str, boot_sets: Mapping[str, Mapping[str, Any]]) -> List[Stage]:
    """The stages of a v1 `operation` (lower case) over a template's boot sets."""
    if operation == CONFIGURE:
        return [Stage(CONFIGURE, (CONFIGURE,), tuple(boot_sets))]
    if operation == SHUTDOWN:
        return [Stage(SHUTDOWN, (SHUTDOWN,), group) for group in _by_ordinal(boot_sets, "shutdown_ordinal")]
    if operation == BOOT:
        return [Stage(BOOT, (BOOT, CONFIGURE), group) for group in _by_ordinal(boot_sets, "boot_ordinal")]
    shutdowns = _by_ordinal(boot_sets, "shutdown_ordinal")
    boots = _by_ordinal(boot_sets, "boot_ordinal")
    if len(shutdowns) == 1:  # one shutdown group: each boot group reboots at its own pace
        return [Stage(REBOOT, OPERATION_PHASES[REBOOT], group) for group in boots]
    return ([Stage(SHUTDOWN, (SHUTDOWN,), group) for group in shutdowns]
            + [Stage(BOOT, (BOOT, CONFIGURE), group) for group in boots])
