"""What a session will do, per boot set (operators.md §6.2 step 2): one function for both
session setup and the dry run (`POST /v2/sessions?dry_run=true`), so a plan shown to an
admin is, by construction, what setup then writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Set

from ..clients.s3 import S3Client
from .framework import one_line
from .selection import SetupError, Sources, select_nodes
from .target import Target, target_for

NO_NODES = "No nodes were found to act upon."
LATER_BOOT_SET = "also in boot set '{}', which comes later and wins"


@dataclass
class BootSetPlan:
    """The nodes one boot set acts on and the target they get (None when it selects none)."""

    name: str
    nodes: Set[str]
    target: Any = None  # Target


@dataclass
class Plan:
    boot_sets: List[BootSetPlan] = field(default_factory=list)
    excluded: List[Dict[str, str]] = field(default_factory=list)  # {"id", "boot_set", "reason"}
    warnings: List[str] = field(default_factory=list)

    def by_node(self) -> Dict[str, Target]:
        """Each node's target; a node's last boot set wins (§6.2)."""
        return {node: entry.target for entry in self.boot_sets for node in entry.nodes}


async def plan_session(session: Mapping[str, Any], template: Mapping[str, Any], sources: Sources,
                       s3: S3Client, actual_state_ttl: str, log: logging.Logger,
                       explain: bool = False) -> Plan:
    """Select the nodes and compute the target of every boot set, in template order.

    `explain` records every left-out node with its reason. Raises SetupError
    (the session's error) for any failure; an empty plan is the caller's NO_NODES.
    """
    plan = Plan()
    operation = session.get("operation") or ""
    for name, boot_set in template["boot_sets"].items():
        excluded: Dict[str, str] = {}
        try:
            warnings: List[str] = []
            nodes = await select_nodes(boot_set, session, sources, warnings, excluded if explain else None)
            for warning in warnings:
                log.warning("Session %s, boot set %s: %s", session.get("name"), name, warning)
            plan.warnings += [f"Boot set '{name}': {w}" for w in warnings]
            target = await target_for(template, name, boot_set, operation, s3, actual_state_ttl) if nodes else None
        except SetupError:
            raise
        except Exception as exc:  # HSM, TAPMS, S3 failures complete the session (§6.9)
            raise SetupError(f"Boot set '{name}': {one_line(exc)}") from exc
        plan.boot_sets.append(BootSetPlan(name, nodes, target))
        plan.excluded += [{"id": node, "boot_set": name, "reason": why} for node, why in sorted(excluded.items())]
    _last_boot_set_wins(plan, explain)
    return plan


def _last_boot_set_wins(plan: Plan, explain: bool) -> None:
    owner: Dict[str, str] = {}
    for entry in plan.boot_sets:
        for node in entry.nodes:
            owner[node] = entry.name
    for entry in plan.boot_sets:
        lost = {node for node in entry.nodes if owner[node] != entry.name}
        if explain:
            plan.excluded += [{"id": node, "boot_set": entry.name, "reason": LATER_BOOT_SET.format(owner[node])}
                              for node in sorted(lost)]
        entry.nodes -= lost
