"""The live state of one simulated cluster, built from an `Inventory`.

Every fake service reads and changes this one object; the control API changes
it at run time. Cross-references (groups, tenants, BSS, CFS) are kept in step
when nodes are added or removed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional

from .bss import BssStore
from .cfs import CfsStore, Configuration
from .config import SimConfig
from .faults import NodeFaults, ServiceFaults, rate_faults
from .hardware_time import HardwareTime
from .hsm import Group
from .httputil import Recorder
from .ims import ImsStore
from .inventory import ComponentSpec, Inventory, NodeSpec, S3ObjectSpec
from .nodes import Node, NodeEngine
from .pcs import PcsState
from .reporting import Reporting
from .s3 import image_objects
from .scheduler import Scheduler
from .tapms import Tenant

LOG = logging.getLogger(__name__)

SERVICES = ("hsm", "pcs", "bss", "cfs", "ims", "s3", "tapms")


@dataclass(slots=True)
class OtherComponent:
    """A non-node HSM component (BMC, switch...): listed by HSM, powered "on" in PCS."""

    xname: str
    type: str
    enabled: bool
    arch: Optional[str]
    cls: str


class Cluster:
    def __init__(self, inventory: Inventory, config: SimConfig) -> None:
        self.config = config
        self.started = time.time()
        self.scheduler = Scheduler(config.speed)
        self.recorder = Recorder(config.record_limit, config.record_body_limit)
        self.service_faults = ServiceFaults()
        self.nodes: Dict[str, Node] = {}
        self.others: Dict[str, OtherComponent] = {}
        self.groups: Dict[str, Group] = {}
        self.partitions: Dict[str, Group] = {}
        self.tenants: Dict[str, Tenant] = {}
        self.hardware = HardwareTime()
        self.bss = BssStore(config.seed, self._nid_of, self._xname_of_nid)
        self.cfs = CfsStore(self.scheduler, config.seed, config.jitter, lambda: config.delay("configure"),
                            config.cfs_retry_limit, hidden=self._cfs_hidden, reachable=self._reachable,
                            fails_for=lambda xname: self._node_fault(xname, "fail_config"),
                            worked=self.hardware.done)
        self.ims = ImsStore()
        self.pcs = PcsState(self)
        self.engine = NodeEngine(self)
        self.reporting = Reporting(self)
        self.s3_objects: List[S3ObjectSpec] = []
        self._load(inventory)

    # ------------------------------------------------------------------ building

    def _load(self, inv: Inventory) -> None:
        for spec in inv.nodes:
            self.add_node(spec)
        for comp in inv.components:
            self.add_other(comp)
        for group in inv.groups:
            self.groups[group.label] = Group(group.label, group.description, list(group.tags), group.exclusive_group,
                                             dict.fromkeys(group.members))
        for part in inv.partitions:
            self.partitions[part.name] = Group(part.name, part.description, list(part.tags), None,
                                               dict.fromkeys(part.members))
        for tenant in inv.tenants:
            self.tenants[tenant.name] = Tenant(tenant.name, tenant.uuid, tenant.hsm_group, tenant.state,
                                               dict.fromkeys(tenant.xnames))
        for config in inv.configurations:
            self.cfs.configurations[config.name] = Configuration(config.name, config.fails, list(config.layers))
        for image in inv.images:
            self._add_image(image)
        self.s3_objects.extend(inv.s3_objects)

    def _add_image(self, image: Any) -> None:
        objects, manifest_etag = image_objects(image)
        self.s3_objects.extend(objects)
        record: Dict[str, Any] = {"id": image.id, "created": image.created, "name": image.name,
                                  "link": {"type": "s3", "path": f"s3://{objects[-1].bucket}/{objects[-1].key}",
                                           "etag": manifest_etag},
                                  "metadata": {}}
        if image.arch is not None:
            record["arch"] = image.arch
        self.ims.images[image.id] = record

    def add_node(self, spec: NodeSpec) -> Node:
        if spec.xname in self.nodes or spec.xname in self.others:
            raise ValueError(f"'{spec.xname}' already exists")
        node = Node(spec.xname, spec.nid, spec.role, spec.subrole, spec.arch, spec.enabled, spec.cls)
        node.locked = spec.locked
        node.lock_time = time.time() if spec.locked else 0.0
        node.power = spec.power
        node.faults = self._initial_faults(spec)
        self.nodes[spec.xname] = node
        self.cfs.add(spec.xname)
        return node

    def _initial_faults(self, spec: NodeSpec) -> Optional[NodeFaults]:
        chosen = rate_faults(self.config.seed, spec.xname, self.config.rates, self.config.pcs_error_text)
        if spec.faults is None:
            return chosen
        merged = NodeFaults.from_mapping(spec.faults.as_dict(), chosen)
        return merged if merged.any() else None

    def add_other(self, spec: ComponentSpec) -> None:
        if spec.xname in self.nodes or spec.xname in self.others:
            raise ValueError(f"'{spec.xname}' already exists")
        self.others[spec.xname] = OtherComponent(spec.xname, spec.type, spec.enabled, spec.arch, spec.cls)

    def remove(self, xname: str) -> bool:
        """Remove a node (or other component) everywhere; in-flight events become stale."""
        node = self.nodes.pop(xname, None)
        if node is not None:
            self.engine.set_power(node, "off")
            self.cfs.remove(xname)
            self.bss.delete([xname])
        elif self.others.pop(xname, None) is None:
            return False
        for table in (self.groups, self.partitions):
            for group in table.values():
                group.members.pop(xname, None)
        for tenant in self.tenants.values():
            tenant.xnames.pop(xname, None)
        return True

    # ------------------------------------------------------------------ look-ups

    def _nid_of(self, xname: str) -> Optional[int]:
        node = self.nodes.get(xname)
        return node.nid if node is not None else None

    def _xname_of_nid(self, nid: int) -> Optional[str]:
        return next((n.xname for n in self.nodes.values() if n.nid == nid), None)

    def _node_fault(self, xname: str, name: str) -> bool:
        node = self.nodes.get(xname)
        return bool(node is not None and node.fault(name))

    def _cfs_hidden(self, xname: str) -> bool:
        """Asked for every component of every CFS page (a fault-free node answers without a call)."""
        node = self.nodes.get(xname)
        return node is not None and node.faults is not None and node.faults.missing_cfs

    def _reachable(self, xname: str) -> bool:
        """CFS can only configure a node that is up (components that are not nodes always are)."""
        node = self.nodes.get(xname)
        return node is None or node.booted

    def nodes_with_faults(self) -> Dict[str, Dict[str, Any]]:
        return {x: n.faults.as_dict() for x, n in sorted(self.nodes.items()) if n.faults is not None}

    def select(self, ids: Optional[Iterable[str]]) -> List[Node]:
        if ids is None:
            return list(self.nodes.values())
        return [self.nodes[x] for x in ids if x in self.nodes]

    def summary(self) -> Dict[str, Any]:
        """Counts a progress display or a benchmark can poll cheaply."""
        power: Counter = Counter()
        pending: Counter = Counter()
        reports: Counter = Counter()
        booted = 0
        for node in self.nodes.values():
            power[node.power] += 1
            if node.pending:
                pending[node.pending] += 1
            if node.report_status:
                reports[node.report_status.split(":")[0]] += 1
            booted += node.booted
        cfs = Counter(self.cfs.status(c) for c in self.cfs.components.values())
        return {"nodes": len(self.nodes), "power": dict(power), "pending": dict(pending), "booted": booted,
                "reports": dict(reports), "cfs": dict(cfs), "cfs_attempts": self.cfs.attempts,
                "scheduler": {"pending": self.scheduler.pending(), "processed": self.scheduler.processed},
                "speed": self.scheduler.speed, "requests": dict(self.recorder.counts),
                "uptime": round(time.time() - self.started, 3)}
