"""JSON for the whole server: stored records, request bodies, service calls (orjson: listing
100,000 records must stay well under 2 s). Outside the store so that clients and the API
need not import the store to speak JSON."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """orjson's encoding, in a bytes object of its own size: orjson (3.13) returns its output
    in its worst-case buffer (12 bytes per character of each string: a 2 KiB record takes
    16 KiB, a 2 MiB response part 8 MiB). Kept (caches, a bulk write's records and
    response), those buffers cost several times the data (issue 10 item 7); the copy
    is one memcpy."""
    return exact(orjson.dumps(value))


def dumps_transient(value: Any) -> bytes:
    """orjson's encoding as it comes (see dumps), for one that is written out at once and dropped:
    the parts of a streamed listing (~2 MiB each, 170 MB for 100,000 components)."""
    return orjson.dumps(value)


def exact(raw: bytes) -> bytes:
    """`raw` copied into a bytes object of its own size (see dumps)."""
    return bytes(memoryview(raw))


def loads(raw: Any) -> Any:
    return orjson.loads(raw)


_IMMUTABLE = (str, int, float, bool, type(None))


def clone(value: Any) -> Any:
    """A deep copy of JSON data (several times faster than copy.deepcopy); a scalar is its own copy."""
    if type(value) in _IMMUTABLE:
        return value
    return orjson.loads(orjson.dumps(value))


def parse(raw: Any) -> Any:
    """JSON text from the outside world: orjson, else the standard library.

    orjson is several times faster on the large bodies BOS exchanges; anything it
    refuses (UTF-16 text, NaN, integers beyond 64 bits, lone surrogates) goes to
    `json.loads`, so what is accepted and every error message stay exactly those
    of the standard library.
    """
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        return json.loads(raw)


def encode(value: Any) -> bytes:
    """A request body: orjson, else `json.dumps` for what orjson cannot encode (e.g. int keys)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()
