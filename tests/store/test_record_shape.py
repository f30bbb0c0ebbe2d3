"""record_shape.shape is the three per-record functions it stands in for on the write path (issue 13)."""

from __future__ import annotations

from typing import Any, Dict

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bos_server.store.component_query import index_facets, scored_indexes
from bos_server.store.history import tracked
from bos_server.store.record_shape import NO_SHAPE, shape
from bos_shared.schema import ACTIONS, PHASES

TEXT = st.sampled_from(["", "x", "s3://boot-images/i/kernel", "console=ttyS0 ip=dhcp"])
STAMP = st.sampled_from(["2026-12-01T15:56:11", "2026-12-01T15:56:12", "", "not a time"])


def _maybe(**fields: Any) -> Any:
    """Dicts holding any subset of `fields` (absent, present: the records writers store)."""
    return st.fixed_dictionaries({}, optional=fields)


ARTIFACTS = st.one_of(st.none(), _maybe(kernel=TEXT, kernel_parameters=TEXT, initrd=TEXT, timestamp=STAMP))
RECORDS = _maybe(
    status=_maybe(phase=st.sampled_from(("",) + PHASES), status_override=st.sampled_from(["", "on_hold", "failed"])),
    last_action=_maybe(action=st.sampled_from(("",) + ACTIONS), failed=st.booleans(), last_updated=STAMP),
    desired_state=_maybe(boot_artifacts=ARTIFACTS, configuration=TEXT, last_updated=STAMP),
    actual_state=_maybe(boot_artifacts=ARTIFACTS, bss_token=TEXT, last_updated=STAMP),
    staged_state=_maybe(session=st.sampled_from(["", "s1"]), boot_artifacts=ARTIFACTS),
    error=TEXT, session=st.sampled_from(["", "s1", "s2"]), enabled=st.booleans())


@settings(max_examples=300, deadline=None)
@given(RECORDS)
@example({"status": {"phase": "powering_on"}, "last_action": {"action": "powering_on", "failed": False}})
@example({"status": {"phase": "powering_on"}, "last_action": {"action": "powering_on", "failed": True}})
@example({"status": {"phase": "powering_off"}, "last_action": {"action": "powering_off_forcefully"}})
@example({"status": {"phase": "powering_off"}, "enabled": True,
          "last_action": {"action": "powering_off_gracefully", "last_updated": "2026-12-01T15:56:11"}})
@example({"status": {"phase": "configuring", "status_override": "on_hold"}, "enabled": True, "error": "x"})
@example({"actual_state": {"boot_artifacts": {"kernel": "k"}, "last_updated": "2026-12-01T15:56:11"},
          "staged_state": {"session": "s1"}})
def test_shape_is_the_facets_the_score_indexes_and_the_tracked_fields(record: Dict[str, Any]) -> None:
    assert shape(record) == (index_facets(record), scored_indexes(record), tracked(record))


def test_a_missing_record_has_no_shape() -> None:
    assert shape(None) == NO_SHAPE
    assert NO_SHAPE[1:] == ({}, tracked(None))
