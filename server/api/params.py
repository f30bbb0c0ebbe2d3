"""Body parsing and schema validation (api.md §1.2, §1.5): every failure is a 400 naming the field.

Query parameters are declared and read with their routes (api/routes.py)."""

from __future__ import annotations

import json
from typing import Any, List, Optional, Union

import orjson
from aiohttp import web

from bos_shared.schema_types import Array, Ref, Schema, SchemaError, within

from .body_stream import stream_array
from .context import request_value
from .errors import BadRequest
from .fast_bodies import FastDecoder

MAX_BODY = 256 * 1024 * 1024
MAX_DEPTH = 1024  # orjson's nesting limit
LEAN_BYTES = 32 * 1024 * 1024  # from here on parse for memory, not speed (json_body)
WHOLE_BYTES = 64 * 1024  # a body up to this size that has arrived whole is read from the buffer (read_body)


def validate(schema: Schema, value: Any, what: str = "") -> Any:
    """Validate against the shared schema; a violation is a 400 naming the field."""
    try:
        return schema.validate(value)
    except SchemaError as exc:
        where = exc.path or what or "body"
        if what and exc.path:
            where = f"{what} {exc.path}"
        raise BadRequest(f"Invalid {where}: {exc.message}") from None


def validate_items(schema: Schema, items: List[Any]) -> List[Any]:
    """validate() of a list against an array schema, each item replaced by its validated copy
    in place: the parsed body and its copy never both exist whole (issue 10 item 7)."""
    array = schema.target if isinstance(schema, Ref) else schema
    if not isinstance(array, Array) or array.min_items or array.max_items is not None or not isinstance(items, list):
        return validate(schema, items)
    for n, item in enumerate(items):
        try:
            items[n] = array.items.validate(item, "")
        except SchemaError as exc:
            found = within("", f"[{n}]", exc, index=True)
            raise BadRequest(f"Invalid {found.path}: {found.message}") from None
    return items


BODY_KEY: web.RequestKey[Union[bytes, bytearray]] = web.RequestKey("bos.body")  # the raw body, read once


async def json_body(request: web.Request, required: bool = True) -> Any:
    """The decoded JSON body; malformed or hostile JSON is a 400 (never a 500).

    Memory: the body is read once into one buffer (pre-sized from Content-Length,
    refused with 413 before reading when it is over the cap; aiohttp's
    `request.read()` would hold a second full copy for the request's lifetime),
    and dropped before the caller goes on. Small bodies are parsed by orjson, fast;
    large ones (LEAN_BYTES) so that the peak stays near twice the body's size.
    """
    length = request.content_length
    if request_value(request, BODY_KEY) is None and length is not None and LEAN_BYTES <= length <= MAX_BODY:
        first = await _first_bytes(request)
        if _opens_utf8_array(first):  # a bulk write: parsed as it arrives (body_stream.py)
            return await stream_array(request, first, _reject_surrogates, length)
        request[BODY_KEY] = await read_body(request, first)
    raw = await read_body(request)
    if not raw or raw.isspace():
        if required:
            raise BadRequest("Error parsing the data provided: the request body is empty; a JSON body is required")
        return None
    if len(raw) >= LEAN_BYTES and isinstance(raw, bytearray):
        return parse_large_json(raw)
    return parse_json(raw)


async def fast_body(request: web.Request, fast: Optional[FastDecoder]) -> Optional[Any]:
    """The body as `fast` (fast_bodies.py) decodes and validates it, or None when it refuses it
    (or it is streamed: LEAN_BYTES and more). Then json_body() and the reporting validators
    read it, from the bytes kept here (the stream is read once), and name what is wrong."""
    length = request.content_length
    if fast is None or length is None or length >= LEAN_BYTES:
        return None
    raw = await read_body(request)
    value = fast(raw)
    if value is None:
        request[BODY_KEY] = raw
    return value


def arrived_body(request: web.Request, fast: Optional[FastDecoder]) -> Optional[Any]:
    """fast_body() without a coroutine, for a body of up to WHOLE_BYTES that has arrived whole (a node's
    report: three coroutines, _one_body's, fast_body's and read_body's, were awaited for its ~80 bytes,
    issue 13). None when it has not arrived, or when `fast` refuses it (then kept, as fast_body keeps it)."""
    length = request.content_length
    if fast is None or length is None or length > WHOLE_BYTES or not request.content.is_eof():
        return None
    if request_value(request, BODY_KEY) is not None:
        return None  # a middleware read it (auth): fast_body takes it from there
    raw = _buffered(request, length)
    value = fast(raw)
    if value is None:
        request[BODY_KEY] = raw
    return value


async def _first_bytes(request: web.Request) -> bytes:
    """The body's first bytes, up to its first non-whitespace one (or all of it)."""
    seen = b""
    while not seen.strip():
        chunk = await request.content.readany()
        if not chunk:
            break
        seen += chunk
    return seen


def _opens_utf8_array(first: bytes) -> bool:
    """A JSON array in UTF-8 (UTF-16/32 text has NUL bytes among its first four)."""
    return first.lstrip().startswith(b"[") and b"\x00" not in first[:4]


async def read_body(request: web.Request, prefix: bytes = b"") -> Union[bytes, bytearray]:
    """The body, read from the stream once; a middleware that had to look first (auth) left it in BODY_KEY.

    `prefix`: its first bytes, already read from the stream. A small body that has arrived
    whole (a node's report: one TCP segment) is taken from the stream's buffer as it is,
    not copied chunk by chunk through an async iterator into a new buffer (issue 13).
    """
    kept = request_value(request, BODY_KEY)
    if kept is not None:
        return kept
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY, length)
    if not prefix and length is not None and length <= WHOLE_BYTES and request.content.is_eof():
        return _buffered(request, length)
    if length is None:  # chunked: grow as it comes, still bounded
        grown = bytearray(prefix)
        async for chunk in request.content.iter_any():
            grown += chunk
            if len(grown) > MAX_BODY:
                raise web.HTTPRequestEntityTooLarge(MAX_BODY, len(grown))
        return grown
    if len(prefix) > length:
        raise BadRequest("The request body is longer than its Content-Length")
    body = bytearray(length)
    view, filled = memoryview(body), len(prefix)
    view[:filled] = prefix
    async for chunk in request.content.iter_any():
        end = filled + len(chunk)
        if end > length:
            raise BadRequest("The request body is longer than its Content-Length")
        view[filled:end] = chunk
        filled = end
    view.release()
    if filled < length:
        del body[filled:]
    return body


def _buffered(request: web.Request, length: int) -> bytes:
    """The whole body, from a stream that has received all of it (read_body)."""
    body = request.content.read_nowait()
    if len(body) > length:
        raise BadRequest("The request body is longer than its Content-Length")
    return body


def parse_json(raw: Union[bytes, bytearray]) -> Any:
    """JSON text: orjson, else the standard library for what orjson refuses (UTF-16, big integers).

    Refused either way, as 400s: nesting deeper than orjson's limit (the standard
    library would overflow the stack), NaN/Infinity (not JSON), and lone surrogates
    (no store or client can write them back).
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():
            raise BadRequest(f"Error parsing the data provided: JSON nested more than {MAX_DEPTH} levels deep") from None
    return _standard_parse(raw)


def parse_large_json(raw: bytearray) -> Any:
    """A body of LEAN_BYTES or more, in at most about twice its size; empties `raw`.

    orjson holds the input, its own copy of it and the result at once (3x the body
    for a body of long strings). Decoding to text first and releasing the buffer
    before the standard library parses it keeps the peak at text + result.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return parse_json(raw)  # UTF-16/32, or not text at all: the ordinary path says which
    raw.clear()
    return _standard_parse(text)


def _standard_parse(text: Union[str, bytes, bytearray]) -> Any:
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise BadRequest("Error parsing the data provided: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Error parsing the data provided: {exc}") from None
    _reject_surrogates(value)
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _reject_surrogates(value: Any) -> None:
    """Lone surrogates (`"\\ud800"`) are valid JSON escapes but not text: refuse them."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            for key, member in item.items():
                _check_text(key)
                stack.append(member)
        elif isinstance(item, list):
            stack.extend(item)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end].encode("unicode_escape").decode("ascii")
        raise BadRequest(f"Error parsing the data provided: the lone surrogate {bad} is not valid Unicode text") from None
