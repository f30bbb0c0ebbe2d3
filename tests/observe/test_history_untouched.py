"""history.entry()'s shortcut for writes that change no tracked field (the reporter's
steady-state report) never hides a change: whenever it says "untouched", the full
comparison of tracked() agrees."""

from __future__ import annotations

from typing import Any, Dict

from hypothesis import given, settings, strategies as st

from bos_server.store.history import _untouched, entry, tracked

_text = st.sampled_from(["", "a", "b"])
_artifacts = st.fixed_dictionaries({}, optional={"kernel": _text, "kernel_parameters": _text, "initrd": _text})
_state = st.fixed_dictionaries({}, optional={"boot_artifacts": _artifacts, "configuration": _text,
                                             "bss_token": _text, "last_updated": _text})
_record = st.fixed_dictionaries({"id": st.just("x1")}, optional={
    "status": st.fixed_dictionaries({}, optional={"phase": st.sampled_from(["", "powering_on", "configuring"]),
                                                  "status_override": _text, "last_updated": _text}),
    "last_action": st.fixed_dictionaries({}, optional={"action": st.sampled_from(["", "powering_on"]),
                                                       "failed": st.booleans(), "last_updated": _text}),
    "error": _text, "session": _text, "enabled": st.booleans(), "desired_state": _state, "actual_state": _state,
    "last_updated": _text})


@settings(max_examples=400, deadline=None)
@given(_record, _record)
def test_untouched_only_when_tracked_fields_are_equal(old: Dict[str, Any], new: Dict[str, Any]) -> None:
    if _untouched(old, new):
        assert tracked(old) == tracked(new)
        assert entry(old, new) is None


def test_a_steady_state_report_is_untouched_and_a_new_boot_is_not() -> None:
    old = {"id": "x1", "enabled": True, "status": {"phase": ""},
           "actual_state": {"boot_artifacts": {"kernel": "k1"}, "bss_token": "t1", "last_updated": "10:00"}}
    same = dict(old, actual_state=dict(old["actual_state"], last_updated="10:01"))
    booted = dict(old, actual_state={"boot_artifacts": {"kernel": "k2"}, "bss_token": "t2", "last_updated": "10:02"})
    assert _untouched(old, same) and entry(old, same) is None
    assert not _untouched(old, booted) and entry(old, booted) is not None
