"""The OpenAPI 3 document, derived from the shared schema and the route tables.

Schemas come from `bos_shared.schema.registry` (never restated here); paths come
from the ROUTES of each resource module, annotated with their bodies and responses.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

from bos_shared import schema
from bos_shared.schema import registry

TENANT = {"name": "Cray-Tenant-Name", "in": "header", "required": False,
          "schema": schema.String(0, schema.MAX_TENANT_LENGTH).json_schema()}
TENANT_PATHS = ("/v2/components", "/v2/sessions", "/v2/sessiontemplates", "/v2/sessiontemplatesvalid", "/v2/applystaged")


def _q(name: str, schema: Dict[str, Any]) -> Dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


# Parameter schemas come from the shared schema, like the bodies (one source of truth).
BOOL = schema.Boolean().json_schema()
AGE = {"$ref": "#/components/schemas/AgeString"}
NAME = schema.Name().json_schema()
QUERY: Dict[Tuple[str, str], List[Dict[str, Any]]] = {
    ("GET", "/v2/components"): [
        _q("ids", schema.String(1, schema.MAX_IDS_QUERY_LENGTH).json_schema()), _q("session", NAME),
        _q("staged_session", NAME), _q("enabled", BOOL),
        _q("phase", schema.String(enum=schema.PHASES).json_schema()),
        _q("status", schema.String(0, schema.MAX_STATUS_QUERY_LENGTH).json_schema()),
        _q("start_after_id", {"$ref": "#/components/schemas/ComponentId"}),
        _q("page_size", schema.Integer(0, schema.MAX_PAGE_SIZE).json_schema()),
        _q("actual_state_older_than", schema.String(2, 16, pattern=r"^[0-9]+[smhdwSMHDW]$").json_schema())],
    ("PUT", "/v2/components"): [_q("create_only", BOOL)],
    ("PATCH", "/v2/components"): [_q("skip_bad_ids", BOOL)],
    ("POST", "/v2/sessions"): [dict(_q("dry_run", BOOL), description=(
        "Extension: validate, then answer 200 with the session's plan (V2SessionPlan); nothing is written"))],
    ("GET", "/v2/sessions"): [_q("min_age", AGE), _q("max_age", AGE),
                              _q("status", schema.String(enum=schema.SESSION_STATUSES).json_schema())],
    ("GET", "/v2/components/{component_id}/history"): [  # extension (api.md §3.4.6)
        _q("start_after", {"type": "string", "pattern": r"^[0-9]+-[0-9]+$"}),
        _q("page_size", {"type": "integer", "minimum": 1, "maximum": 1000})],
}
PATH_PARAMETERS = {"component_id": {"$ref": "#/components/schemas/ComponentId"},
                   "session_id": NAME, "session_template_id": NAME}
QUERY[("DELETE", "/v2/sessions")] = QUERY[("GET", "/v2/sessions")]

# (method, path) -> (request schema, success status, response schema); "[X]" is an array of X.
BODIES: Dict[Tuple[str, str], Tuple[Optional[str], int, Optional[str]]] = {
    ("GET", "/"): (None, 200, "[Version]"),
    ("GET", "/v2"): (None, 200, "Version"),
    ("GET", "/v2/version"): (None, 200, "Version"),
    ("GET", "/v2/openapi.json"): (None, 200, None),
    ("GET", "/v2/healthz"): (None, 200, "Healthz"),
    ("GET", "/v2/options"): (None, 200, "V2Options"),
    ("PATCH", "/v2/options"): ("V2Options", 200, "V2Options"),
    ("GET", "/v2/components"): (None, 200, "[V2Component]"),
    ("PUT", "/v2/components"): ("V2ComponentArray", 200, "[V2Component]"),
    ("PATCH", "/v2/components"): ("V2ComponentArray|V2ComponentsUpdate", 200, "[V2Component]"),
    ("GET", "/v2/components/{component_id}"): (None, 200, "V2Component"),
    ("PUT", "/v2/components/{component_id}"): ("V2Component", 200, "V2Component"),
    ("PATCH", "/v2/components/{component_id}"): ("V2Component", 200, "V2Component"),
    ("DELETE", "/v2/components/{component_id}"): (None, 204, None),
    ("POST", "/v2/applystaged"): ("V2ApplyStagedComponents", 200, "V2ApplyStagedStatus"),
    ("POST", "/v2/sessions"): ("V2SessionCreate", 201, "V2Session"),
    ("GET", "/v2/sessions"): (None, 200, "[V2Session]"),
    ("DELETE", "/v2/sessions"): (None, 204, None),
    ("GET", "/v2/sessions/{session_id}"): (None, 200, "V2Session"),
    ("PATCH", "/v2/sessions/{session_id}"): ("V2SessionUpdate", 200, "V2Session"),
    ("DELETE", "/v2/sessions/{session_id}"): (None, 204, None),
    ("POST", "/v2/sessions/{session_id}/stop"): ("V2SessionStop", 200, "V2SessionStopResult"),
    ("GET", "/v2/sessions/{session_id}/status"): (None, 200, "V2SessionExtendedStatus"),
    ("POST", "/v2/sessions/{session_id}/status"): (None, 200, "V2SessionExtendedStatus"),
    ("GET", "/v2/sessiontemplates"): (None, 200, "[V2SessionTemplate]"),
    ("GET", "/v2/sessiontemplates/{session_template_id}"): (None, 200, "V2SessionTemplate"),
    ("PUT", "/v2/sessiontemplates/{session_template_id}"): ("V2SessionTemplate", 200, "V2SessionTemplate"),
    ("PATCH", "/v2/sessiontemplates/{session_template_id}"): ("V2SessionTemplatePatch", 200, "V2SessionTemplate"),
    ("DELETE", "/v2/sessiontemplates/{session_template_id}"): (None, 204, None),
    ("GET", "/v2/sessiontemplatesvalid/{session_template_id}"): (None, 200, "string"),
    ("GET", "/v2/sessiontemplatetemplate"): (None, 200, "V2SessionTemplate"),
    ("GET", "/v2/components/{component_id}/history"): (None, 200, "[V2ComponentHistoryEntry]"),
}

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
    request, status, response = BODIES[(method, path)]  # an undeclared route is an error, not a guess
    op: Dict[str, Any] = {"operationId": f"{method.lower()}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '') or 'root'}"}
    params = list(QUERY.get((method, path), []))
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
