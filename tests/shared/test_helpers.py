"""Pure helpers: ages, timestamps, limits, xnames, options and the schema language."""

from __future__ import annotations

import pytest

from bos_shared import schema
from bos_shared.ages import AgeError, age_is_zero, is_ttl, parse_age, parse_duration
from bos_shared.components import boot_artifacts_match
from bos_shared.limits import evaluate_limit, limit_has_nids, node_list_has_nids, parse_limit
from bos_shared.options import DEFAULTS, effective
from bos_shared.schema_types import SchemaError
from bos_shared.times import now_str, parse, render
from bos_shared.xnames import canonical


@pytest.mark.parametrize("text,seconds", [("0", 0), ("0d", 0), ("30m", 1800), ("6h", 21600), ("7d", 604800), ("2W", 1209600)])
def test_valid_ages(text, seconds) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["1.5h", "10s", "07d", "1d2h", "", "d", "123456789m"])
def test_invalid_ages(text) -> None:
    with pytest.raises(AgeError):
        parse_age(text)


def test_ttl_and_duration_and_zero_age() -> None:
    assert is_ttl("4h") and is_ttl("1W") and not is_ttl("30m") and not is_ttl("0h")
    assert parse_duration("90m") == 5400 and parse_duration("4") is None and parse_duration("1.5h") is None
    assert age_is_zero("0") and age_is_zero("0w") and not age_is_zero("10m")


def test_d9_timestamps_are_utc_wire_form_and_rfc3339_is_read() -> None:
    assert len(now_str()) == 19 and "T" in now_str()
    assert render(parse("2025-01-13T15:04:05")) == "2025-01-13T15:04:05"
    assert render(parse("2025-01-13T16:04:05.123+01:00")) == "2025-01-13T15:04:05"
    assert render(parse("2025-01-13T15:04:05Z")) == "2025-01-13T15:04:05"
    assert parse("13/01/2025") is None and parse("") is None


def test_d21_limit_parsing_ignores_empty_and_operator_only_items() -> None:
    assert parse_limit("x1,,x2, ,&,!,") == [("|", "x1"), ("|", "x2")]
    assert parse_limit("compute,!x1,&blue") == [("|", "compute"), ("!", "x1"), ("&", "blue")]


def test_limit_algebra_is_left_to_right() -> None:
    groups = {"compute": {"a", "b", "c"}, "blue": {"b", "c", "z"}}
    nodes = {"a", "b", "c"}
    resolve = groups.get
    assert evaluate_limit("compute,!a", nodes, resolve) == {"b", "c"}
    assert evaluate_limit("!a,compute", nodes, resolve) == {"a", "b", "c"}
    assert evaluate_limit("&a", nodes, resolve) == set()
    assert evaluate_limit("all,&blue", nodes, resolve) == {"b", "c"}
    assert evaluate_limit("*", nodes, resolve) == nodes
    assert evaluate_limit("z,a", nodes, resolve) == {"a"}  # literal outside the candidates is dropped
    assert evaluate_limit("", nodes, resolve) == nodes


def test_nid_detection() -> None:
    assert limit_has_nids("x1,nid000001") and limit_has_nids("&!nid1") and not limit_has_nids("x1,NID1")
    assert node_list_has_nids(["x1", "nid000002"]) and not node_list_has_nids(["x1"])


def test_canonical_xnames() -> None:
    assert canonical("X03000c0s019b1n0") == "x3000c0s19b1n0"
    assert canonical("x3000c0s19b1n0") == "x3000c0s19b1n0"


def test_d23_kernel_parameters_compare_without_spire_join_tokens() -> None:
    desired = {"kernel": "k", "initrd": "i", "kernel_parameters": "a spire_join_token=${SPIRE_JOIN_TOKEN}  b"}
    actual = {"kernel": "k", "initrd": "i", "kernel_parameters": "a b spire_join_token=abc"}
    assert boot_artifacts_match(desired, actual)
    assert not boot_artifacts_match(desired, dict(actual, kernel_parameters="b a"))
    assert boot_artifacts_match(None, None) and not boot_artifacts_match({}, None)
    assert boot_artifacts_match({"kernel": ""}, {})


def test_options_effective_drops_invalid_stored_values() -> None:
    assert effective({"component_actual_state_ttl": "30m", "polling_frequency": 2})["component_actual_state_ttl"] == "4h"
    assert effective({"polling_frequency": 2})["polling_frequency"] == 2
    assert effective({}) == DEFAULTS and len(DEFAULTS) == 20


def test_schema_strips_read_only_and_rejects_unknown() -> None:
    cleaned = schema.Component.validate({"status": {"status": "x", "phase": ""}, "actual_state": {"last_updated": "t"}})
    assert cleaned == {"status": {"phase": ""}, "actual_state": {}}
    with pytest.raises(SchemaError) as err:
        schema.Component.validate({"desired_state": {"bogus": 1}})
    assert err.value.path == "desired_state.bogus"


def test_schema_types_are_strict() -> None:
    for bad in ({"retry_policy": True}, {"retry_policy": 1.0}, {"enabled": 1}, {"error": None}):
        with pytest.raises(SchemaError):
            schema.Component.validate(bad)
    assert schema.SessionCreate.validate({"operation": "boot", "template_name": "t", "limit": None})["limit"] is None


@pytest.mark.parametrize("name,ok", [("a", True), ("a.b-c_d", True), ("-a", False), ("a-", False),
                                     ("a" * 127, True), ("a" * 128, False), ("a b", False)])
def test_name_pattern(name, ok) -> None:
    try:
        schema.Name().validate(name)
        assert ok
    except SchemaError:
        assert not ok


def test_kernel_parameters_compare_without_v1_session_ids() -> None:
    """v1.md §4.3: a v1 session's `bos_session_id=` word never makes a running node's boot differ."""
    desired = {"kernel": "k", "initrd": "i", "kernel_parameters": "a b bos_session_id=s2"}
    assert boot_artifacts_match(desired, dict(desired, kernel_parameters="a bos_session_id=s1 b"))
    assert not boot_artifacts_match(desired, dict(desired, kernel_parameters="a bos_session_id=s1"))


def test_remembered_parses_answer_like_fresh_ones() -> None:
    """parse() and epoch() remember strings (times._parse, times._epoch): the same string always
    gives the same instant, also after other strings were parsed, and non-strings are refused."""
    from bos_shared.times import epoch
    stamps = ["2025-01-13T15:04:05", "2025-01-13T16:04:05.123+01:00", "2025-01-13T15:04:05Z", "bad", " 2025-01-13T15:04:05 "]
    first = [(parse(s), epoch(s)) for s in stamps]
    for n in range(100):
        parse(f"2025-01-13T15:{n % 60:02d}:05")
    assert [(parse(s), epoch(s)) for s in stamps] == first
    assert first[0][1] == first[2][1] == 1736780645.0 and first[1][1] == 1736780645.123 and first[3] == (None, None)
    assert parse(None) is None and epoch(None) is None and epoch(12) is None  # type: ignore[arg-type]


def test_now_is_rendered_once_per_second_and_follows_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """now_str() keeps the text of the current second (times._NOW): within a second it is the same
    string object, and the next second (or a clock stepped back) gets its own text."""
    from bos_shared import times
    clock = [1736780645.2]
    monkeypatch.setattr(times, "time", type("Clock", (), {"time": staticmethod(lambda: clock[0])}))
    first = now_str()
    clock[0] = 1736780645.9
    assert first == "2025-01-13T15:04:05" and now_str() is first
    clock[0] = 1736780646.0
    assert now_str() == "2025-01-13T15:04:06"
    clock[0] = 1736780600.5
    assert now_str() == "2025-01-13T15:03:20"
