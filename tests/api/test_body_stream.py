"""The streaming parser of large array bodies (api/body_stream.py) against the standard library.

Fed in chunks of every size from 1 byte, it must return what `json.loads` returns for
the whole text, and refuse what the whole-body path refuses, with a 400.
"""

from __future__ import annotations

import json
from typing import Any, List

import pytest

from bos_server.api.body_stream import ArrayStream
from bos_server.api.errors import BadRequest

DOCUMENTS = [
    "[]", " [ ] ", "[1]", "[12345, -6.5e3, 7]", '[{"id": "x1", "a": [1, {"b": "\\u00e9\\"]"}]}, "s", true, null]',
    '[{"kernel_parameters": "' + "k=v " * 300 + '"}, {"id": "x2"}]\n',
]
BAD = ["[1,]", "[1 2]", "[", "[1", "{}", "[1] x", "[NaN]", "[Infinity]", '["unterminated]', "[01]"]


def parse(text: str, size: int) -> List[Any]:
    stream = ArrayStream(lambda _item: None)
    for start in range(0, len(text), size):
        stream.feed(text[start:start + size])
    return stream.finish()


@pytest.mark.parametrize("text", DOCUMENTS)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 100_000])
def test_streamed_items_equal_the_whole_parse(text: str, size: int) -> None:
    assert parse(text, size) == json.loads(text)


@pytest.mark.parametrize("text", BAD)
@pytest.mark.parametrize("size", [1, 3, 100])
def test_what_json_refuses_is_a_400(text: str, size: int) -> None:
    with pytest.raises(BadRequest, match="^Error parsing the data provided: "):
        parse(text, size)


def test_one_huge_item_costs_linear_time() -> None:
    """An item is retried only once the buffer doubled: a 4 MiB item in 1 KiB chunks decodes ~12 times."""
    calls = []
    stream = ArrayStream(lambda _item: None)
    decode = stream._decoder.raw_decode
    stream._decoder.raw_decode = lambda *a: calls.append(1) or decode(*a)  # type: ignore[method-assign]
    text = '["' + "x" * (4 * 2**20) + '"]'
    for start in range(0, len(text), 1024):
        stream.feed(text[start:start + 1024])
    assert len(stream.finish()[0]) == 4 * 2**20
    assert len(calls) < 20, len(calls)
