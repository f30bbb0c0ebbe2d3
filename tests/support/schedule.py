"""How `make test` spreads the suite over pytest-xdist workers (`--dist loadgroup`).

Most of the suite's time is waiting (simulated nodes booting, servers starting), not CPU,
so several workers share two cores well. Two rules keep that fast and safe:

- **A module is one unit of work** (an `xdist_group` named after it), so a module-scoped
  stack starts once, on one worker, and its tests run in file order there. A module whose
  tests share nothing (`pytestmark = pytest.mark.independent`, e.g. the mutation runs,
  each a child pytest of its own) is split: each of its tests is a unit.
- **Longest units first** (longest-processing-time scheduling): units are queued by the
  time their module took in a measured run (`tests/durations.json`; an independent test
  counts its share of its module's), so the long end-to-end modules start at once and the
  short ones fill the gaps at the end. A module the file does not know yet is queued with
  the long ones (`UNKNOWN_SECONDS`), so a new slow module cannot end up last.
  `python -m tests.support.schedule JUNIT.xml` rewrites the file from a run's `--junitxml`.

Nothing here changes what a test does; without xdist only the order of modules changes.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List

import pytest

DURATIONS = Path(__file__).resolve().parents[1] / "durations.json"
UNKNOWN_SECONDS = 60.0  # a module with no measurement yet is queued among the long ones


def module_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def unit_of(item: pytest.Item) -> str:
    """The unit of work an item belongs to: its module, or itself in an `independent` module."""
    return item.nodeid if item.get_closest_marker("independent") else module_of(item)


def known_durations() -> Dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(DURATIONS.read_text()).items()}
    except FileNotFoundError:
        return {}


def group_and_order(items: List[pytest.Item]) -> None:
    """Mark each item with its unit's group and queue units longest first. The sort is
    stable and depends only on the collection, so every worker sees the same order, and a
    module's tests keep their file order."""
    seconds = known_durations()
    tests_in = Counter(module_of(item) for item in items)
    position: Dict[str, int] = {}
    weight: Dict[str, float] = {}
    for index, item in enumerate(items):
        unit, module = unit_of(item), module_of(item)
        position.setdefault(unit, index)
        share = 1 if unit == module else tests_in[module]
        weight[unit] = seconds.get(module, UNKNOWN_SECONDS) / share
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(unit))
    items.sort(key=lambda item: (-weight[unit_of(item)], position[unit_of(item)]))


def durations_from_junit(report: Path) -> Dict[str, float]:
    """Seconds per module (setup + call + teardown of its tests) from a `--junitxml` report."""
    totals: Dict[str, float] = defaultdict(float)
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        totals[module] += float(case.get("time") or 0)
    return {module: round(secs, 1) for module, secs in sorted(totals.items())}


if __name__ == "__main__":
    DURATIONS.write_text(json.dumps(durations_from_junit(Path(sys.argv[1])), indent=1) + "\n")
