"""Two adjustments to schemathesis's pytest integration (test_schemathesis.py).

**One node ID per operation.**
schemathesis 4.32 names its items `test[GET /v2]`, but on pytest ≥ 9.2 (whose node IDs are
built from `originalname` and a callspec, which it does not pass) all of them share the ID
`test`. A serial run does not care; pytest-xdist schedules by ID and ran one operation of
the 32. Each item gets the ID of its name here.

**The time box** ends an operation's run with TimeBoxReached, raised inside hypothesis's
loop; here that ends the test as passed. Hypothesis raises it as is, or, when the box
struck on a case it had run before, inside a FlakyFailure: a group of nothing but
TimeBoxReached passes too. Any other exception is a failure as usual.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Generator, List

import pytest

from .test_schemathesis import TimeBoxReached


@pytest.hookimpl(tryfirst=True)  # before the root conftest orders the items by their IDs
def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    count = Counter(item.nodeid for item in items)
    for item in items:
        if count[item.nodeid] > 1 and item.parent is not None and not item.nodeid.endswith("::" + item.name):
            if hasattr(item, "_id"):  # pytest ≥ 9.2: a structured ID
                item._id = item.parent.id.child(item.name)
            else:
                item._nodeid = f"{item.parent.nodeid}::{item.name}"


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    try:
        return (yield)
    except TimeBoxReached:
        return True
    except BaseExceptionGroup as group:
        _, rest = group.split(TimeBoxReached)
        if rest is None:
            return True
        raise
