"""In-memory stand-ins for the services, recording every call in order.

They implement exactly the client methods the operators call, so operator
logic (order of calls, error isolation, patches) is tested without HTTP.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from bos_server.clients.bos import check_patch_invariant
from bos_server.clients.rest import ServiceError, ServiceUnavailable
from bos_server.clients.tapms import TenantNotFound
from bos_server.store import keys
from bos_server.store.component_query import POWER_OFF_CALLED, stamp_score
from bos_shared.options import DEFAULTS
from bos_shared.status import status_view


class Calls(list):
    def names(self) -> List[str]:
        return [c[0] for c in self]


def fail(service: str, status: int = 500) -> ServiceError:
    cls = ServiceUnavailable if status >= 500 else ServiceError
    return cls(service, "POST", f"http://{service}/x", f"status {status}: boom", status, {"detail": "boom"})


def fingerprint(record: dict) -> int:
    """The fake store's record fingerprint: changes with any field (BosClient.fingerprints)."""
    return hash(json.dumps(record, sort_keys=True, default=str))


class FakeBos:
    """A tiny BOS: component and session records, list filters, list-form PATCH merge."""

    def __init__(self, calls: Calls, components: Iterable[dict] = (), sessions: Iterable[dict] = (),
                 templates: Optional[Dict[str, dict]] = None) -> None:
        self.calls = calls
        self.components: Dict[str, dict] = {c["id"]: c for c in components}
        self.sessions: List[dict] = list(sessions)
        self.templates = templates or {}
        self.options = dict(DEFAULTS)
        self.fail_patch: Optional[Exception] = None
        self.fail_template: Optional[Exception] = None
        # The store's write feed (store/write_feed.py), when a test turns it on: the IDs of each
        # write through this client (a test's direct change of a record is not in it).
        self.feed: Optional[List[List[str]]] = None
        # Records the store's power-off score index lacks (written by an older version, a test says
        # which): left out of power_off_due, named by missing_from_power_off_index.
        self.unindexed: Set[str] = set()

    async def get_options(self) -> dict:
        return dict(self.options)

    def _match(self, comp: dict, filters: Mapping[str, Any]) -> bool:
        if "enabled" in filters and bool(comp.get("enabled")) != filters["enabled"]:
            return False
        if "status" in filters and status_view(comp)["status"] not in filters["status"].split(","):
            return False
        if "session" in filters and comp.get("session") != filters["session"]:
            return False
        if "staged_session" in filters and (comp.get("staged_state") or {}).get("session") != filters["staged_session"]:
            return False
        return True

    def _select(self, filters: Mapping[str, Any]) -> List[dict]:
        ids = set(filters["ids"].split(",")) if "ids" in filters else None
        return [c for i, c in sorted(self.components.items())
                if (ids is None or i in ids) and self._match(c, filters)]

    async def list_components(self, page_size: int, **filters: Any) -> List[dict]:
        self.calls.append(("bos.list_components", filters))
        return self._select(filters)

    async def component_page(self, page_size: int, start_after_id: Optional[str] = None,
                             **filters: Any) -> List[dict]:
        self.calls.append(("bos.component_page", start_after_id, filters))
        found = [c for c in self._select(filters) if start_after_id is None or c["id"] > start_after_id]
        return found[:page_size] if page_size > 0 else found

    async def components_by_ids(self, ids: Sequence[str], **filters: Any) -> List[dict]:
        self.calls.append(("bos.components_by_ids", list(ids), filters))
        return self._select({**filters, "ids": ",".join(ids)})

    async def acting_records(self, ids: Sequence[str], **filters: Any) -> List[dict]:
        return await self.components_by_ids(ids, **filters)  # the whole records: what the power operators read of them

    async def components_with_prints(self, ids: Sequence[str], **filters: Any):
        found = await self.components_by_ids(ids, **filters)
        return found, {c["id"]: fingerprint(c) for c in found}

    async def enabled_ids_in(self, statuses: Sequence[str]) -> List[str]:
        self.calls.append(("bos.enabled_ids_in", list(statuses)))
        return [c["id"] for c in self._select({"enabled": True, "status": ",".join(statuses)})]

    async def action_stamps(self, ids: Sequence[str]) -> Dict[str, Optional[str]]:
        self.calls.append(("bos.action_stamps", list(ids)))
        return {i: (self.components[i].get("last_action") or {}).get("last_updated")
                for i in ids if i in self.components}

    def _power_off_called(self) -> Dict[str, float]:
        """The power-off score index (store/component_query.scored_indexes): ID -> score."""
        return {c["id"]: stamp_score((c.get("last_action") or {}).get("last_updated"))
                for c in self._select({"enabled": True, "status": ",".join(POWER_OFF_CALLED)})}

    async def power_off_due(self, cutoff: float) -> Tuple[List[str], Optional[float]]:
        self.calls.append(("bos.power_off_due", cutoff))
        indexed = {i: score for i, score in self._power_off_called().items() if i not in self.unindexed}
        later = [score for score in indexed.values() if score >= cutoff]
        return sorted(i for i, score in indexed.items() if score < cutoff), min(later) if later else None

    async def missing_from_power_off_index(self) -> List[str]:
        self.calls.append(("bos.missing_from_power_off_index",))
        return sorted(i for i in self._power_off_called() if i in self.unindexed)

    async def fingerprints(self, ids: Sequence[str]) -> List[Optional[int]]:
        self.calls.append(("bos.fingerprints", list(ids)))
        return [fingerprint(self.components[i]) if i in self.components else None for i in ids]

    async def written_since(self, last: Optional[str]) -> Tuple[Optional[str], Optional[Set[str]]]:
        if self.feed is None:
            return None, None
        return str(len(self.feed)), None if last is None else {i for ids in self.feed[int(last):] for i in ids}

    async def component_ids(self, page_size: int) -> List[str]:
        self.calls.append(("bos.component_ids", page_size))
        return sorted(self.components)

    async def iter_component_pages(self, page_size: int, **filters: Any):
        yield await self.list_components(page_size, **filters)

    async def any_component(self, **filters: Any) -> Optional[dict]:
        found = await self.list_components(1, **filters)
        return found[0] if found else None

    async def any_matches(self, **filters: Any) -> bool:
        return await self.any_component(**filters) is not None

    async def patch_components(self, patches: Sequence[Mapping[str, Any]], batch_size: int = 0,
                               skip_bad_ids: bool = False) -> List[str]:
        check_patch_invariant(patches)
        self.calls.append(("bos.patch_components", [dict(p) for p in patches]))
        if self.fail_patch is not None:
            raise self.fail_patch
        out = []
        for patch in patches:
            comp = self.components.get(patch["id"])
            if comp is None:
                if skip_bad_ids:
                    continue
                raise ServiceError("bos", "PATCH", "/components", "status 404", 404)
            merge(comp, patch)
            out.append(comp["id"])
        if self.feed is not None:
            self.feed.append(out)
        return out

    async def create_components(self, records: Sequence[Mapping[str, Any]]) -> List[str]:
        self.calls.append(("bos.create_components", [r["id"] for r in records]))
        created = [dict(r) for r in records if r["id"] not in self.components]
        self.components.update({r["id"]: r for r in created})
        return [r["id"] for r in created]

    async def list_sessions(self, status: Optional[str] = None) -> List[dict]:
        self.calls.append(("bos.list_sessions", status))
        return [s for s in self.sessions if status is None or s["status"]["status"] == status]

    async def session_heads(self, status: Optional[str] = None) -> List[dict]:
        return await self.list_sessions(status)

    async def session_names(self, status: Optional[str] = None) -> List[Tuple[Optional[str], str]]:
        self.calls.append(("bos.session_names", status))  # from the indexes: no session record read
        return [(s.get("tenant") or None, s["name"]) for s in self.sessions
                if status is None or s["status"]["status"] == status]

    async def get_template(self, name: str, tenant: Optional[str]) -> dict:
        self.calls.append(("bos.get_template", name, tenant))
        if self.fail_template is not None:
            raise self.fail_template
        if (tenant, name) not in self.templates:
            raise ServiceError("bos", "GET", f"/sessiontemplates/{name}", "status 404", 404,
                               {"detail": f"Session template '{name}' does not exist"})
        return self.templates[(tenant, name)]

    def session(self, name: str, tenant: Optional[str]) -> dict:
        return next(s for s in self.sessions if s["name"] == name and s.get("tenant") == tenant)

    async def get_session(self, name: str, tenant: Optional[str]) -> dict:
        self.calls.append(("bos.get_session", name, tenant))
        return self.session(name, tenant)

    async def patch_session(self, name: str, tenant: Optional[str], body: Mapping[str, Any]) -> dict:
        self.calls.append(("bos.patch_session", name, tenant, dict(body)))
        record = self.session(name, tenant)
        record["status"].update(body.get("status") or {})
        if "components" in body:
            record["components"] = body["components"]
        return record

    async def save_session_status(self, name: str, tenant: Optional[str]) -> dict:
        self.calls.append(("bos.save_session_status", name, tenant))
        return {}

    async def delete_sessions(self, status: str, min_age: str) -> None:
        self.calls.append(("bos.delete_sessions", status, min_age))


def merge(record: dict, patch: Mapping[str, Any]) -> None:
    """Enough of api.md §2.5 for the fakes: nested objects shallow-merged, others replaced."""
    for key, value in patch.items():
        if key == "id":
            continue
        if isinstance(value, dict) and isinstance(record.get(key), dict):
            record[key].update(value)
        else:
            record[key] = value


class FakeHsm:
    def __init__(self, calls: Calls, nodes: Iterable[dict] = (), groups: Optional[dict] = None,
                 partitions: Optional[dict] = None, locked: Iterable[str] = ()) -> None:
        self.calls = calls
        self.nodes = {n["ID"]: n for n in nodes}
        self._groups = groups or {}
        self._partitions = partitions or {}
        self._locked = set(locked)
        self.fail: Optional[Exception] = None

    async def all_components(self) -> List[dict]:
        self.calls.append(("hsm.all_components",))
        return list(self.nodes.values())

    async def query(self, ids: Iterable[str], enabled_only: bool = False) -> List[dict]:
        ids = sorted(set(ids))
        self.calls.append(("hsm.query", ids, enabled_only))
        if self.fail is not None:
            raise self.fail
        return [self.nodes[i] for i in ids if i in self.nodes
                and (not enabled_only or self.nodes[i].get("Enabled", True))]

    async def existing(self, ids: Iterable[str]) -> set:
        return {c["ID"] for c in await self.query(ids)}

    async def groups(self) -> dict:
        self.calls.append(("hsm.groups",))
        return self._groups

    async def partitions(self) -> dict:
        self.calls.append(("hsm.partitions",))
        return self._partitions

    async def locked_nodes(self) -> set:
        self.calls.append(("hsm.locked_nodes",))
        return set(self._locked)


class FakeTapms:
    def __init__(self, calls: Calls, tenants: Optional[Dict[str, Iterable[str]]] = None) -> None:
        self.calls = calls
        self.tenants = {k: frozenset(v) for k, v in (tenants or {}).items()}

    async def tenant_xnames(self, tenant: str) -> FrozenSet[str]:
        self.calls.append(("tapms.tenant_xnames", tenant))
        if tenant not in self.tenants:
            raise TenantNotFound(tenant)
        return self.tenants[tenant]


class FakePcs:
    def __init__(self, calls: Calls, power: Optional[Dict[str, str]] = None, chunk: int = 5000) -> None:
        self.calls = calls
        self.power = power or {}
        self.chunk = chunk
        self.fail_ops: Set[str] = set()
        self.fail_ids: Set[str] = set()

    async def power_status(self, ids: Sequence[str]) -> Dict[str, str]:
        self.calls.append(("pcs.power_status", list(ids)))
        if "status" in self.fail_ops:
            raise fail("pcs")
        return {i: self.power[i] for i in ids if self.power.get(i)}

    def batches(self, ids: Sequence[str]) -> List[Sequence[str]]:
        return [ids[i:i + self.chunk] for i in range(0, len(ids), self.chunk)]

    async def transition(self, operation: str, ids: Iterable[str]) -> str:
        ids = list(ids)
        self.calls.append(("pcs.transition", operation, ids))
        if operation in self.fail_ops or self.fail_ids & set(ids):
            raise fail("pcs")
        return "t-1"


class FakeBss:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.counter = itertools.count(1)
        self.fail_kernels: Set[str] = set()

    async def set_boot_parameters(self, hosts: Sequence[str], params: str, kernel: str, initrd: str) -> str:
        self.calls.append(("bss.put", list(hosts), kernel))
        if kernel in self.fail_kernels:
            raise fail("bss")
        return f"token-{next(self.counter)}"


class FakeCfs:
    def __init__(self, calls: Calls, records: Optional[Dict[str, dict]] = None) -> None:
        self.calls = calls
        self.records = records if records is not None else {}
        self.fail_configs: Set[str] = set()

    async def all_components(self, fields: Optional[Sequence[str]] = None) -> Dict[str, dict]:
        self.calls.append(("cfs.all_components",))
        return dict(self.records)

    async def components(self, ids: Iterable[str], fields: Optional[Sequence[str]] = None) -> Dict[str, dict]:
        ids = sorted(set(ids))
        self.calls.append(("cfs.components", ids))
        return {i: self.records[i] for i in ids if i in self.records}

    @staticmethod
    def patch_batches(ids: Sequence[str]) -> List[Sequence[str]]:
        return [ids[i:i + 1000] for i in range(0, len(ids), 1000)]

    async def patch_batch(self, ids: Sequence[str], patch: Mapping[str, Any]) -> List[str]:
        self.calls.append(("cfs.patch", list(ids), dict(patch)))
        if patch.get("desired_config") in self.fail_configs:
            raise fail("cfs")
        return [i for i in ids if i in self.records]


class FakeIms:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.fail_images: Set[str] = set()

    async def tag_sbps(self, image_id: str) -> None:
        self.calls.append(("ims.tag", image_id))
        if image_id in self.fail_images:
            raise fail("ims", 404)


class FakeRedis:
    """What put_token uses (a transactional pipeline with set/zadd) and the action fence."""

    def __init__(self, calls: Calls, components: Optional[Dict[str, dict]] = None) -> None:
        self.calls = calls
        self.failures = 0
        self.tokens: Dict[str, Any] = {}
        self.acting: Dict[str, float] = {}
        self.components = components if components is not None else {}  # the fake BOS's records
        self.strings: Dict[str, Any] = {}  # plain keys (session setup's begun marker)

    async def set(self, key: str, value: Any, ex: Optional[int] = None, get: bool = False) -> Any:
        before = self.strings.get(key)
        self.strings[key] = value
        return before if get else True

    async def zrange(self, key: str, lower: bytes, upper: bytes, bylex: bool = False,
                     offset: Optional[int] = None, num: Optional[int] = None) -> List[bytes]:
        """The enabled-components index (store/component_query.py enabled_page), from the fake BOS."""
        assert key == keys.COMPONENT_ENABLED and bylex and upper == b"+"
        after = None if lower == b"-" else lower[1:].decode()
        self.calls.append(("redis.enabled_page", after))
        found = [i.encode() for i, c in sorted(self.components.items())
                 if c.get("enabled") is True and (after is None or i > after)]
        return found[:num] if num else found

    async def zmscore(self, key: str, members: Sequence[str]) -> List[Optional[float]]:
        """The enabled index's score of each member (None: not enabled), from the fake BOS."""
        assert key == keys.COMPONENT_ENABLED
        self.calls.append(("redis.zmscore", list(members)))
        return [0.0 if (self.components.get(m) or {}).get("enabled") is True else None for m in members]

    async def zadd(self, key: str, mapping: dict) -> None:
        self.acting.update(mapping)

    async def zcard(self, key: str) -> int:
        """The number of components (keys.COMPONENT_IDS), from the fake BOS."""
        assert key == keys.COMPONENT_IDS
        self.calls.append(("redis.zcard", key))
        return len(self.components)

    async def zrem(self, key: str, member: str) -> None:
        self.acting.pop(member, None)

    def pipeline(self, transaction: bool = True) -> "FakePipeline":
        return FakePipeline(self)


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.ops: List[tuple] = []

    async def __aenter__(self) -> "FakePipeline":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    def set(self, key: str, value: Any) -> None:
        self.ops.append(("set", key, value))

    def zadd(self, key: str, mapping: dict) -> None:
        self.ops.append(("zadd", key, mapping))

    async def execute(self) -> None:
        if self.redis.failures > 0:
            self.redis.failures -= 1
            raise ConnectionError("redis down")
        for op in self.ops:
            if op[0] == "set":
                token = op[1].split(":")[-1]
                self.redis.tokens[token] = op[2]
                self.redis.calls.append(("redis.token", token))


class FakeServices:
    def __init__(self, **kw: Any) -> None:
        self.calls = Calls()
        self.bos = FakeBos(self.calls, kw.get("components", ()), kw.get("sessions", ()), kw.get("templates"))
        self.hsm = FakeHsm(self.calls, kw.get("nodes", ()), kw.get("groups"), kw.get("partitions"),
                           kw.get("locked", ()))
        self.pcs = FakePcs(self.calls, kw.get("power"))
        self.bss = FakeBss(self.calls)
        self.cfs = FakeCfs(self.calls, kw.get("cfs"))
        self.ims = FakeIms(self.calls)
        self.tapms = FakeTapms(self.calls, kw.get("tenants"))
        self.s3 = kw.get("s3")
        self.redis = FakeRedis(self.calls, self.bos.components)


def node(xname: str, arch: Optional[str] = "X86", enabled: bool = True, role: str = "Compute",
         subrole: Optional[str] = None) -> dict:
    entry = {"ID": xname, "Type": "Node", "Enabled": enabled, "Role": role}
    if arch is not None:
        entry["Arch"] = arch
    if subrole:
        entry["SubRole"] = subrole
    return entry
