"""The msgspec decoders accept exactly what the reporting path accepts, cleaned alike (fast_bodies.py, issue 13).

A body the fast decoder accepts is never validated again, and one it refuses goes
to the reporting path: so for every JSON text, whatever the fast decoder accepts
the reporting path accepts too, cleaned to the same value (types spelled out:
True == 1 in Python, not in JSON; keys in any order). It may refuse more (a
duplicate key it checks twice): that body only takes the slower path. The reporting path here is the server's:
`params.parse_json` (orjson, else the standard library) then `Schema.validate`.
hypothesis builds values from each registered schema with the strategy of the
fast validators' agreement test (mostly well-formed, wrong types, nulls, unknown
and read-only properties, boundary lengths mixed in), encoded as JSON text.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bos_server.api.errors import BadRequest
from bos_server.api.fast_bodies import Again, _expanded, fast_decoder, fast_runs_decoder
from bos_server.api.params import parse_json
from bos_shared import schema
from bos_shared.schema_types import Schema, SchemaError
from tests.shared.test_schema_fast import strict, values

def unordered(value: Any) -> Any:
    """strict() with each object's keys sorted: an accepted object's keys come in the schema's order."""
    if isinstance(value, tuple) and value[0] == "dict":
        return ("dict", sorted((k, unordered(v)) for k, v in value[1]))
    if isinstance(value, tuple) and value[0] == "list":
        return ("list", [unordered(v) for v in value[1]])
    return value

FAST = [(name, node) for name, node in schema.registry.items() if fast_decoder(node) is not None]


def reporting(node: Schema, raw: bytes) -> Any:
    try:
        return unordered(strict(node.validate(parse_json(raw))))
    except (SchemaError, BadRequest):
        return "invalid"


def fast(node: Schema, raw: bytes) -> Any:
    decode = fast_decoder(node)
    assert decode is not None
    found = decode(raw)
    return "invalid" if found is None else unordered(strict(found))


def served(node: Schema, raw: bytes) -> Any:
    """What the server makes of `raw`: the fast decoder's value, else the reporting path's."""
    found = fast(node, raw)
    return reporting(node, raw) if found == "invalid" else found


def test_the_bulk_write_bodies_have_a_fast_decoder() -> None:
    assert {"V2ComponentArray", "V2ComponentWithId"} <= {name for name, _ in FAST}


def test_a_node_report_body_has_a_fast_decoder() -> None:
    """The single component body (a node's report) has one too, its least property count checked on the value."""
    assert "V2Component" in {name for name, _ in FAST}
    report = b'{"id":"x1","actual_state":{"bss_token":"t1"}}'
    assert fast(schema.Component, report) == reporting(schema.Component, report) != "invalid"


@pytest.mark.parametrize("raw", [
    b"{}", b" { } ", b'{"status": {"status": "stable"}}', b'{"status": {}}', b'{"id": "a", "id": "b"}',
    b'{"unknown": 1}', b"[]", b"null", b'{"enabled": null}', b'{"error": null}', b'{"session": "b c"}',
], ids=lambda raw: repr(raw[:40]))
def test_edge_cases_of_a_single_body_agree(raw: bytes) -> None:
    """An empty object is refused by the fast decoder (min_properties), so the reporting path names the error."""
    assert served(schema.Component, raw) == reporting(schema.Component, raw)


@pytest.mark.parametrize("name,node", FAST, ids=[name for name, _ in FAST])
def test_the_fast_decoder_agrees_with_the_reporting_path(name: str, node: Schema) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(values(node))
    def agree(value: Any) -> None:
        raw = orjson.dumps(value)
        assert served(node, raw) == reporting(node, raw)

    agree()


ITEM = {"id": "x1", "enabled": True, "desired_state": {"boot_artifacts": {"kernel": "k", "initrd": "i"}}}


@pytest.mark.parametrize("raw", [
    json.dumps([ITEM]).encode(),
    json.dumps([dict(ITEM, status={"phase": "", "status": "stable"})]).encode(),  # read-only: dropped (D13)
    b'[{"id": "x1", "desired_state": {"last_updated": [[{"deep": null}]], "bss_token": "t"}}]',
    b'[{"id": "x1", "session": "a", "session": "b c"}]',  # a duplicate key: the last one counts, refused
    b'[{"id": "x1", "session": "b c", "session": "a"}]',  # ... accepted
    b'[{"id": "x1", "error": "\\ud800"}]',  # a lone surrogate (parse_json refuses it)
    b'[{"id": "x1", "error": "\\ud83d\\ude00"}]',
    b'[{"id": "x1", "retry_policy": 1.0}]', b'[{"id": "x1", "retry_policy": true}]',
    b'[{"id": "x1", "retry_policy": 123456789012345678901234567890}]',
    b'[{"id": "x1", "last_action": {"last_updated": 123456789012345678901234567890}}]',  # big int, read-only
    b'[{"id": "x1", "last_action": {"last_updated": NaN}}]',
    b'[{"id": "x1", "desired_state": {"last_updated": ' + b"[" * 1010 + b"]" * 1010 + b'}}]',  # deep, read-only
    b'[{"id": "x1", "unknown": 1}]', b'[{"enabled": true}]', b'[null]', b"[]", b"{}", b"", b" ",
    b'[{"id": "x1", "session": "ok\\n"}]',  # `$` matches before a final newline, in both
    '[{"id": "x1", "error": "caf\u00e9"}]'.encode("utf-16"),
    b'\xef\xbb\xbf[{"id": "x1"}]',
], ids=lambda raw: repr(raw[:40]))
def test_edge_cases_of_json_text_agree(raw: bytes) -> None:
    assert served(schema.ComponentArray, raw) == reporting(schema.ComponentArray, raw)


def test_the_usual_bodies_take_the_fast_path() -> None:
    from bench.api_store import component
    for body in ([ITEM], [dict(ITEM, status={"phase": "", "status": "stable"})], [component(n) for n in range(3)]):
        raw = orjson.dumps(body)
        assert fast(schema.ComponentArray, raw) == reporting(schema.ComponentArray, raw) != "invalid"


def test_string_lengths_count_characters_alike() -> None:
    for text in ("é" * 127, "é" * 128, "😀" * 127, "😀" * 128):
        raw = json.dumps([{"id": "x1", "desired_state": {"configuration": text}}], ensure_ascii=False).encode()
        assert fast(schema.ComponentArray, raw) == reporting(schema.ComponentArray, raw)


# -- runs of items equal but for their IDs (fast_bodies._runs_decoder) -----------------------

RUN_IDS = st.lists(st.one_of(st.sampled_from(["x1", "x2", "", "a" * 200, 'q"uote', "back\\slash", "tab\t", "é"]),
                             st.text(max_size=8)), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(values(schema.ComponentWithId), RUN_IDS)
def test_runs_of_items_alike_but_for_their_ids_agree_with_the_reporting_path(item: Any, ids: Any) -> None:
    """Each item of a run is checked as if decoded alone: its ID by the ID's own rules, the rest
    being the same bytes as an item decoded in full."""
    rest = {k: v for k, v in item.items() if k != "id"} if isinstance(item, dict) else {}
    raw = orjson.dumps([{"id": component_id, **rest} for component_id in ids])
    assert served(schema.ComponentArray, raw) == reporting(schema.ComponentArray, raw)


@pytest.mark.parametrize("raw", [
    b'[{"id":"a","error":"e"},{"id":"b","error":"e"},{"id":"c","error":"e"}]',
    b'[{"id":"a","error":"e"},{"id":"","error":"e"}]',  # an empty ID in a run
    b'[{"id":"a","error":"e"},{"id":"' + b"b" * 300 + b'","error":"e"}]',  # too long
    b'[{"id":"a","error":"e"},{"id":"b\x01","error":"e"}]',  # a raw control character
    b'[{"id":"a","error":"e"},{"id":"\xff","error":"e"}]',  # not UTF-8
    b'[{"id":"a","error":"e"},{"id":"b\\u0041","error":"e"}]',  # an escape in a later ID
    b'[{"id":"a\\u0041","error":"e"},{"id":"b","error":"e"}]',  # an escape in the first
    b'[{"id":"a","error":"e","id":"z"},{"id":"b","error":"e","id":"z"}]',  # a second `id` in the rest
    b'[{"id":"a","error":"e","i\\u0064":"z"},{"id":"b","error":"e","i\\u0064":"z"}]',  # a second, escaped
    b'[{"id":"a","error":"e"},{"id":"b","error":"e","unknown":1}]',
    b'[{"id": "a", "error": "e"}, {"id": "b", "error": "e"}]',  # not compact: each decoded in full
    b'[{"id":"a","error":"e"},{"id":"a","error":"e"}]',  # a duplicate ID
    b'[{"id":"a","error":"e"}, 7, {"id":"b","error":"e"}]',
    # the text walk (_text_walk): what joins the items, and where an item decoded in full ends
    b'[]',
    b'[{"id":"a","error":"e"}]',
    b'[{"id":"a","error":"e"},{"id":"b","error":"e"}x{"id":"c","error":"e"}]',  # not joined by a comma
    b'[{"id":"a","error":"e"},{"id":"b","error":"e"},]',
    b'[{"id":"a","error":"e"} ,{"id":"b","error":"e"}]',
    b'[{"id":"a","error":"e"},{"id":"b","error":"e"}] ',
    b' [{"id":"a","error":"e"},{"id":"b","error":"e"}]',
    b'[{"id":"a","error":"e"},{"id":"b","error":"e"}',
    b'[{"id":"a","error":"e","x":[{"id":"b"},{"id":"c"}]},{"id":"d","error":"e"}]',  # the next item's opening, nested
    b'[{"id":"a","error":"e"},{"id":"b","error":"e"},{"id":"c","error":"e","x":[{"id":"b"},{"id":"c"}]}]',
    b'[{"id":"a","error":",{\\"id\\":\\"b"},{"id":"c","error":",{\\"id\\":\\"b"}]',  # and quoted (escaped)
], ids=lambda raw: repr(raw[:50]))
def test_edge_cases_of_runs_agree(raw: bytes) -> None:
    assert served(schema.ComponentArray, raw) == reporting(schema.ComponentArray, raw)


def test_a_run_is_decoded_once() -> None:
    """The items of a run after its first share the first's values (decoded and validated once)."""
    from bench.api_store import component
    decode = fast_decoder(schema.ComponentArray)
    assert decode is not None
    items = decode(orjson.dumps([component(n) for n in range(3)]))
    assert [item["id"] for item in items] == [component(n)["id"] for n in range(3)]
    assert items[2]["desired_state"] is items[0]["desired_state"], "each item of a run was decoded in full"


RUN_BODIES = [
    b'[{"id":"a","error":"e"},{"id":"b","error":"e"},{"id":"c","error":"f"},{"id":"a","error":"f"}]',
    b'[{"id":"a","error":"e"},{"id":"b","error":"e"},{"id":"a","error":"e"}]',  # a duplicate ID in a run
    b'[{"id": "a", "error": "e"}, {"id": "b", "error": "e"}]',  # not compact: the splitting decoder
    b'[{"id":"a","error":"e","x":[{"id":"b"},{"id":"c"}]},{"id":"d","error":"e"}]',  # the walk gives up
    b'[{"id":"a","error":"e"},{"id":"b\\u0041","error":"e"}]',
    b'[]', b'[7]', b'{"id":"a"}',
    # a shape met again after another (_text_walk's known texts): its values, its own ID
    b'[{"id":"a","error":"e"},{"id":"b","error":"f"},{"id":"c","error":"e"},{"id":"d","error":"e"}]',
    b'[{"id":"a","error":"e"},{"id":"b","error":"f"},{"id":"a","error":"e"},{"id":"b","error":"f"}]',
    b'[{"id":"a","error":"e"},{"id":"b","error":"f"},{"id":"' + b"c" * 300 + b'","error":"e"}]',  # too long
    b'[{"id":"a","error":"e"},{"id":"b","error":"f"},{"id":"c\x01","error":"e"}]',
    b'[{"id":"a","error":"e"},{"id":"b","error":"f"},{"id":"c\\u0041","error":"e"}]',
]


@pytest.mark.parametrize("raw", RUN_BODIES, ids=lambda raw: repr(raw[:50]))
def test_the_runs_decoder_gives_the_list_decoders_items_as_runs(raw: bytes) -> None:
    """fast_runs_decoder's runs, expanded, are fast_decoder's value (None alike): each item after the
    first of its run is that first with its own ID."""
    runs, decode = fast_runs_decoder(schema.ComponentArray), fast_decoder(schema.ComponentArray)
    assert runs is not None and decode is not None
    assert _expanded(runs(raw)) == decode(raw)
    assert _expanded(runs(bytearray(raw))) == decode(raw), "a body read into a bytearray"


@pytest.mark.parametrize("raw", RUN_BODIES[-5:], ids=lambda raw: repr(raw[:50]))
def test_a_shape_met_again_agrees_with_the_reporting_path(raw: bytes) -> None:
    assert served(schema.ComponentArray, raw) == reporting(schema.ComponentArray, raw)


def test_a_shape_met_again_after_another_is_not_decoded_again() -> None:
    """A seed's stretches of one shape, each after a component in another session, begin runs whose first
    items have the values of the first stretch's (the very objects: decoded once, Again) and their own IDs;
    goes red when the walk keeps no texts (KNOWN_TAILS = 0)."""
    from bench.api_store import component
    runs = fast_runs_decoder(schema.ComponentArray)
    assert runs is not None
    found = runs(orjson.dumps([component(n) for n in range(300)]))
    assert found is not None
    assert [type(more) for _item, more in found] == [list, list] + [Again] * 5
    assert [more.of is found[n % 2][0] for n, (_item, more) in enumerate(found) if type(more) is Again] == [True] * 5
    for n, (item, _more) in enumerate(found):
        first = found[n % 2][0]
        assert all(item[k] is first[k] for k in first if k != "id"), n
    assert [i for item, more in found for i in (item["id"], *more)] == [component(n)["id"] for n in range(300)]
    assert _expanded(found) == [component(n) for n in range(300)]


def test_a_seed_body_decodes_into_one_run_per_stretch_of_items_alike() -> None:
    """A seed's 300 components (the bench's: the 50th of each hundred in a session of its own) are 7
    runs, each the first item decoded and the others' IDs: no item after the first is decoded again."""
    from bench.api_store import component
    runs = fast_runs_decoder(schema.ComponentArray)
    assert runs is not None
    found = runs(orjson.dumps([component(n) for n in range(300)]))
    assert found is not None
    assert [len(more) + 1 for _item, more in found] == [50, 1, 99, 1, 99, 1, 49]
    assert [i for item, more in found for i in (item["id"], *more)] == [component(n)["id"] for n in range(300)]
