"""The control interface `/sim/...` (services.md §9.3): change, break and observe the cluster.

Not part of any product contract; documented in simulator/README.md. Bodies
and answers are JSON; errors are `{"error": "..."}` with 400 or 404.
"""

from __future__ import annotations

import json
import time
from typing import Any, Awaitable, Callable, Dict, List

from aiohttp import web

from .cfs import Configuration
from .cluster import SERVICES, Cluster
from .determinism import seeded_uuid
from .faults import NodeFaults, parse_service_fault
from .hsm import Group
from .inventory import InventoryError, parse_node
from .nodes import Node
from .tapms import Tenant

BASE = "/sim"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ControlError as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)
    except (ValueError, InventoryError, TypeError, KeyError) as exc:
        return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)


async def _body(request: web.Request) -> Dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ControlError(400, f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    return body


def _ids(body: Dict[str, Any]) -> List[str]:
    ids = body.get("ids")
    if isinstance(ids, str):
        ids = [i for i in ids.split(",") if i]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ControlError(400, "'ids' must be a list of xnames (or a comma-separated string)")
    return ids


class Control:
    def __init__(self, cluster: Cluster, urls: Callable[[], Dict[str, str]]) -> None:
        self.cluster = cluster
        self.urls = urls

    def node(self, xname: str) -> Node:
        node = self.cluster.nodes.get(xname)
        if node is None:
            raise ControlError(404, f"no node {xname}")
        return node

    def nodes(self, ids: List[str]) -> List[Node]:
        missing = [x for x in ids if x not in self.cluster.nodes]
        if missing:
            raise ControlError(404, f"unknown node(s): {', '.join(missing[:20])}")
        return [self.cluster.nodes[x] for x in ids]

    # ------------------------------------------------------------------ observation

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def summary(self, request: web.Request) -> web.Response:
        return web.json_response(self.cluster.summary())

    async def get_urls(self, request: web.Request) -> web.Response:
        return web.json_response(self.urls())

    async def list_nodes(self, request: web.Request) -> web.Response:
        ids = request.query.get("ids")
        selected = self.cluster.select(ids.split(",") if ids else None)
        for key in ("power", "pending"):
            if key in request.query:
                selected = [n for n in selected if getattr(n, key) == request.query[key]]
        if "booted" in request.query:
            wanted = request.query["booted"].lower() == "true"
            selected = [n for n in selected if n.booted == wanted]
        return web.json_response({"nodes": [self.cluster.engine.describe(n) for n in selected]})

    async def get_node(self, request: web.Request) -> web.Response:
        return web.json_response(self.cluster.engine.describe(self.node(request.match_info["xname"])))

    async def get_requests(self, request: web.Request) -> web.Response:
        service = self._service(request)
        since = int(request.query.get("since", "0") or 0)
        return web.json_response({"requests": self.cluster.recorder.list(service, since)})

    async def clear_requests(self, request: web.Request) -> web.Response:
        service = request.match_info.get("service")
        if service is not None:
            self._service(request)
        self.cluster.recorder.clear(service)
        return web.json_response({"cleared": service or "all"})

    def _service(self, request: web.Request) -> str:
        service = request.match_info["service"]
        if service not in SERVICES:
            raise ControlError(404, f"unknown service {service}; one of {', '.join(SERVICES)}")
        return service

    async def ims_patches(self, request: web.Request) -> web.Response:
        return web.json_response({"patches": self.cluster.ims.patches})

    # ------------------------------------------------------------------ time

    async def get_speed(self, request: web.Request) -> web.Response:
        return web.json_response({"speed": self.cluster.scheduler.speed})

    async def get_hardware_time(self, request: web.Request) -> web.Response:
        """The slowest node's completed hardware steps since the last reset (hardware_time.py)."""
        return web.json_response(self.cluster.hardware.summary(self.cluster.scheduler.speed))

    async def reset_hardware_time(self, request: web.Request) -> web.Response:
        self.cluster.hardware.reset()
        return web.json_response(self.cluster.hardware.summary(self.cluster.scheduler.speed))

    async def set_speed(self, request: web.Request) -> web.Response:
        speed = (await _body(request)).get("speed")
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or speed <= 0:
            raise ControlError(400, "'speed' must be a positive number")
        self.cluster.scheduler.set_speed(float(speed))
        self.cluster.config.speed = float(speed)
        return web.json_response({"speed": self.cluster.scheduler.speed})

    # ------------------------------------------------------------------ inventory

    async def add_nodes(self, request: web.Request) -> web.Response:
        """POST /sim/nodes {"nodes": [{xname, nid?, role?, ..., "groups": [labels]}]}."""
        items = (await _body(request)).get("nodes")
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise ControlError(400, "'nodes' must be a non-empty list of node objects")
        next_nid = max((n.nid or 0 for n in self.cluster.nodes.values()), default=0) + 1
        specs = [parse_node({"nid": next_nid + index, **item}, index) for index, item in enumerate(items)]
        for spec, item in zip(specs, items):
            self.cluster.add_node(spec)
            for label in item.get("groups") or []:
                self.cluster.groups.setdefault(label, Group(label)).members[spec.xname] = None
        return web.json_response({"added": [spec.xname for spec in specs]}, status=201)

    async def delete_node(self, request: web.Request) -> web.Response:
        xname = request.match_info["xname"]
        if not self.cluster.remove(xname):
            raise ControlError(404, f"no component {xname}")
        return web.json_response({"removed": xname})

    async def patch_node(self, request: web.Request) -> web.Response:
        node = self.node(request.match_info["xname"])
        self._patch_hsm(node, await _body(request))
        return web.json_response(self.cluster.engine.describe(node))

    def _patch_hsm(self, node: Node, body: Dict[str, Any]) -> None:
        unknown = set(body) - {"enabled", "locked", "role", "subrole", "arch", "power", "nid"}
        if unknown:
            raise ControlError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        node.hsm_entry = None  # its HSM entry shows role, subrole, arch and nid, changed below (hsm.node_entry)
        for key in ("enabled", "locked"):
            if key in body:
                self._set_flag(node, key, body[key])
        for key in ("role", "subrole", "arch"):
            if key in body:
                if body[key] is not None and not isinstance(body[key], str):
                    raise ControlError(400, f"'{key}' must be a string or null")
                setattr(node, key, body[key])
        if "nid" in body:
            if body["nid"] is not None and (not isinstance(body["nid"], int) or isinstance(body["nid"], bool)):
                raise ControlError(400, "'nid' must be an integer or null")
            node.nid = body["nid"]
        if "power" in body:
            if body["power"] not in ("on", "off"):
                raise ControlError(400, "'power' must be on or off")
            self.cluster.engine.set_power(node, body["power"])

    @staticmethod
    def _set_flag(node: Node, key: str, value: Any) -> None:
        if not isinstance(value, bool):
            raise ControlError(400, f"'{key}' must be a boolean")
        if key == "locked" and value and not node.locked:
            node.lock_time = time.time()
        setattr(node, key, value)

    async def bulk_nodes(self, request: web.Request) -> web.Response:
        """POST /sim/nodes/bulk {"ids": [...], "enabled"|"locked"|"power"|...: value}."""
        body = await _body(request)
        nodes = self.nodes(_ids(body))
        changes = {k: v for k, v in body.items() if k != "ids"}
        for node in nodes:
            self._patch_hsm(node, changes)
        return web.json_response({"changed": [n.xname for n in nodes]})

    async def put_group(self, request: web.Request) -> web.Response:
        return self._put_group(self.cluster.groups, request.match_info["name"], await _body(request))

    async def put_partition(self, request: web.Request) -> web.Response:
        return self._put_group(self.cluster.partitions, request.match_info["name"], await _body(request))

    @staticmethod
    def _put_group(table: Dict[str, Group], name: str, body: Dict[str, Any]) -> web.Response:
        members = body.get("members", [])
        if not isinstance(members, list):
            raise ControlError(400, "'members' must be a list")
        table[name] = Group(name, str(body.get("description", "")), list(body.get("tags") or []),
                            body.get("exclusive_group"), dict.fromkeys(map(str, members)))
        return web.json_response({"name": name, "members": len(members)})

    async def delete_group(self, request: web.Request) -> web.Response:
        return self._delete_from(self.cluster.groups, request.match_info["name"])

    async def delete_partition(self, request: web.Request) -> web.Response:
        return self._delete_from(self.cluster.partitions, request.match_info["name"])

    async def delete_tenant(self, request: web.Request) -> web.Response:
        return self._delete_from(self.cluster.tenants, request.match_info["name"])

    @staticmethod
    def _delete_from(table: Dict[str, Any], name: str) -> web.Response:
        if table.pop(name, None) is None:
            raise ControlError(404, f"no {name}")
        return web.json_response({"removed": name})

    async def put_tenant(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await _body(request)
        xnames = body.get("xnames", [])
        if not isinstance(xnames, list):
            raise ControlError(400, "'xnames' must be a list")
        prior = self.cluster.tenants.get(name)
        uuid = str(body.get("uuid") or (prior.uuid if prior else "")) or _tenant_uuid(self.cluster, name)
        self.cluster.tenants[name] = Tenant(name, uuid, str(body.get("hsm_group", "")),
                                            str(body.get("state", "Deployed")), dict.fromkeys(map(str, xnames)))
        return web.json_response(self.cluster.tenants[name].describe())

    async def put_configuration(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await _body(request)
        self.cluster.cfs.configurations[name] = Configuration(name, bool(body.get("fails", False)),
                                                              list(body.get("layers") or []))
        return web.json_response({"name": name, "fails": bool(body.get("fails", False))})

    # ------------------------------------------------------------------ faults

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"services": self.cluster.service_faults.describe(),
                                  "nodes": self.cluster.nodes_with_faults()})

    async def add_service_fault(self, request: web.Request) -> web.Response:
        rule = parse_service_fault(await _body(request), SERVICES)
        self.cluster.service_faults.add(rule)
        return web.json_response(rule.describe(), status=201)

    async def delete_service_fault(self, request: web.Request) -> web.Response:
        if not self.cluster.service_faults.remove(int(request.match_info["id"])):
            raise ControlError(404, f"no service fault {request.match_info['id']}")
        return web.json_response({"removed": int(request.match_info["id"])})

    async def clear_service_faults(self, request: web.Request) -> web.Response:
        self.cluster.service_faults.clear(request.query.get("service"))
        return web.json_response({"cleared": True})

    async def put_node_faults(self, request: web.Request) -> web.Response:
        node = self.node(request.match_info["xname"])
        replace = request.method == "PUT"
        self._set_faults([node], await _body(request), replace)
        return web.json_response({"xname": node.xname, "faults": node.faults.as_dict() if node.faults else {}})

    async def delete_node_faults(self, request: web.Request) -> web.Response:
        node = self.node(request.match_info["xname"])
        node.faults = None
        return web.json_response({"xname": node.xname, "faults": {}})

    async def bulk_node_faults(self, request: web.Request) -> web.Response:
        """POST /sim/faults/nodes {"ids": [...], "faults": {...}, "replace": false}."""
        body = await _body(request)
        nodes = self.nodes(_ids(body))
        faults = body.get("faults", {})
        if not isinstance(faults, dict):
            raise ControlError(400, "'faults' must be an object")
        self._set_faults(nodes, faults, bool(body.get("replace", False)))
        return web.json_response({"changed": [n.xname for n in nodes]})

    @staticmethod
    def _set_faults(nodes: List[Node], faults: Dict[str, Any], replace: bool) -> None:
        NodeFaults.from_mapping(faults)  # validate once before changing anything
        for node in nodes:
            merged = NodeFaults.from_mapping(faults, None if replace else node.faults)
            node.faults = merged if merged.any() else None

    # ------------------------------------------------------------------ routes

    def routes(self) -> List[web.RouteDef]:
        b = BASE
        return [
            web.get(f"{b}/health", self.health), web.get(f"{b}/summary", self.summary),
            web.get(f"{b}/urls", self.get_urls),
            web.get(f"{b}/speed", self.get_speed), web.put(f"{b}/speed", self.set_speed),
            web.get(f"{b}/hardware-time", self.get_hardware_time),
            web.delete(f"{b}/hardware-time", self.reset_hardware_time),
            web.get(f"{b}/nodes", self.list_nodes), web.post(f"{b}/nodes", self.add_nodes),
            web.post(f"{b}/nodes/bulk", self.bulk_nodes),
            web.get(f"{b}/nodes/{{xname}}", self.get_node), web.patch(f"{b}/nodes/{{xname}}", self.patch_node),
            web.delete(f"{b}/nodes/{{xname}}", self.delete_node),
            web.put(f"{b}/nodes/{{xname}}/faults", self.put_node_faults),
            web.patch(f"{b}/nodes/{{xname}}/faults", self.put_node_faults),
            web.delete(f"{b}/nodes/{{xname}}/faults", self.delete_node_faults),
            web.put(f"{b}/groups/{{name}}", self.put_group), web.delete(f"{b}/groups/{{name}}", self.delete_group),
            web.put(f"{b}/partitions/{{name}}", self.put_partition),
            web.delete(f"{b}/partitions/{{name}}", self.delete_partition),
            web.put(f"{b}/tenants/{{name}}", self.put_tenant), web.delete(f"{b}/tenants/{{name}}", self.delete_tenant),
            web.put(f"{b}/cfs/configurations/{{name}}", self.put_configuration),
            web.get(f"{b}/ims/patches", self.ims_patches),
            web.get(f"{b}/faults", self.get_faults),
            web.post(f"{b}/faults/services", self.add_service_fault),
            web.delete(f"{b}/faults/services", self.clear_service_faults),
            web.delete(f"{b}/faults/services/{{id}}", self.delete_service_fault),
            web.post(f"{b}/faults/nodes", self.bulk_node_faults),
            web.get(f"{b}/requests/{{service}}", self.get_requests),
            web.delete(f"{b}/requests", self.clear_requests),
            web.delete(f"{b}/requests/{{service}}", self.clear_requests),
        ]


def _tenant_uuid(cluster: Cluster, name: str) -> str:
    return seeded_uuid(cluster.config.seed, "tenant", name)


def make_app(cluster: Cluster, urls: Callable[[], Dict[str, str]]) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=256 * 1024 * 1024)
    app.add_routes(Control(cluster, urls).routes())
    return app
