"""CFS v3 (services.md §5): component records, paging with `next`, filter PATCH, configuration.

Status is computed from a few fields instead of stored layer lists: `applied`
names the configuration whose layers are all applied ("" = no state), and
`last_failed` remembers that the latest attempt failed. Configuration attempts
are events on the shared scheduler, invalidated by bumping `gen`.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional

import msgspec
from aiohttp import web

from .determinism import jittered
from .httputil import ENCODE, SimError, csv_set, entries_answer, json_answer, json_body, parse_bool
from .scheduler import Scheduler

BASE = "/v3"
STATUSES = ("unconfigured", "failed", "pending", "configured")
PAGE_SIZE = 1000
MAX_CONFIG_NAME = 60
PATCH_FIELDS = ("enabled", "desired_config", "tags", "state", "retry_policy", "error_count")
_NO_TAGS: Dict[str, str] = {}  # encoded, never changed
_RESCHEDULING = frozenset(("enabled", "desired_config", "state", "retry_policy", "error_count"))  # patch keys


@dataclass
class Configuration:
    name: str
    fails: bool = False
    layers: List[Dict[str, Any]] = field(default_factory=list)

    def layer_list(self) -> List[Dict[str, Any]]:
        if self.layers:
            return self.layers
        commit = hashlib.sha1(self.name.encode()).hexdigest()
        return [{"name": f"{self.name}-site", "clone_url": "https://vcs.local/vcs/cray/csm-config-management.git",
                 "playbook": "site.yml", "commit": commit}]


class ComponentJson(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A component as `CfsStore.describe` (no details) gives it, encoded alike (the same fields in
    the same order, retry_policy only when set), made without a dict: the status operator reads
    every component of a session at each of its looks (issue 13)."""

    id: str
    desired_config: str
    enabled: bool
    error_count: int
    configuration_status: str
    tags: Dict[str, str]
    retry_policy: Optional[int] = None


class CfsComponent:
    """One CFS component. `listed` is its listing entry's JSON (CfsStore.listed_json), kept until
    a field it shows changes: every change goes through CfsStore (apply, node_booted, _attempt),
    which drops it."""

    __slots__ = ("id", "desired_config", "enabled", "error_count", "retry_policy", "tags", "applied",
                 "last_failed", "gen", "listed")

    def __init__(self, comp_id: str) -> None:
        self.id = comp_id
        self.desired_config = ""
        self.enabled = False
        self.error_count = 0
        self.retry_policy: Optional[int] = None
        self.tags: Optional[Dict[str, str]] = None
        self.applied = ""
        self.last_failed = False
        self.gen = 0
        self.listed: Optional[bytes] = None


@dataclass
class Query:
    """The filters of GET /components and of the PATCH filter form."""

    ids: Optional[set] = None
    status: Optional[set] = None
    enabled: Optional[bool] = None
    config_name: str = ""
    tags: Optional[Dict[str, str]] = None


class CfsStore:
    def __init__(self, scheduler: Scheduler, seed: int, jitter: float, delay: Callable[[], float],
                 retry_limit: int, hidden: Callable[[str], bool], reachable: Callable[[str], bool],
                 fails_for: Callable[[str], bool],
                 worked: Callable[[str, float, str], None] = lambda comp_id, seconds, step: None) -> None:
        self.scheduler = scheduler
        self.seed = seed
        self.jitter = jitter
        self.delay = delay
        self.retry_limit = retry_limit
        self.hidden = hidden
        self.reachable = reachable
        self.fails_for = fails_for
        self.worked = worked  # hardware_time.HardwareTime.done: each attempt's drawn delay
        self.components: Dict[str, CfsComponent] = {}
        self._order: List[str] = []
        self.configurations: Dict[str, Configuration] = {}
        self.attempts = 0

    # ----------------------------------------------------------------- records

    def add(self, comp_id: str) -> CfsComponent:
        comp = self.components.get(comp_id)
        if comp is None:
            comp = self.components[comp_id] = CfsComponent(comp_id)
            bisect.insort(self._order, comp_id)
        return comp

    def remove(self, comp_id: str) -> None:
        if self.components.pop(comp_id, None) is not None:
            index = bisect.bisect_left(self._order, comp_id)
            del self._order[index]

    def visible(self, comp_id: str) -> Optional[CfsComponent]:
        comp = self.components.get(comp_id)
        return None if comp is None or self.hidden(comp_id) else comp

    def limit_of(self, comp: CfsComponent) -> int:
        return comp.retry_policy if comp.retry_policy is not None else self.retry_limit

    def status(self, comp: CfsComponent) -> str:
        """services.md §5.3."""
        if not comp.desired_config:
            return "configured" if comp.applied else "unconfigured"
        if comp.applied == comp.desired_config:
            return "configured"
        if comp.last_failed and comp.error_count >= self.limit_of(comp):
            return "failed"
        return "pending"

    def describe(self, comp: CfsComponent, state_details: bool = False, config_details: bool = False) -> Dict[str, Any]:
        out: Dict[str, Any] = {"id": comp.id, "desired_config": comp.desired_config, "enabled": comp.enabled,
                               "error_count": comp.error_count, "configuration_status": self.status(comp),
                               "tags": dict(comp.tags or {})}
        if comp.retry_policy is not None:
            out["retry_policy"] = comp.retry_policy
        if state_details:
            out["state"] = self._state(comp)
        if config_details:
            config = self._config(comp.desired_config)
            out["desired_state"] = config.layer_list() if config and comp.desired_config else []
        return out

    def listed(self, comp: CfsComponent) -> "ComponentJson":
        """`describe(comp)` (no details) as msgspec encodes it, without the dict."""
        return ComponentJson(id=comp.id, desired_config=comp.desired_config, enabled=comp.enabled,
                             error_count=comp.error_count, configuration_status=self.status(comp),
                             tags=comp.tags or _NO_TAGS, retry_policy=comp.retry_policy)

    def listed_json(self, comp: CfsComponent) -> bytes:
        """`msgspec.json.encode(self.listed(comp))`, encoded once per change of the component: the
        status operator lists every component at each of its passes (16 listings per node in a
        100,000-node boot), and building, checking and encoding each entry anew was most of the
        simulator's CFS cost (issue 13)."""
        encoded = comp.listed
        if encoded is None:
            encoded = comp.listed = ENCODE(self.listed(comp))
        return encoded

    def _state(self, comp: CfsComponent) -> List[Dict[str, Any]]:
        layers: List[Dict[str, Any]] = []
        if comp.applied:
            layers += [dict(layer, status="applied", session_name=f"batcher-{comp.applied}")
                       for layer in self._config(comp.applied).layer_list()]
        if comp.last_failed and comp.desired_config:
            first = self._config(comp.desired_config).layer_list()[0]
            layers.append(dict(first, status="failed", session_name=f"batcher-{comp.desired_config}"))
        return layers

    def _config(self, name: str) -> Configuration:
        """Known configurations; unknown names configure successfully with one synthetic layer."""
        return self.configurations.get(name) or Configuration(name)

    # ----------------------------------------------------------------- queries

    def select(self, query: Query, after_id: str = "") -> Iterator[CfsComponent]:
        """Visible components matching `query`, in id order, after `after_id`."""
        ordered: Iterable[str]
        if query.ids is not None:  # sorted, then those after `after_id` (a slice, not a test per ID)
            chosen = sorted(query.ids)
            ordered = chosen[bisect.bisect_right(chosen, after_id):] if after_id else chosen
        else:  # the rest of the order, not a copy of it (a page reads its limit + 1 of them)
            order = self._order
            ordered = map(order.__getitem__, range(bisect.bisect_right(order, after_id) if after_id else 0, len(order)))
        components, hidden = self.components, self.hidden
        unfiltered = (query.enabled is None and not query.config_name and not query.tags
                      and query.status is None)  # by ID or everything: no test per component
        for comp_id in ordered:
            comp = components.get(comp_id)
            if comp is not None and not hidden(comp_id) and (unfiltered or self._matches(comp, query)):
                yield comp

    def _matches(self, comp: CfsComponent, query: Query) -> bool:
        if query.enabled is not None and comp.enabled != query.enabled:
            return False
        if query.config_name and comp.desired_config != query.config_name:
            return False
        if query.tags and any((comp.tags or {}).get(k) != v for k, v in query.tags.items()):
            return False
        return query.status is None or self.status(comp) in query.status

    # ----------------------------------------------------------------- changes

    def apply(self, comp: CfsComponent, patch: Mapping[str, Any]) -> None:
        """Apply a validated patch (§5.2 semantics) and (re)schedule configuration."""
        comp.listed = None
        if "enabled" in patch:
            comp.enabled = patch["enabled"]
        if "tags" in patch:
            tags = dict(comp.tags or {})
            for key, value in patch["tags"].items():
                if value == "":
                    tags.pop(key, None)
                else:
                    tags[key] = value
            comp.tags = tags or None
        if "retry_policy" in patch:
            comp.retry_policy = patch["retry_policy"]
        if "error_count" in patch:
            comp.error_count = patch["error_count"]
        if "desired_config" in patch:
            comp.desired_config = patch["desired_config"]
            comp.error_count = 0
        if "state" in patch:
            comp.applied, comp.last_failed, comp.error_count = "", False, 0
        if not _RESCHEDULING.isdisjoint(patch):  # no set made per component of a filter PATCH
            self._reschedule(comp)

    def node_booted(self, xname: str) -> None:
        """The node's CFS state reporter: enable the component and clear its state (§5.3)."""
        comp = self.visible(xname)
        if comp is not None:  # apply(comp, {"enabled": True, "state": []}), without the patch's dict and tests
            comp.listed = None
            comp.enabled = True
            comp.applied, comp.last_failed, comp.error_count = "", False, 0
            self._reschedule(comp)

    def _reschedule(self, comp: CfsComponent) -> None:
        comp.gen += 1
        if comp.enabled and self.status(comp) == "pending" and comp.error_count < self.limit_of(comp):
            delay = jittered(self.seed, self.delay(), self.jitter, "configure", comp.id, comp.gen)
            self.scheduler.call_later(delay, self._attempt, comp, comp.gen, delay)

    def _attempt(self, comp: CfsComponent, gen: int, delay: float) -> None:
        if comp.gen != gen or self.components.get(comp.id) is not comp:
            return
        if not comp.enabled or self.status(comp) != "pending" or not self.reachable(comp.id):
            return  # a node that is down is configured when it boots again (node_booted)
        self.attempts += 1
        self.worked(comp.id, delay, "configure")
        comp.listed = None
        if self._config(comp.desired_config).fails or self.fails_for(comp.id):
            comp.error_count += 1
            comp.last_failed = True
            self._reschedule(comp)
            return
        comp.applied, comp.last_failed = comp.desired_config, False


# --------------------------------------------------------------------------- validation

def parse_query(params: Mapping[str, Any]) -> Query:
    """Filters from query parameters or a PATCH `filters` object; "" means no filter."""
    status = csv_set(_str(params, "status"))
    if status is not None and not status <= set(STATUSES):
        raise SimError(400, f"Invalid status filter: {params.get('status')}; valid values are {', '.join(STATUSES)}")
    return Query(ids=csv_set(_str(params, "ids")), status=status,
                 enabled=_bool(params.get("enabled"), "enabled"),
                 config_name=_str(params, "config_name"), tags=_tags(_str(params, "tags")))


def _str(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SimError(400, f"'{key}' must be a string")
    return value


def _bool(value: Any, name: str) -> Optional[bool]:
    if value is None or isinstance(value, bool):
        return value
    return parse_bool(str(value), name)


def _tags(text: str) -> Optional[Dict[str, str]]:
    if not text:
        return None
    tags: Dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SimError(400, f"Invalid tags filter '{text}': use key=value,key2=value2")
        tags[key.strip()] = value.strip()
    return tags


def validate_patch(patch: Any) -> Dict[str, Any]:
    if not isinstance(patch, dict):
        raise SimError(400, "'patch' must be an object")
    clean = {key: patch[key] for key in PATCH_FIELDS if key in patch}
    if "enabled" in clean and not isinstance(clean["enabled"], bool):
        raise SimError(400, "'enabled' must be a boolean")
    if "desired_config" in clean:
        config = clean["desired_config"]
        if not isinstance(config, str):
            raise SimError(400, "'desired_config' must be a string")
        if len(config) > MAX_CONFIG_NAME:
            raise SimError(400, f"'{config}' is too long - 'desired_config' must be at most {MAX_CONFIG_NAME} characters")
    if "tags" in clean and not (isinstance(clean["tags"], dict)
                                and all(isinstance(v, str) for v in clean["tags"].values())):
        raise SimError(400, "'tags' must be an object of strings")
    if "state" in clean and clean["state"] != []:
        raise SimError(400, "The simulator only supports clearing 'state' with []")
    for key in ("retry_policy", "error_count"):
        if key in clean and (not isinstance(clean[key], int) or isinstance(clean[key], bool) or clean[key] < 0):
            raise SimError(400, f"'{key}' must be a non-negative integer")
    return clean


# --------------------------------------------------------------------------- HTTP

def make_routes(store: CfsStore) -> List[web.RouteDef]:
    async def list_components(request: web.Request) -> web.Response:
        query = parse_query(request.query)
        limit = _limit(request.query.get("limit"))
        state_details = bool(parse_bool(request.query.get("state_details"), "state_details"))
        config_details = bool(parse_bool(request.query.get("config_details"), "config_details"))
        after_id = request.query.get("after_id", "")
        found = store.select(query, after_id)
        page = [comp for _, comp in zip(range(limit), found)]
        more = next(found, None) is not None
        nxt = None
        if more and page:
            nxt = {"ids": request.query.get("ids", ""), "status": request.query.get("status", ""),
                   "enabled": query.enabled, "config_name": query.config_name, "state_details": state_details,
                   "config_details": config_details, "tags": request.query.get("tags", ""), "limit": limit,
                   "after_id": page[-1].id}
        if state_details or config_details:
            return json_answer({"components": [store.describe(c, state_details, config_details) for c in page],
                                "next": nxt})
        return entries_answer("components", [store.listed_json(c) for c in page], {"next": nxt})

    async def patch_components(request: web.Request) -> web.Response:
        body = await json_body(request)
        if isinstance(body, list):
            return web.json_response({"component_ids": _patch_list(store, body)})
        if not isinstance(body, dict) or "patch" not in body or not isinstance(body.get("filters", {}), dict):
            raise SimError(400, "Expected {\"patch\": {...}, \"filters\": {...}} or a list of components")
        patch = validate_patch(body["patch"])
        chosen = list(store.select(parse_query(body.get("filters") or {})))
        for comp in chosen:
            store.apply(comp, patch)
        return web.json_response({"component_ids": [comp.id for comp in chosen]})

    async def get_component(request: web.Request) -> web.Response:
        comp = _one(store, request.match_info["id"])
        state_details = bool(parse_bool(request.query.get("state_details"), "state_details"))
        config_details = bool(parse_bool(request.query.get("config_details"), "config_details"))
        return web.json_response(store.describe(comp, state_details, config_details))

    async def patch_component(request: web.Request) -> web.Response:
        comp = _one(store, request.match_info["id"])
        store.apply(comp, validate_patch(await json_body(request)))
        return web.json_response(store.describe(comp))

    async def put_component(request: web.Request) -> web.Response:
        patch = validate_patch(await json_body(request))
        comp = store.add(request.match_info["id"])
        store.apply(comp, patch)
        return web.json_response(store.describe(comp))

    async def delete_component(request: web.Request) -> web.Response:
        _one(store, request.match_info["id"])
        store.remove(request.match_info["id"])
        return web.Response(status=204)

    async def list_configurations(request: web.Request) -> web.Response:
        items = [_config_json(c) for _, c in sorted(store.configurations.items())]
        return web.json_response({"configurations": items, "next": None})

    async def get_configuration(request: web.Request) -> web.Response:
        config = store.configurations.get(request.match_info["name"])
        if config is None:
            raise SimError(404, f"Configuration {request.match_info['name']} could not be found")
        return web.json_response(_config_json(config))

    return [web.get(f"{BASE}/components", list_components),
            web.patch(f"{BASE}/components", patch_components),
            web.get(f"{BASE}/components/{{id}}", get_component),
            web.patch(f"{BASE}/components/{{id}}", patch_component),
            web.put(f"{BASE}/components/{{id}}", put_component),
            web.delete(f"{BASE}/components/{{id}}", delete_component),
            web.get(f"{BASE}/configurations", list_configurations),
            web.get(f"{BASE}/configurations/{{name}}", get_configuration)]


def _limit(text: Optional[str]) -> int:
    if text is None or text == "":
        return PAGE_SIZE
    if not text.isdigit() or int(text) < 1:
        raise SimError(400, f"Invalid limit '{text}': must be an integer >= 1")
    return int(text)


def _one(store: CfsStore, comp_id: str) -> CfsComponent:
    comp = store.visible(comp_id)
    if comp is None:
        raise SimError(404, f"Component {comp_id} could not be found")
    return comp


def _patch_list(store: CfsStore, items: List[Any]) -> List[str]:
    """The list form: every id must exist (404 otherwise), then all are patched."""
    plans = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise SimError(400, "Every list entry needs an 'id'")
        plans.append((_one(store, item["id"]), validate_patch(item)))
    for comp, patch in plans:
        store.apply(comp, patch)
    return [comp.id for comp, _ in plans]


def _config_json(config: Configuration) -> Dict[str, Any]:
    return {"name": config.name, "layers": config.layer_list(), "last_updated": "2024-05-01T12:00:00Z"}
