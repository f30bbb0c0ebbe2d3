"""The OpenAPI 3 document, derived from the shared schema and the route tables.

Schemas come from `bos_shared.schema.registry` (never restated here); operations come
from the route declarations (api/routes.py): the same ones that parse the requests.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Tuple

from bos_shared import schema
from bos_shared.schema import registry

from .routes import DECLARED

TENANT = {"name": "Cray-Tenant-Name", "in": "header", "required": False,
          "schema": schema.String(0, schema.MAX_TENANT_LENGTH).json_schema()}
TENANT_PATHS = ("/v2/components", "/v2/sessions", "/v2/sessiontemplates", "/v2/sessiontemplatesvalid", "/v2/applystaged")


NAME = schema.Name().json_schema()
PATH_PARAMETERS = {"component_id": {"$ref": "#/components/schemas/ComponentId"},
                   "session_id": NAME, "session_template_id": NAME}

# Extensions' response schemas that are not wire objects of the shared schema.
_TEXT = {"type": "string"}
EXTRA_SCHEMAS: Dict[str, Dict[str, Any]] = {
    "V2ComponentHistoryEntry": {
        "type": "object", "description": "One change of a component (extension, api.md §3.4.6)",
        "properties": {"id": {"type": "string", "description": "entry id, the paging cursor"},
                       "time": {"type": "string", "format": "date-time"}, "session": _TEXT, "phase": _TEXT,
                       "status": _TEXT, "last_action": _TEXT, "last_action_failed": {"type": "boolean"},
                       "error": _TEXT, "enabled": {"type": "boolean"}, "reason": _TEXT}},
}


# Extension answers beside the main one (docs/deviations.md "Session control").
EXTRA_RESPONSES: Dict[Tuple[str, str], Dict[str, Any]] = {
    ("POST", "/v2/sessions"): {"200": {"description": "Dry run (dry_run=true): the plan",
                                       "content": {"application/json": {
                                           "schema": {"$ref": "#/components/schemas/V2SessionPlan"}}}}},
}


def _ref(name: str) -> Dict[str, Any]:
    if name == "string":
        return {"type": "string"}
    if name.startswith("["):
        return {"type": "array", "items": _ref(name[1:-1])}
    if "|" in name:
        return {"oneOf": [_ref(n) for n in name.split("|")]}
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(method: str, path: str) -> Dict[str, Any]:
    declared = DECLARED[(method, path)]  # an undeclared route is an error, not a guess
    request, status, response = declared.body, declared.status, declared.response
    slug = path.strip("/").replace("/", "_").replace("{", "").replace("}", "") or "root"
    op: Dict[str, Any] = {"operationId": f"{method.lower()}_{slug}"}
    params = [param.openapi() for param in declared.query]
    params += [{"name": p[1:-1], "in": "path", "required": True, "schema": PATH_PARAMETERS[p[1:-1]]}
               for p in path.split("/") if p.startswith("{")]
    if path.startswith(TENANT_PATHS):
        params.append(TENANT)
    if params:
        op["parameters"] = params
    if request:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(request)}}}
    ok: Dict[str, Any] = {"description": "Success"}
    if response:
        ok["content"] = {"application/json": {"schema": _ref(response)}}
    problem = {"description": "Problem", "content": {"application/problem+json": {"schema": _ref("ProblemDetails")}}}
    op["responses"] = {str(status): ok, **EXTRA_RESPONSES.get((method, path), {}), "default": problem}
    return op


@lru_cache(maxsize=4)
def document(version: str) -> Dict[str, Any]:
    from . import app  # the route tables; imported late to avoid a cycle
    paths: Dict[str, Dict[str, Any]] = {}
    for method, path, _handler in app.all_routes():
        if path.startswith("/v1"):  # the v1 compatibility layer is described by v1.md, not here
            continue
        paths.setdefault(path, {})[method.lower()] = _operation(method, path)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Boot Orchestration Service", "version": version,
                 "description": "BOS v2 API. Every path is also served under /apis/bos."},
        "servers": [{"url": "/"}, {"url": "/apis/bos"}],
        "paths": paths,
        "components": {"schemas": {**registry.json_schemas(), **EXTRA_SCHEMAS}},
    }
