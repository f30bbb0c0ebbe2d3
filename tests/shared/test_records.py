"""The typed records say what the wire schema says: their Literals are its enumerations."""

from __future__ import annotations

from typing import get_args, get_type_hints

import pytest

from bos_shared import records, schema


@pytest.mark.parametrize("literal, enumeration", [
    (records.Phase, schema.PHASES),
    (records.Action, schema.ACTIONS),
    (records.ComponentStatusName, schema.COMPONENT_STATUSES),
    (records.Operation, schema.OPERATIONS),
    (records.SessionStatusName, schema.SESSION_STATUSES),
])
def test_literals_equal_the_schema_enumerations(literal: object, enumeration: tuple) -> None:
    assert set(get_args(literal)) == set(enumeration)


@pytest.mark.parametrize("typed, name", [
    (records.Component, "V2Component"), (records.Session, "V2Session"),
    (records.SessionTemplate, "V2SessionTemplate"), (records.BootSet, "V2BootSet"),
])
def test_typed_records_have_the_schema_fields(typed: type, name: str) -> None:
    fields = set(schema.registry.json_schemas()[name]["properties"])
    assert set(get_type_hints(typed)) == fields
