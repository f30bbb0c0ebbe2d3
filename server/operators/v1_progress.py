"""Where a node stands in a v1 session, read off its v2 component record (v1.md §1, §2.4, §4.3).

Pure functions of (stage, component record, session ID): the engine's phase,
enablement, status override and error say how far the node got, and that
places it in exactly one category of each v1 phase of the stage (L7, V9).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from bos_shared.status import component_status

from .framework import RETRY_LIMIT_ERROR
from .v1_plan import CONFIGURE, Stage

# How far a node got: 1 = it has been off (shutdown done), 2 = booted, 3 = configured.
PHASE_DONE_AT = {"shutdown": 1, "boot": 2, "configure": 3}
LEVEL_OF_PHASE = {"": 0, "powering_off": 0, "powering_on": 1, "configuring": 2}
DONE = 99
TAKEN_OVER = "Node was taken over by session {}"
GONE = "Node is no longer a BOS component"
NOT_CONFIGURED = "CFS is not used by this boot set"


@dataclass
class Progress:
    """The node's category in each phase of its stage; `final` once the engine is done with it."""

    categories: Dict[str, str] = field(default_factory=dict)
    errors: Dict[str, str] = field(default_factory=dict)  # phase -> message
    final: bool = False
    failed: bool = False

    def signature(self) -> str:
        return ",".join(f"{p}={c}" for p, c in sorted(self.categories.items()))


def _level(component: Mapping[str, Any]) -> int:
    if component.get("enabled") is not True and component_status(component) not in ("failed", "on_hold"):
        return DONE
    return LEVEL_OF_PHASE.get((component.get("status") or {}).get("phase") or "", 0)


def progress(stage: Stage, component: Optional[Mapping[str, Any]], sid: str, configured: bool,
             previous: Optional[Mapping[str, str]] = None) -> Progress:
    """`configured`: the boot set uses CFS; if not, its `configure` phase ends `excluded` (V9).
    `previous`: the categories last recorded for the node (kept when the node is taken over)."""
    out = Progress()
    if component is None or component.get("session") != sid:
        reason = GONE if component is None else TAKEN_OVER.format(component.get("session") or "(none)")
        return _abandoned(stage, out, reason, previous or {})
    status = component_status(component)
    failed = status == "failed" or (status == "on_hold" and component.get("enabled") is not True)
    level = _level(component)
    if stage.engine_op == CONFIGURE and level < DONE:
        level = 2  # nothing to power: the node counts as booted
    blocked = False  # a phase failed or is still running: later phases wait or are excluded
    for phase in stage.phases:
        if phase == CONFIGURE and not configured:
            out.categories[phase] = "excluded" if (level >= 2 or failed) else "not_started"
            continue
        if blocked:
            out.categories[phase] = "excluded" if failed else "not_started"
        elif level >= PHASE_DONE_AT[phase]:
            out.categories[phase] = "succeeded"
        elif failed:
            out.categories[phase] = "failed"
            out.errors[phase] = component.get("error") or RETRY_LIMIT_ERROR
            blocked = True
        else:
            out.categories[phase] = "in_progress"
            blocked = True
    out.failed = failed
    out.final = failed or level == DONE
    return out


def _abandoned(stage: Stage, out: Progress, reason: str, previous: Mapping[str, str]) -> Progress:
    """The engine no longer works on the node for this session: unfinished phases are excluded,
    and the first of them carries the reason in its `errors` (the overlap is reported, L1)."""
    for phase in stage.phases:
        done = previous.get(phase) == "succeeded"
        out.categories[phase] = "succeeded" if done else "excluded"
        if not done and not out.errors:
            out.errors[phase] = reason
    out.final = True
    return out
