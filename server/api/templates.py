"""Session templates (api.md §3.9)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from aiohttp import web

from bos_shared import schema

from ..store.components import MAX_ROUNDS, TooMuchContention
from ..templates import TemplateError, check_boot_sets, check_boot_sets_field, merge_template, sanitise
from .context import ctx
from .errors import BadRequest, NotFound
from .params import json_body, validate
from .responses import respond
from .routes import route
from .sessions import services
from .tenancy import require_tenant_exists, tenant_of

Record = Dict[str, Any]

TEMPLATE_TEMPLATE = {
    "boot_sets": {"name_your_boot_set": {
        "type": "s3", "etag": "boot-image-s3-etag",
        "kernel_parameters": "your-kernel-parameters",
        "cfs": {"configuration": "bootset-specific-cfs-override"},
        "node_list": ["xname1", "xname2", "xname3"],
        "path": "s3://boot-images/boot-image-ims-id/manifest.json",
        "rootfs_provider": "sbps",
        "rootfs_provider_passthrough": "sbps:v1:iqn.2023-06.csm.iscsi:_sbps-hsn._tcp.my-system.my-site-domain:300"}},
    "cfs": {"configuration": "default-sessiontemplate-cfs-config"},
    "enable_cfs": True,
}


def _not_found(name: str, tenant: Optional[str]) -> NotFound:
    if tenant:
        return NotFound(f"Session template for tenant '{tenant}' '{name}' does not exist")
    return NotFound(f"Session template '{name}' does not exist")


def _path_name(request: web.Request) -> str:
    return validate(schema.Name(), request.match_info["session_template_id"], "session_template_id")


def _stored(template: Record, name: str, tenant: Optional[str]) -> Record:
    return {"name": name, "tenant": tenant, **template}


async def list_templates(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    return respond(await ctx(request).store.templates.list(tenant, all_tenants=tenant is None))


async def _get(request: web.Request) -> Record:
    name, tenant = _path_name(request), tenant_of(request)
    record = await ctx(request).store.templates.get(tenant, name)
    if record is None:
        raise _not_found(name, tenant)
    return record


async def get_template(request: web.Request) -> web.Response:
    return respond(await _get(request))


async def put_template(request: web.Request) -> web.Response:
    name, tenant = _path_name(request), tenant_of(request)
    await require_tenant_exists(request, tenant)
    body = await json_body(request)
    prefix = "The session template could not be created"
    if isinstance(body, dict):
        try:
            check_boot_sets_field(body)
        except TemplateError as exc:
            raise BadRequest(f"{prefix}: {exc}") from None
    body = validate(schema.SessionTemplate, body)
    try:
        template = await sanitise(await services(request), body)
    except TemplateError as exc:
        raise BadRequest(f"{prefix}: {exc}") from None
    record = _stored(template, name, tenant)
    await ctx(request).store.templates.put(record)
    return respond(record)


async def patch_template(request: web.Request) -> web.Response:
    stored = await _get(request)
    patch = validate(schema.SessionTemplatePatch, await json_body(request))
    svc = await services(request)
    store = ctx(request).store.templates
    # Validation is async, so compare-and-swap the whole validated result. Each round some
    # writer wins, so N concurrent patches need up to N rounds (D2): allow as many as the store.
    for _ in range(MAX_ROUNDS):
        merged = merge_template({k: v for k, v in stored.items() if k not in ("name", "tenant")}, patch)
        try:
            template = await sanitise(svc, merged)
        except TemplateError as exc:
            raise BadRequest(f"The session template could not be patched: {exc}") from None
        record = _stored(template, stored["name"], stored.get("tenant"))
        if await store.swap(stored, record):
            return respond(record)
        stored = await _get(request)
    raise TooMuchContention("The session template kept changing during the update; try again")


async def delete_template(request: web.Request) -> web.Response:
    name, tenant = _path_name(request), tenant_of(request)
    if not await ctx(request).store.templates.delete(tenant, name):
        raise _not_found(name, tenant)
    return web.Response(status=204)


async def validate_template(request: web.Request) -> web.Response:
    record = await _get(request)
    _outcome, message = await check_boot_sets(await services(request), record, "boot", record["name"])
    return respond(message)


async def template_template(_request: web.Request) -> web.Response:
    return respond(TEMPLATE_TEMPLATE)


ROUTES = [
    route("GET", "/v2/sessiontemplates", list_templates, response="[V2SessionTemplate]"),
    route("GET", "/v2/sessiontemplates/{session_template_id}", get_template, response="V2SessionTemplate"),
    route("PUT", "/v2/sessiontemplates/{session_template_id}", put_template, body="V2SessionTemplate",
          response="V2SessionTemplate"),
    route("PATCH", "/v2/sessiontemplates/{session_template_id}", patch_template, body="V2SessionTemplatePatch",
          response="V2SessionTemplate"),
    route("DELETE", "/v2/sessiontemplates/{session_template_id}", delete_template, status=204),
    route("GET", "/v2/sessiontemplatesvalid/{session_template_id}", validate_template, response="string"),
    route("GET", "/v2/sessiontemplatetemplate", template_template, response="V2SessionTemplate"),
]
