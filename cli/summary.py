"""Counting components: what an admin wants first when a list has thousands of rows.

Counts follow the server's own definitions (api.md §2.3, §2.9): the computed
`status.status`, `status.phase` with absent meaning none, and phase counts
only for enabled components that are not on hold.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Mapping, Sequence, Tuple

from bos_shared.schema import COMPONENT_STATUSES, PHASES
from bos_shared.status import component_status

ACTIVE_PHASES = tuple(p for p in PHASES if p)
NO_PHASE = "none"


def status_of(record: Mapping[str, Any]) -> str:
    """The computed status as the API reported it (computed locally if a server omitted it)."""
    status = record.get("status") or {}
    return status.get("status") or component_status(record)


def phase_of(record: Mapping[str, Any]) -> str:
    return (record.get("status") or {}).get("phase") or ""


def ordered(counts: Mapping[str, int], order: Sequence[str]) -> List[Tuple[str, int]]:
    """Known values in schema order, then any others (free-form overrides) by name."""
    known = [(name, counts[name]) for name in order if counts.get(name)]
    extra = sorted((name, n) for name, n in counts.items() if name not in order and n)
    return known + extra


@dataclass
class ComponentCounts:
    """Totals of one set of components."""

    total: int = 0
    enabled: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_phase: Counter = field(default_factory=Counter)
    active_phases: Counter = field(default_factory=Counter)  # enabled, not on hold (§2.9)
    on_hold: int = 0

    @property
    def succeeded(self) -> int:
        return self.by_status.get("stable", 0)

    @property
    def failed(self) -> int:
        return self.by_status.get("failed", 0)

    def status_items(self) -> List[Tuple[str, int]]:
        return ordered(self.by_status, COMPONENT_STATUSES)

    def phase_items(self) -> List[Tuple[str, int]]:
        return ordered(self.by_phase, ACTIVE_PHASES + (NO_PHASE,))


def count(records: Iterable[Mapping[str, Any]]) -> ComponentCounts:
    counts = ComponentCounts()
    for record in records:
        status = status_of(record)
        phase = phase_of(record)
        counts.total += 1
        counts.by_status[status] += 1
        counts.by_phase[phase or NO_PHASE] += 1
        if record.get("enabled") is not True:
            continue
        counts.enabled += 1
        if (record.get("status") or {}).get("status_override") == "on_hold":
            counts.on_hold += 1
        elif phase:
            counts.active_phases[phase] += 1
    return counts


def inline(items: Sequence[Tuple[str, int]]) -> str:
    """`stable 40, failed 2` (or `-` when empty)."""
    return ", ".join(f"{name} {n}" for name, n in items) or "-"


def summary_text(counts: ComponentCounts) -> str:
    """The header of a component listing: totals, then counts by status and by phase."""
    lines = [f"Components: {counts.total} (enabled {counts.enabled}, disabled {counts.total - counts.enabled})"]
    if counts.total:
        lines.append(f"By status:  {inline(counts.status_items())}")
        lines.append(f"By phase:   {inline(counts.phase_items())}")
    return "\n".join(lines)


