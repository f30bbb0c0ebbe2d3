"""What a compare-and-set write needs to know about a record, read in one pass (issue 13).

A write looks at each record before and after the change: its index facets
(component_query.index_facets: which indexes it belongs to), its score indexes
(component_query.scored_indexes) and its tracked fields (history.tracked: whether
the change is a history entry). Computed one by one, the three read the same dozen
fields again and compute the status twice; on a bulk write of 2,800 records that
was a fifth of the planning. `shape` reads each field once and takes the computed
status from the tracked fields, which it is a function of (api.md §2.3).
tests/store/test_record_shape.py checks that it equals the three, whatever the record.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Mapping, Optional, Tuple

from bos_shared.status import component_status

from . import keys
from .component_query import POWER_OFF_CALLED, Facets, stamp_score

Record = Mapping[str, Any]
Shape = Tuple[Facets, Dict[str, float], Tuple[Any, ...]]  # (index facets, score indexes, tracked fields)
NO_SHAPE: Shape = (None, {}, ())  # type: ignore[assignment]  # a record that does not exist
_EMPTY: Dict[str, Any] = {}
_NO_BOOT = ("", "", "")


@functools.lru_cache(maxsize=1024)
def computed_status(override: str, phase: str, action: str, failed: bool) -> str:
    """component_status() of a record with these fields (the rules stay in one place)."""
    return component_status({"status": {"status_override": override, "phase": phase},
                             "last_action": {"action": action, "failed": failed}})


def _boot(state: Any) -> Tuple[str, str, str]:
    artifacts = state.get("boot_artifacts") if isinstance(state, dict) else None
    if not isinstance(artifacts, dict):
        return _NO_BOOT
    return (artifacts.get("kernel") or "", artifacts.get("kernel_parameters") or "", artifacts.get("initrd") or "")


def shape(record: Optional[Record]) -> Shape:
    """(index_facets(record), scored_indexes(record), tracked(record)); NO_SHAPE for None."""
    if record is None:
        return NO_SHAPE
    status = record.get("status") or _EMPTY
    action = record.get("last_action") or _EMPTY
    desired, actual = record.get("desired_state"), record.get("actual_state")
    phase, override = status.get("phase") or "", status.get("status_override") or ""
    act, failed = action.get("action") or "", action.get("failed") is True
    error, session, enabled = record.get("error") or "", record.get("session") or "", record.get("enabled") is True
    actual_boot = _boot(actual)
    tracked = (phase, override, act, failed, error, session, enabled, _boot(desired),
               (desired.get("configuration") or "") if isinstance(desired, dict) else "", actual_boot)
    staged = record.get("staged_state") or _EMPTY
    facets = (computed_status(override, phase, act, failed), enabled, session, staged.get("session") or "", phase,
              bool(error))
    scored: Dict[str, float] = {}
    if actual_boot is not _NO_BOOT and any(actual_boot):
        scored[keys.COMPONENT_ACTUAL_STAMP] = stamp_score(actual.get("last_updated"))  # type: ignore[union-attr]
    if enabled and facets[0] in POWER_OFF_CALLED:
        scored[keys.COMPONENT_POWER_OFF_STAMP] = stamp_score(action.get("last_updated"))
    return facets, scored, tracked
