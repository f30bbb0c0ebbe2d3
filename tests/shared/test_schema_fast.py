"""The fast validators agree with the reporting checks on every value (schema_types.py, issue 13).

`Schema.validate` trusts the fast validator's result and asks the reporting
checks (`_validate`) only when it refuses a value, so the two must accept
exactly the same values and return the same cleaned copy. hypothesis builds
values from each registered schema: mostly well-formed, with wrong types, nulls,
unknown and read-only properties, boundary lengths and values mixed in.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bos_shared import schema, schema_v1
from bos_shared.schema_types import (Array, Boolean, CountOrPercent, Integer, MapOf, Number, Object, Ref, Schema,
                                     SchemaError, String, _Invalid)

JUNK = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=3),
                 st.just([]), st.just({}), st.just([None]), st.just({"x": 1}))


def _strings(node: String) -> st.SearchStrategy[str]:
    options = [st.text(max_size=4)]
    if node.enum:
        options.append(st.sampled_from(node.enum))
        if node.case_insensitive_enum:
            options.append(st.sampled_from([e.lower() for e in node.enum]))
    if node.pattern:
        options.append(st.from_regex(node.pattern, fullmatch=True).filter(lambda s: len(s) < 300))
    for size in {node.min_length - 1, node.min_length, node.min_length + 1}:
        if 0 <= size < 300:
            options.append(st.just("a" * size))
    if node.max_length is not None and node.max_length < 300:
        options += [st.just("b" * node.max_length), st.just("b" * (node.max_length + 1))]
    return st.one_of(options)


def values(node: Schema, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for `node`: shaped for it about four times in five, else junk."""
    if isinstance(node, Ref):
        return values(node.target, depth)
    shaped: st.SearchStrategy[Any]
    if isinstance(node, String):
        shaped = _strings(node)
    elif isinstance(node, Integer):
        edges = [x for x in (node.minimum, node.maximum) if x is not None]
        shaped = st.one_of(st.integers(-2, 5), st.sampled_from([e + d for e in edges for d in (-1, 0, 1)] or [0]))
    elif isinstance(node, (Number, Boolean)):
        shaped = st.one_of(st.booleans(), st.integers(-2, 2), st.floats(allow_nan=False))
    elif isinstance(node, CountOrPercent):
        shaped = st.one_of(st.integers(-1, 120), st.sampled_from(["5%", "100%", "101%", "x", "0.5%"]))
    elif isinstance(node, Array):
        shaped = st.lists(values(node.items, depth + 1), max_size=3) if depth < 4 else st.just([])
    elif isinstance(node, MapOf):
        shaped = st.dictionaries(st.text(max_size=4), values(node.values, depth + 1), max_size=3) \
            if depth < 4 else st.just({})
    elif isinstance(node, Object):
        props = sorted(node.properties)
        if depth >= 4 or not props:
            shaped = st.just({})
        else:
            shaped = st.dictionaries(st.sampled_from(props + ["unknown"]),
                                     st.deferred(lambda: st.just(None)), max_size=len(props) + 1).flatmap(
                lambda keys: st.fixed_dictionaries({
                    k: values(node.properties[k], depth + 1) if k in node.properties else JUNK for k in keys}))
    else:  # a type this test does not know: junk only
        return JUNK
    return st.one_of(shaped, shaped, shaped, shaped, JUNK)


def strict(value: Any) -> Any:
    """`value` with the types spelled out (True == 1 == 1.0 in Python, not in JSON)."""
    if isinstance(value, dict):
        return ("dict", [(k, strict(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [strict(v) for v in value])
    return (type(value).__name__, value)


def outcome_slow(node: Schema, value: Any) -> Any:
    try:
        return strict(node._validate(value, ""))
    except SchemaError:
        return "invalid"


def outcome_fast(node: Schema, value: Any) -> Any:
    try:
        return strict(node.fast_validator()(value))
    except _Invalid:
        return "invalid"


SCHEMAS = [(name, node) for name, node in schema.registry.items()] + [
    (name, node) for name, node in vars(schema_v1).items() if isinstance(node, Schema)]


@pytest.mark.parametrize("name,node", SCHEMAS, ids=[name for name, _ in SCHEMAS])
def test_fast_validator_agrees_with_the_reporting_checks(name: str, node: Schema) -> None:
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(values(node))
    def agree(value: Any) -> None:
        assert outcome_fast(node, value) == outcome_slow(node, value)

    agree()


def test_a_bulk_write_item_is_cleaned_alike_and_an_error_still_names_its_field() -> None:
    item = {"id": "x1", "enabled": True, "status": {"phase": "", "status": "stable"},  # status.status: read-only
            "desired_state": {"boot_artifacts": {"kernel": "k", "kernel_parameters": "p", "initrd": "i"}}}
    assert schema.ComponentWithId.validate(item) == {
        "id": "x1", "enabled": True, "status": {"phase": ""},
        "desired_state": {"boot_artifacts": {"kernel": "k", "kernel_parameters": "p", "initrd": "i"}}}
    with pytest.raises(SchemaError) as caught:
        schema.ComponentArray.validate([item, dict(item, desired_state={"boot_artifacts": {"kernel": 7}})])
    assert caught.value.path == "[1].desired_state.boot_artifacts.kernel"
