"""HSM (services.md §2): components, query, groups, partitions and lock status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, TYPE_CHECKING

import msgspec
from aiohttp import web

from .httputil import ENCODE, SimError, entries_answer, json_answer, json_body, parse_bool, stamp

if TYPE_CHECKING:
    from .cluster import Cluster, OtherComponent
    from .nodes import Node

BASE = "/hsm/v2"


@dataclass
class Group:
    """An HSM group or partition; `members` is an insertion-ordered set."""

    name: str
    description: str = ""
    tags: List[str] = field(default_factory=list)
    exclusive_group: Optional[str] = None
    members: Dict[str, None] = field(default_factory=dict)

    def group_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"label": self.name, "description": self.description, "tags": list(self.tags)}
        if self.exclusive_group:
            out["exclusiveGroup"] = self.exclusive_group
        out["members"] = {"ids": list(self.members)}
        return out

    def partition_json(self) -> Dict[str, Any]:
        return {"name": self.name, "description": self.description, "tags": list(self.tags),
                "members": {"ids": list(self.members)}}


def node_json(node: "Node") -> Dict[str, Any]:
    out: Dict[str, Any] = {"ID": node.xname, "Type": "Node", "State": node.hsm_state, "Flag": "OK",
                           "Enabled": node.enabled, "Role": node.role}
    if node.subrole:
        out["SubRole"] = node.subrole
    if node.nid is not None:
        out["NID"] = node.nid
    out["NetType"] = "Sling"
    if node.arch is not None:
        out["Arch"] = node.arch
    out["Class"] = node.cls
    return out


class NodeJson(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`node_json(node)` as msgspec encodes it (the same fields in the same order; SubRole, NID
    and Arch left out when node_json leaves them out), made without a dict: an unfiltered
    component query (the power operators ask about every node of a session at each pass)
    built a dict per node, most of the query's cost in the simulator (issue 13)."""

    ID: str
    Type: str
    State: str
    Flag: str
    Enabled: bool
    Role: str
    SubRole: Optional[str] = None
    NID: Optional[int] = None
    NetType: str
    Arch: Optional[str] = None
    Class: str


def node_struct(node: "Node") -> NodeJson:
    return NodeJson(ID=node.xname, Type="Node", State=node.hsm_state, Flag="OK", Enabled=node.enabled,
                    Role=node.role, SubRole=node.subrole or None, NID=node.nid, NetType="Sling",
                    Arch=node.arch, Class=node.cls)


def node_entry(node: "Node") -> bytes:
    """`msgspec.json.encode(node_struct(node))`, kept until the node's power, boot or enabled flag
    changes (the only fields of it that change but through the control API, which drops it,
    control.py): the power operators and session setup ask about every node of a session, and
    an entry made and encoded anew per node per query was most of the HSM queries' cost (issue 13)."""
    memo = node.hsm_entry
    if memo is None or memo[0] != node.power or memo[1] != node.booted or memo[2] != node.enabled:
        memo = node.hsm_entry = (node.power, node.booted, node.enabled, ENCODE(node_struct(node)))
    return memo[3]


def other_json(comp: "OtherComponent") -> Dict[str, Any]:
    out: Dict[str, Any] = {"ID": comp.xname, "Type": comp.type, "State": "Ready", "Flag": "OK",
                           "Enabled": comp.enabled, "NetType": "Sling"}
    if comp.arch is not None:
        out["Arch"] = comp.arch
    out["Class"] = comp.cls
    return out


# --------------------------------------------------------------------------- filters

Predicate = Callable[[Dict[str, Any]], bool]


def _values(raw: Any) -> List[str]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    return [str(item) for item in items if str(item) != ""]


def _lowered_in(field_name: str, wanted: Set[str]) -> Predicate:
    return lambda comp: str(comp.get(field_name, "")).lower() in wanted


def _value_in(field_name: str, wanted: Set[Any], text: bool = False) -> Predicate:
    return lambda comp: (str(comp.get(field_name)) if text else comp.get(field_name)) in wanted


def component_filter(cluster: "Cluster", params: Dict[str, List[str]]) -> Predicate:
    """Filters of GET /State/Components and of the query body; values ORed, keys ANDed."""
    checks: List[Predicate] = []
    for key, field_name in (("type", "Type"), ("role", "Role"), ("subrole", "SubRole"), ("state", "State"),
                            ("arch", "Arch"), ("class", "Class")):
        wanted = {v.lower() for v in _values(params.get(key))}
        if wanted:
            checks.append(_lowered_in(field_name, wanted))
    enabled = [parse_bool(v, "enabled") for v in _values(params.get("enabled"))]
    if enabled:
        checks.append(EnabledIn(set(enabled)))
    for key, table in (("group", cluster.groups), ("partition", cluster.partitions)):
        labels = _values(params.get(key))
        if labels:
            members: Set[Any] = set().union(*(table[label].members for label in labels if label in table))
            checks.append(_value_in("ID", members))
    nids = _values(params.get("nid"))
    if nids:
        checks.append(_value_in("NID", set(nids), text=True))
    if len(checks) <= 1:  # the common queries (none, or `enabled` alone): no all() per component
        return checks[0] if checks else _anything
    return lambda comp: all(check(comp) for check in checks)


def _anything(comp: Dict[str, Any]) -> bool:
    return True


class EnabledIn:
    """The `enabled` filter (session setup's query), which components_answer applies to a node
    itself, without its dict."""

    def __init__(self, wanted: Set[Any]) -> None:
        self.wanted = wanted

    def __call__(self, comp: Dict[str, Any]) -> bool:
        return comp.get("Enabled") in self.wanted


def all_components(cluster: "Cluster") -> Iterator[Dict[str, Any]]:
    for node in cluster.nodes.values():
        yield node_json(node)
    for comp in cluster.others.values():
        yield other_json(comp)


def components_by_id(cluster: "Cluster", ids: Iterable[str]) -> Iterator[Dict[str, Any]]:
    for xname in dict.fromkeys(ids):
        node = cluster.nodes.get(xname)
        if node is not None:
            yield node_json(node)
        elif xname in cluster.others:
            yield other_json(cluster.others[xname])


def components_answer(cluster: "Cluster", ids: Optional[Iterable[str]], keep: Predicate) -> web.Response:
    """`{"Components": [...]}` of the components `ids` names (every one when None) that `keep`
    keeps. With no filter or the `enabled` filter alone (what the operators ask), each node is
    tested and encoded from its fields, through a NodeJson (no dict per node), once per change
    (node_entry)."""
    if keep is not _anything and not isinstance(keep, EnabledIn):
        source = components_by_id(cluster, ids) if ids is not None else all_components(cluster)
        return json_answer({"Components": [c for c in source if keep(c)]})
    wanted = keep.wanted if isinstance(keep, EnabledIn) else None
    nodes, others = cluster.nodes, cluster.others
    found: List[bytes] = []
    for xname in dict.fromkeys(ids) if ids is not None else [*nodes, *others]:
        node = nodes.get(xname)
        if node is not None:
            if wanted is None or node.enabled in wanted:
                found.append(node_entry(node))
        elif xname in others:
            other = other_json(others[xname])
            if keep(other):
                found.append(ENCODE(other))
    return entries_answer("Components", found)


def lock_json(node: "Node") -> Dict[str, Any]:
    out: Dict[str, Any] = {"ID": node.xname, "Locked": node.locked, "Reserved": False, "ReservationDisabled": False}
    if node.locked:
        out["CreatedTime"] = stamp(node.lock_time, nanos=False)
        out["ExpirationTime"] = stamp(node.lock_time + 3600, nanos=False)
    return out


# --------------------------------------------------------------------------- HTTP

def make_routes(cluster: "Cluster") -> List[web.RouteDef]:
    async def get_components(request: web.Request) -> web.Response:
        params = {key: request.query.getall(key) for key in request.query}
        ids = _values(params.pop("id", None))
        return components_answer(cluster, ids or None, component_filter(cluster, params))

    async def query_components(request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise SimError(400, "The request body must be a JSON object")
        ids = body.get("ComponentIDs")
        if not isinstance(ids, list) or not ids:
            raise SimError(400, "Missing IDs")
        keep = component_filter(cluster, {k: v for k, v in body.items() if k != "ComponentIDs"})
        return components_answer(cluster, map(str, ids), keep)

    async def get_component(request: web.Request) -> web.Response:
        found = list(components_by_id(cluster, [request.match_info["xname"]]))
        if not found:
            raise SimError(404, "no such xname.")
        return web.json_response(found[0])

    async def get_groups(request: web.Request) -> web.Response:
        labels = set(request.query.getall("group", []))
        tags = set(request.query.getall("tag", []))
        groups = [g for g in cluster.groups.values()
                  if (not labels or g.name in labels) and (not tags or tags & set(g.tags))]
        return web.json_response([g.group_json() for g in groups])

    async def get_group(request: web.Request) -> web.Response:
        return web.json_response(_named(cluster.groups, request.match_info["label"], "group").group_json())

    async def get_group_members(request: web.Request) -> web.Response:
        group = _named(cluster.groups, request.match_info["label"], "group")
        return web.json_response({"ids": list(group.members)})

    async def get_partitions(request: web.Request) -> web.Response:
        return web.json_response([p.partition_json() for p in cluster.partitions.values()])

    async def get_partition(request: web.Request) -> web.Response:
        return web.json_response(_named(cluster.partitions, request.match_info["name"], "partition").partition_json())

    async def lock_status(request: web.Request) -> web.Response:
        locked = parse_bool(request.query.get("locked"), "locked")
        reserved = parse_bool(request.query.get("reserved"), "reserved")
        disabled = parse_bool(request.query.get("reservationDisabled"), "reservationDisabled")
        params = {key: request.query.getall(key) for key in ("type", "role", "subrole", "state") if key in request.query}
        keep = component_filter(cluster, params)
        entries = []
        for node in cluster.nodes.values():
            if locked is not None and node.locked != locked:
                continue
            if reserved or disabled:  # the simulator has no reservations
                continue
            if params and not keep(node_json(node)):
                continue
            entries.append(lock_json(node))
        if not entries:
            return web.json_response({"Components": []})
        return web.json_response({"Components": entries, "NotFound": []})

    return [web.get(f"{BASE}/State/Components", get_components),
            web.post(f"{BASE}/State/Components/Query", query_components),
            web.get(f"{BASE}/State/Components/{{xname}}", get_component),
            web.get(f"{BASE}/groups", get_groups),
            web.get(f"{BASE}/groups/{{label}}", get_group),
            web.get(f"{BASE}/groups/{{label}}/members", get_group_members),
            web.get(f"{BASE}/partitions", get_partitions),
            web.get(f"{BASE}/partitions/{{name}}", get_partition),
            web.get(f"{BASE}/locks/status", lock_status)]


def _named(table: Dict[str, Group], name: str, kind: str) -> Group:
    group = table.get(name)
    if group is None:
        raise SimError(404, f"No such {kind}: {name}")
    return group
