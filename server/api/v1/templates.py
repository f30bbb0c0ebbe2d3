"""v1 session templates (v1.md §2.2, §3): the v2 template store seen through v1 paths.

A v1 body loses its v1-only fields (the ordinals are kept, §3.1) and is then
validated and stored exactly as an untenanted `PUT /v2/sessiontemplates/<name>`.
"""

from __future__ import annotations

from typing import Any, Dict

from aiohttp import web

from bos_shared import schema, schema_v1
from bos_shared.schema_types import SchemaError

from ...templates import TemplateError, sanitise
from ..context import ctx
from ..errors import BadRequest, NotFound
from ..params import validate
from ..responses import respond
from ..sessions import services
from .common import body_of, reject_tenant

CREATE_FAILED = "The session template could not be created."
TEMPLATE_NOT_FOUND = "Session template not found."
# v1.md §2.2 (V3): R's body with the sbps provider of our v2 template-template.
TEMPLATE_TEMPLATE = {
    "boot_sets": {"name_your_boot_set": {
        "type": "s3", "etag": "boot-image-s3-etag", "kernel_parameters": "your-kernel-parameters",
        "node_list": ["xname1", "xname2", "xname3"],
        "path": "s3://boot-images/boot-image-ims-id/manifest.json", "rootfs_provider": "sbps",
        "rootfs_provider_passthrough": "sbps:v1:iqn.2023-06.csm.iscsi:_sbps-hsn._tcp.my-system.my-site-domain:300"}},
    "cfs": {"configuration": "desired-cfs-config"},
    "enable_cfs": True,
}


def _not_found(name: str) -> NotFound:
    return NotFound(f"Session template {name} could not be found", title=TEMPLATE_NOT_FOUND)


def v2_body(body: Dict[str, Any]) -> Dict[str, Any]:
    """Step 2 of v1.md §2.2: v1-only fields removed (ordinals kept), `name` taken out."""
    out = {k: v for k, v in body.items() if k not in schema_v1.V1_ONLY_TEMPLATE_FIELDS and k != "name"}
    if "cfs" in out:
        out["cfs"] = {k: v for k, v in out["cfs"].items() if k not in schema_v1.V1_ONLY_CFS_FIELDS}
    if "boot_sets" in out:
        out["boot_sets"] = {key: {k: v for k, v in bs.items() if k not in schema_v1.V1_ONLY_BOOT_SET_FIELDS}
                            for key, bs in out["boot_sets"].items()}
    return out


async def create_template(request: web.Request) -> web.Response:
    body = validate(schema_v1.SessionTemplate, await body_of(request))
    reject_tenant(request)
    name = body["name"]
    try:
        schema.Name().validate(name, "name")
        template = await sanitise(await services(request), v2_body(body))
    except (SchemaError, TemplateError) as exc:
        raise BadRequest(str(exc), title=CREATE_FAILED) from None
    await ctx(request).store.templates.put({"name": name, "tenant": None, **template})
    return respond(name, 201)


async def list_templates(request: web.Request) -> web.Response:
    reject_tenant(request)
    return respond(await ctx(request).store.templates.list(None, all_tenants=True))


async def get_template(request: web.Request) -> web.Response:
    reject_tenant(request)
    name = request.match_info["session_template_id"]
    record = await ctx(request).store.templates.get(None, name)
    if record is None:
        raise _not_found(name)
    return respond(record)


async def delete_template(request: web.Request) -> web.Response:
    reject_tenant(request)
    name = request.match_info["session_template_id"]
    if not await ctx(request).store.templates.delete(None, name):
        raise _not_found(name)
    return web.Response(status=204)


async def template_template(_request: web.Request) -> web.Response:
    return respond(TEMPLATE_TEMPLATE)


ROUTES = [
    ("POST", "/v1/sessiontemplate", create_template),
    ("GET", "/v1/sessiontemplate", list_templates),
    ("GET", "/v1/sessiontemplate/{session_template_id}", get_template),
    ("DELETE", "/v1/sessiontemplate/{session_template_id}", delete_template),
    ("GET", "/v1/sessiontemplatetemplate", template_template),
]
