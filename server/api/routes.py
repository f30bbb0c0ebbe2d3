"""One declaration per route: method, path, handler, query parameters, body and response.

Each resource module lists its routes with `route(...)`. The same declaration parses and
validates the query parameters a handler reads (`query(request, name)`: a parameter that
is not declared for the route is a programming error, caught by the tests) and builds the
OpenAPI document (api/openapi.py), so the two cannot drift. The route tuples themselves
keep the shape (method, path, handler) that the app, the OpenAPI document, the auth
policy and the metrics enumerate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

from aiohttp import web

from bos_shared import schema as wire
from bos_shared.schema_types import Schema

from .errors import BadRequest
from .params import validate

Handler = Callable[..., Any]
Route = Tuple[str, str, Handler]


@dataclass(frozen=True)
class Query:
    """A query parameter: its wire schema (validation and documentation) and how it is read.

    `kind` is "str" (validated against `schema`), "bool" (true/false in any case,
    api README item 3), "int" (decimal, within the schema's bounds) or "raw" (the
    handler parses it, for reference error texts such as ages' "Error parsing age field").
    """

    name: str
    schema: Schema
    kind: str = "str"
    default: Any = None
    description: str = ""

    def read(self, request: web.Request) -> Any:
        raw = request.query.get(self.name)  # the first occurrence wins
        if raw is None:
            return self.default
        if self.kind == "bool":
            lowered = raw.lower()
            if lowered not in ("true", "false"):
                raise BadRequest(f"Query parameter '{self.name}' must be true or false (got {raw[:40]!r})")
            return lowered == "true"
        if self.kind == "int":
            return self._integer(raw)
        if self.kind == "raw":
            return raw
        return validate(self.schema, raw, f"query parameter '{self.name}'")

    def _integer(self, raw: str) -> int:
        try:
            value = int(raw, 10)
        except ValueError:
            raise BadRequest(f"Query parameter '{self.name}' must be an integer (got {raw[:40]!r})") from None
        low, high = getattr(self.schema, "minimum", None), getattr(self.schema, "maximum", None)
        if (low is not None and value < low) or (high is not None and value > high):
            raise BadRequest(f"Query parameter '{self.name}' must be between {low} and {high} (got {value})")
        return value

    def openapi(self) -> Dict[str, Any]:
        doc: Dict[str, Any] = {"name": self.name, "in": "query", "required": False,
                               "schema": self.schema.json_schema()}
        if self.description:
            doc["description"] = self.description
        return doc


def flag(name: str, default: Optional[bool] = None, description: str = "") -> Query:
    return Query(name, wire.Boolean(), "bool", default, description)


def integer(name: str, minimum: int, maximum: int, default: int) -> Query:
    return Query(name, wire.Integer(minimum, maximum), "int", default)


@dataclass(frozen=True)
class Declaration:
    """What a route takes and gives: "[X]" is an array of the schema X, "X|Y" either."""

    query: Tuple[Query, ...] = ()
    body: Optional[str] = None
    status: int = 200
    response: Optional[str] = None
    by_name: Dict[str, Query] = field(default_factory=dict, compare=False)


DECLARED: Dict[Tuple[str, str], Declaration] = {}
_BY_HANDLER: Dict[Tuple[str, Handler], Declaration] = {}


def route(method: str, path: str, handler: Handler, *, query: Tuple[Query, ...] = (),
          body: Optional[str] = None, status: int = 200, response: Optional[str] = None) -> Route:
    """Declare a route once; returns the (method, path, handler) tuple the app serves."""
    declaration = Declaration(tuple(query), body, status, response, {q.name: q for q in query})
    DECLARED[(method, path)] = declaration
    _BY_HANDLER[(method, handler)] = declaration
    return method, path, handler


def declaration_of(request: web.Request) -> Declaration:
    method = "GET" if request.method == "HEAD" else request.method
    found = _BY_HANDLER.get((method, request.match_info.handler))
    if found is None:
        raise LookupError(f"{method} {request.path} has no route declaration (api/routes.py)")
    return found


def query(request: web.Request, name: str) -> Any:
    """The validated value of a declared query parameter (its default when absent)."""
    param = declaration_of(request).by_name.get(name)
    if param is None:
        raise LookupError(f"query parameter {name!r} is not declared for {request.method} {request.path}")
    return param.read(request)
