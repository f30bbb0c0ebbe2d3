"""PCS (services.md §3): power status and fire-and-forget transitions.

Transition tasks are kept as small status codes per xname, and only the most
recent transitions are remembered, so a 100,000-node power-on does not leave
hundreds of megabytes of task records behind.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

import msgspec
from aiohttp import web

from bos_shared.xnames import is_valid_xname

from .determinism import seeded_uuid
from .httputil import ENCODE, SimError, entries_answer, json_answer, json_body, stamp

if TYPE_CHECKING:
    from .cluster import Cluster

OPERATIONS = {name.lower(): name for name in
              ("On", "Off", "Soft-Off", "Soft-Restart", "Hard-Restart", "Init", "Force-Off")}
SUPPORTED = ["On", "Force-Off", "Soft-Off", "Off", "Init", "Hard-Restart", "Soft-Restart"]
# Every power-status entry's list: one tuple, encoded as the same JSON array (no copy per node per answer).
SUPPORTED_LIST = tuple(SUPPORTED)
NOT_FOUND = "Component not found in component map."
TASK_STATES = ("new", "in-progress", "failed", "succeeded", "unsupported")
IN_PROGRESS, FAILED, SUCCEEDED, UNSUPPORTED = 1, 2, 3, 4
# Remembered transitions are evicted (oldest first) beyond these bounds.
MAX_TRANSITIONS = 500
MAX_TASKS = 400_000


class PowerStatus(msgspec.Struct):
    """A fault-free node's `status_entry` as msgspec encodes it (the same fields in the same
    order), made without a dict: each node's entry is encoded anew after every power change."""

    xname: str
    powerState: str
    managementState: str
    error: str
    supportedPowerTransitions: Tuple[str, ...]
    lastUpdated: str


class Transition:
    """One POST /transitions: a status code per xname, error texts only for failures."""

    def __init__(self, transition_id: str, operation: str, deadline_minutes: int) -> None:
        self.id = transition_id
        self.operation = operation
        self.deadline_minutes = deadline_minutes
        self.created = time.time()
        self.tasks: Dict[str, int] = {}
        self.notes: Dict[str, str] = {}

    def add(self, xname: str, state: int, note: str = "") -> None:
        self.tasks[xname] = state
        if note:
            self.notes[xname] = note

    def finish(self, xname: str, ok: bool, description: str) -> None:
        """Record a task's outcome; a task already final keeps its first outcome."""
        if self.tasks.get(xname) != IN_PROGRESS:
            return
        self.tasks[xname] = SUCCEEDED if ok else FAILED
        self.notes[xname] = description

    def expire(self) -> None:
        """The deadline passed: every task still running has failed."""
        for xname, state in self.tasks.items():
            if state == IN_PROGRESS:
                self.tasks[xname] = FAILED
                self.notes[xname] = f"Timed out waiting for {self.operation} to be confirmed"

    def counts(self) -> Dict[str, int]:
        counts = {"total": len(self.tasks), "new": 0, "in-progress": 0, "failed": 0, "succeeded": 0,
                  "un-supported": 0}
        for state in self.tasks.values():
            key = "un-supported" if state == UNSUPPORTED else TASK_STATES[state]
            counts[key] += 1
        return counts

    def describe(self, with_tasks: bool = True) -> Dict[str, Any]:
        counts = self.counts()
        running = counts["new"] + counts["in-progress"]
        out: Dict[str, Any] = {
            "transitionID": self.id, "operation": self.operation,
            "createTime": stamp(self.created, nanos=False),
            "automaticExpirationTime": stamp(self.created + 86400, nanos=False),
            "transitionStatus": "in-progress" if running else "completed",
            "taskCounts": counts}
        if with_tasks:
            out["tasks"] = [self._task(xname, state) for xname, state in self.tasks.items()]
        return out

    def _task(self, xname: str, state: int) -> Dict[str, Any]:
        task = {"xname": xname, "taskStatus": TASK_STATES[state],
                "taskStatusDescription": self.notes.get(xname, "Waiting for the power state to change")}
        if state == FAILED:
            task["error"] = self.notes.get(xname, "")
        return task


class PcsState:
    def __init__(self, cluster: "Cluster") -> None:
        self.cluster = cluster
        self.transitions: "OrderedDict[str, Transition]" = OrderedDict()
        self._count = 0

    def status_entry(self, xname: str) -> Dict[str, Any]:
        """One entry of the power-status answer (services.md §3.1)."""
        node = self.cluster.nodes.get(xname)
        if node is None:
            if xname in self.cluster.others:
                return _entry(xname, "on", "available", "", time.time())
            return _entry(xname, "", "", NOT_FOUND, None)
        if node.fault("missing_pcs"):
            return _entry(xname, "", "", NOT_FOUND, None)
        error = node.fault("pcs_error")
        if error:
            return _entry(xname, "", "unavailable", error, None)
        return _entry(xname, node.power, "available", "", node.power_time)

    def status_json(self, xname: str) -> bytes:
        """`status_entry(xname)` as JSON. A node without faults keeps its encoded entry until its
        power state or power time changes (nothing else in it can): the status operator asks
        about every node of a session at each look, and building and stamping each entry anew
        was most of the simulator's power-status cost at 100,000 nodes (issue 13). A node with
        faults (which the control API may change) is encoded anew each time."""
        node = self.cluster.nodes.get(xname)
        if node is None or node.faults is not None:
            return ENCODE(self.status_entry(xname))
        memo = node.pcs_status
        if memo is None or memo[0] != node.power or memo[1] != node.power_time:
            entry = PowerStatus(xname, node.power, "available", "", SUPPORTED_LIST, stamp(node.power_time))
            memo = node.pcs_status = (node.power, node.power_time, ENCODE(entry))
        return memo[2]

    def status_jsons(self, xnames: List[str]) -> List[bytes]:
        """`[self.status_json(x) for x in xnames]`, the memo of each node read in one loop (no call
        per node whose entry is current): the status operator asks about every node of a session
        at each look, 2,800 at a time (issue 13)."""
        nodes = self.cluster.nodes
        out: List[bytes] = []
        append = out.append
        for xname in xnames:
            node = nodes.get(xname)
            memo = node.pcs_status if node is not None and node.faults is None else None
            if memo is not None and memo[1] == node.power_time and memo[0] == node.power:  # type: ignore[union-attr]
                append(memo[2])
            else:
                append(self.status_json(xname))
        return out

    def transition(self, operation: str, xnames: List[str], deadline_minutes: int) -> Transition:
        self._count += 1
        transition = Transition(seeded_uuid(self.cluster.config.seed, "transition", self._count), operation,
                                deadline_minutes)
        for xname in dict.fromkeys(xnames):
            self._start_task(transition, xname)
        self._remember(transition)
        if deadline_minutes > 0:
            self.cluster.scheduler.call_later(deadline_minutes * 60.0, transition.expire)
        return transition

    def _start_task(self, transition: Transition, xname: str) -> None:
        node = self.cluster.nodes.get(xname)
        if node is None or node.fault("missing_pcs"):
            kind = UNSUPPORTED if xname in self.cluster.others else FAILED
            transition.add(xname, kind, "Component type is not supported" if kind == UNSUPPORTED else NOT_FOUND)
            return
        if node.fault("pcs_error"):
            transition.add(xname, FAILED, node.fault("pcs_error"))
            return
        if node.locked:
            transition.add(xname, FAILED, "Component is locked or reserved by another party")
            return
        transition.add(xname, IN_PROGRESS)
        self.cluster.engine.start(node, transition.operation, transition)

    def _remember(self, transition: Transition) -> None:
        self.transitions[transition.id] = transition
        total = sum(len(t.tasks) for t in self.transitions.values())
        while len(self.transitions) > 1 and (len(self.transitions) > MAX_TRANSITIONS or total > MAX_TASKS):
            _, oldest = self.transitions.popitem(last=False)
            total -= len(oldest.tasks)


def _entry(xname: str, power: str, management: str, error: str, updated: Optional[float]) -> Dict[str, Any]:
    return {"xname": xname, "powerState": power, "managementState": management, "error": error,
            "supportedPowerTransitions": SUPPORTED_LIST if not error else None,
            "lastUpdated": stamp(updated) if updated is not None else ""}


# --------------------------------------------------------------------------- validation

_VALID: Set[str] = set()  # xnames already found valid (a pure function of the text; bounded)
_VALID_MAX = 1_000_000


def check_xnames(xnames: List[str]) -> None:
    """Any syntactically invalid xname fails the whole request (services.md §3.1). The xnames
    found valid are remembered: the status operator asks about every node of a session at each
    look, and the regular expression per xname was a fiftieth of the simulator's CPU (issue 13)."""
    if _VALID.issuperset(xnames):  # the usual case, tested in C
        return
    unseen = [x for x in xnames if x not in _VALID]
    invalid = [x for x in unseen if not is_valid_xname(x)]
    if invalid:
        raise SimError(400, f"invalid xnames detected: {' '.join(invalid)}")
    if len(_VALID) + len(unseen) > _VALID_MAX:
        _VALID.clear()
    _VALID.update(unseen)


def _string_list(value: Any, what: str) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not set(map(type, value)) <= {str}:  # decoded JSON: str, not a subclass
        raise SimError(400, f"'{what}' must be a list of xnames")
    return value


def _filter(entries: List[Dict[str, Any]], power: Optional[str], management: Optional[str]) -> List[Dict[str, Any]]:
    if power:
        if power.lower() not in ("on", "off", "undefined"):
            raise SimError(400, f"invalid PowerStateFilter type: {power}")
        entries = [e for e in entries if e["powerState"] == power.lower()]
    if management:
        if management.lower() not in ("available", "unavailable"):
            raise SimError(400, f"invalid ManagementStateFilter type: {management}")
        entries = [e for e in entries if e["managementState"] == management.lower()]
    return entries


# --------------------------------------------------------------------------- HTTP

def make_routes(state: PcsState) -> List[web.RouteDef]:
    async def post_status(request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise SimError(400, "The request body must be a JSON object")
        return _status_answer(_string_list(body.get("xname"), "xname"), body.get("powerStateFilter"),
                              body.get("managementStateFilter"))

    async def get_status(request: web.Request) -> web.Response:
        return _status_answer(request.query.getall("xname", []), request.query.get("powerStateFilter"),
                              request.query.get("managementStateFilter"))

    def _status_answer(xnames: List[str], power: Optional[str], management: Optional[str]) -> web.Response:
        check_xnames(xnames)
        if not xnames:  # no filter: every component PCS manages
            xnames = sorted(state.cluster.nodes) + sorted(state.cluster.others)
        if power or management:
            return json_answer({"status": _filter([state.status_entry(x) for x in xnames], power, management)})
        return entries_answer("status", state.status_jsons(xnames))

    async def post_transition(request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise SimError(400, "The request body must be a JSON object")
        raw_op = body.get("operation")
        operation = OPERATIONS.get(raw_op.lower()) if isinstance(raw_op, str) else None
        if operation is None:
            raise SimError(400, f"invalid Operation type {raw_op if raw_op is not None else ''}")
        deadline = body.get("taskDeadlineMinutes", 5)
        if not isinstance(deadline, int) or isinstance(deadline, bool) or deadline < -1:
            raise SimError(400, "taskDeadlineMinutes must be an integer >= -1")
        xnames = _locations(body.get("location"))
        check_xnames(xnames)
        transition = state.transition(operation, xnames, deadline)
        return web.json_response({"transitionID": transition.id, "operation": operation},
                                 headers={"Location": f"../transitions/{transition.id}"})

    async def list_transitions(request: web.Request) -> web.Response:
        return web.json_response({"transitions": [t.describe(False) for t in state.transitions.values()]})

    async def get_transition(request: web.Request) -> web.Response:
        transition = state.transitions.get(request.match_info["id"])
        if transition is None:
            raise SimError(404, f"transition {request.match_info['id']} not found")
        return web.json_response(transition.describe())

    routes = []
    for prefix in ("", "/v1"):
        routes += [web.post(f"{prefix}/power-status", post_status),
                   web.get(f"{prefix}/power-status", get_status),
                   web.post(f"{prefix}/transitions", post_transition),
                   web.get(f"{prefix}/transitions", list_transitions),
                   web.get(f"{prefix}/transitions/{{id}}", get_transition)]
    return routes


def _locations(value: Any) -> List[str]:
    if not isinstance(value, list) or not value:
        raise SimError(400, "'location' must be a non-empty list of {\"xname\": ...} objects")
    xnames = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("xname"), str):
            raise SimError(400, "every location needs an 'xname' string")
        xnames.append(item["xname"])
    return xnames
