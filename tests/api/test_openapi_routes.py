"""Every v2 route the server serves is declared in the OpenAPI document: its body, success
status and response (api/openapi.py BODIES) and its query parameters (QUERY). A route added
without a declaration fails here instead of being documented by a silent default."""

from __future__ import annotations

from bos_server.api import app, openapi
from bos_shared import __version__


def served_v2_routes() -> list:
    return [(method, path) for method, path, _handler in app.all_routes() if not path.startswith("/v1")]


def test_every_v2_route_is_declared() -> None:
    undeclared = [route for route in served_v2_routes() if route not in openapi.BODIES]
    assert not undeclared, f"routes without an OpenAPI declaration in api/openapi.py BODIES: {undeclared}"


def test_every_declaration_is_a_served_route() -> None:
    served = set(served_v2_routes())
    stale = [route for route in list(openapi.BODIES) + list(openapi.QUERY) if route not in served]
    assert not stale, f"declarations of routes that are not served: {stale}"


def test_the_document_has_every_served_operation() -> None:
    paths = openapi.document(__version__)["paths"]
    for method, path in served_v2_routes():
        assert method.lower() in paths[path], (method, path)
