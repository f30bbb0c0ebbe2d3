"""Query-string and body parsing (api.md §1.2, §1.4): every failure is a 400 naming the field."""

from __future__ import annotations

from typing import Any, Optional

from aiohttp import web

from bos_shared.schema_types import Schema, SchemaError

from ..store.codec import parse
from .errors import BadRequest

MAX_BODY = 256 * 1024 * 1024


def query_bool(request: web.Request, name: str, default: Optional[bool] = None) -> Optional[bool]:
    raw = request.query.get(name)  # the first occurrence wins
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise BadRequest(f"Query parameter '{name}' must be true or false (got {raw[:40]!r})")


def query_int(request: web.Request, name: str, minimum: int, maximum: int, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise BadRequest(f"Query parameter '{name}' must be an integer (got {raw[:40]!r})") from None
    if not minimum <= value <= maximum:
        raise BadRequest(f"Query parameter '{name}' must be between {minimum} and {maximum} (got {value})")
    return value


def query_str(request: web.Request, name: str, schema: Optional[Schema] = None) -> Optional[str]:
    raw = request.query.get(name)
    if raw is None or schema is None:
        return raw
    return validate(schema, raw, f"query parameter '{name}'")


def validate(schema: Schema, value: Any, what: str = "") -> Any:
    """Validate against the shared schema; a violation is a 400 naming the field."""
    try:
        return schema.validate(value)
    except SchemaError as exc:
        where = exc.path or what or "body"
        if what and exc.path:
            where = f"{what} {exc.path}"
        raise BadRequest(f"Invalid {where}: {exc.message}") from None


async def json_body(request: web.Request, required: bool = True) -> Any:
    """The decoded JSON body; malformed JSON is a 400 (never a 500)."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise BadRequest("Error parsing the data provided: the request body is empty; a JSON body is required")
        return None
    try:
        return parse(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Error parsing the data provided: {exc}") from None
