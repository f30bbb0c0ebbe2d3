"""One declaration per route (api/routes.py): every v2 route the server serves is declared
(body, success status, response, query parameters), every declaration is served, the
OpenAPI document has every operation, and each query parameter a handler reads is
declared for that handler's routes, so parsing and documentation cannot drift."""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Callable, List, Set, Tuple

from bos_server.api import app, openapi, routes
from bos_shared import __version__


def served_v2_routes() -> List[Tuple[str, str, Callable]]:
    return [route for route in app.all_routes() if not route[1].startswith("/v1")]


def test_every_v2_route_is_declared() -> None:
    undeclared = [(m, p) for m, p, _h in served_v2_routes() if (m, p) not in routes.DECLARED]
    assert not undeclared, f"routes without a declaration (use api.routes.route): {undeclared}"


def test_every_declaration_is_a_served_route() -> None:
    served = {(m, p) for m, p, _h in app.all_routes()}
    stale = [route for route in routes.DECLARED if route not in served]
    assert not stale, f"declarations of routes that are not served: {stale}"


def test_the_document_has_every_served_operation() -> None:
    paths = openapi.document(__version__)["paths"]
    for method, path, _handler in served_v2_routes():
        assert method.lower() in paths[path], (method, path)


def names_read(function: Callable) -> Set[str]:
    """The literal names passed to `query(request, NAME)` in a function and the module helpers it calls."""
    module = inspect.getmodule(function)
    tree = ast.parse(textwrap.dedent(inspect.getsource(module)))
    helpers = {node.name: node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    seen, todo, names = set(), [function.__name__], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in helpers:
            continue
        seen.add(name)
        for node in ast.walk(helpers[name]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                todo.append(node.func.id)
                if node.func.id == "query" and len(node.args) == 2 and isinstance(node.args[1], ast.Constant):
                    names.add(node.args[1].value)
    return names


def test_every_query_parameter_a_handler_reads_is_declared_for_it() -> None:
    missing = []
    for method, path, handler in served_v2_routes():
        declared = {q.name for q in routes.DECLARED[(method, path)].query}
        missing += [f"{method} {path}: {name}" for name in names_read(handler) - declared]
    assert not missing, missing
