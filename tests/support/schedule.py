"""How `make test` spreads the suite over pytest-xdist workers (`-n 4 --dist loadfile`).

Most of the suite's time is waiting (simulated nodes booting, servers starting), not CPU,
so several workers share two cores well. Two rules keep that fast and safe:

- **A module is one unit of work**: a module-scoped stack starts once, on one worker, and
  the module's tests run there in file order. The tests of an `INDEPENDENT` module are
  units of their own instead: the mutation runs (each a child pytest with its own
  servers) and the schemathesis operations (a worker that runs several keeps its server,
  as its next test is of the same module). `ModuleScheduling` is xdist's `loadfile`
  scheduler with that exception.
- **Longest units first** (longest-processing-time scheduling): `order()` queues modules by
  the time they took in a measured run (`tests/durations.json`; an independent module's
  tests each count their share), so the long end-to-end modules start at once and the
  short ones fill the gaps at the end. A module the file does not know yet is queued with
  the long ones (`UNKNOWN_SECONDS`), so a new slow module cannot end up last. xdist keeps
  this order with `--no-loadscope-reorder`. `python -m tests.support.schedule JUNIT.xml`
  rewrites the file from a run's `--junitxml` report.

Nothing here changes what a test does; without xdist only the order of the modules changes.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List

import pytest
from xdist.scheduler import LoadFileScheduling

DURATIONS = Path(__file__).resolve().parents[1] / "durations.json"
UNKNOWN_SECONDS = 60.0  # a module with no measurement yet is queued among the long ones
INDEPENDENT = frozenset({"tests/mutation/test_mutation.py", "tests/contract/test_schemathesis.py"})


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its module, or itself in an independent module."""
    module = module_of(nodeid)
    return nodeid if module in INDEPENDENT else module


class ModuleScheduling(LoadFileScheduling):
    """xdist's `loadfile`, except that each test of an `INDEPENDENT` module is a unit."""

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)


def known_durations() -> Dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(DURATIONS.read_text()).items()}
    except FileNotFoundError:
        return {}


def check_unique(items: List[pytest.Item]) -> None:
    """xdist schedules by node ID: a second item with the same ID would silently not run."""
    twice = sorted(nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1)
    if twice:
        raise pytest.UsageError(f"{len(twice)} test IDs are not unique (pytest-xdist would run only one of each): "
                                + ", ".join(twice[:5]))


def order(items: List[pytest.Item]) -> None:
    """Queue units longest first. The sort is stable and depends only on the collection, so
    every worker sees the same order, and a module's tests keep their file order."""
    seconds = known_durations()
    tests_in = Counter(module_of(item.nodeid) for item in items)
    position: Dict[str, int] = {}
    weight: Dict[str, float] = {}
    for index, item in enumerate(items):
        unit, module = unit_of(item.nodeid), module_of(item.nodeid)
        position.setdefault(unit, index)
        weight[unit] = seconds.get(module, UNKNOWN_SECONDS) / (1 if unit == module else tests_in[module])
    items.sort(key=lambda item: (-weight[unit_of(item.nodeid)], position[unit_of(item.nodeid)]))


def durations_from_junit(report: Path) -> Dict[str, float]:
    """Seconds per module (setup + call + teardown of its tests) from a `--junitxml` report."""
    totals: Dict[str, float] = defaultdict(float)
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        totals[module] += float(case.get("time") or 0)
    return {module: round(secs, 1) for module, secs in sorted(totals.items())}


if __name__ == "__main__":
    DURATIONS.write_text(json.dumps(durations_from_junit(Path(sys.argv[1])), indent=1) + "\n")
