"""Simulated nodes: compact per-node state and the power/boot life cycle (services.md §3.4, §9.2).

A node is one `__slots__` object (about 200 bytes); every delay is an event on
the shared `Scheduler`, never a task of its own. `pgen` (power generation) is
bumped by every power change, so events of a superseded transition or of an
ended boot find a different generation and do nothing. Reports belong to one
boot, identified by `boot_count`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Protocol, Tuple

from .bss import BssEntry
from .determinism import jittered, seeded_uuid
from .faults import NodeFaults

if TYPE_CHECKING:
    from .cluster import Cluster


class TaskSink(Protocol):
    """Where a node reports the outcome of its part of a PCS transition."""

    def finish(self, xname: str, ok: bool, description: str) -> None: ...


class Node:
    __slots__ = ("xname", "nid", "role", "subrole", "arch", "enabled", "locked", "lock_time", "cls",
                 "power", "power_time", "pending", "pgen", "boot", "boot_count", "booted", "task",
                 "report_status", "reported_token", "report_attempts", "reports", "faults", "booted_time",
                 "pcs_status", "hsm_entry")

    def __init__(self, xname: str, nid: Optional[int], role: str = "Compute", subrole: Optional[str] = None,
                 arch: Optional[str] = "X86", enabled: bool = True, cls: str = "River") -> None:
        self.xname = xname
        self.nid = nid
        self.role = role
        self.subrole = subrole
        self.arch = arch
        self.enabled = enabled
        self.locked = False
        self.lock_time = 0.0
        self.cls = cls
        self.power = "off"
        self.power_time = time.time()
        self.pending = ""            # powering_on | booting | powering_off | ""
        self.pgen = 0
        self.boot: Optional[BssEntry] = None   # BSS entry snapshot taken at power-on
        self.boot_count = 0
        self.booted = False
        self.task: Optional[TaskSink] = None
        self.report_status = ""
        self.reported_token = ""
        self.report_attempts = 0
        self.reports = 0
        self.faults: Optional[NodeFaults] = None
        self.booted_time: Optional[float] = None  # when the last boot finished (wave measurements)
        self.pcs_status: Optional[Tuple[str, float, bytes]] = None  # pcs.PcsState.status_json's memo
        self.hsm_entry: Optional[Tuple[str, bool, bool, bytes]] = None  # hsm.node_entry's memo

    def fault(self, name: str) -> Any:
        return getattr(self.faults, name) if self.faults is not None else False

    @property
    def hsm_state(self) -> str:
        if self.power != "on":
            return "Off"
        return "Ready" if self.booted else "On"


class NodeEngine:
    """Drives power transitions and boots of every node on the shared scheduler."""

    def __init__(self, cluster: "Cluster") -> None:
        self.cluster = cluster
        self.scheduler = cluster.scheduler
        self.config = cluster.config

    def _delay(self, kind: str, node: Node) -> float:
        return jittered(self.config.seed, self.config.delay(kind), self.config.jitter, kind, node.xname, node.pgen)

    # ------------------------------------------------------------------ PCS operations

    def start(self, node: Node, operation: str, task: TaskSink) -> None:
        """Begin `operation` (canonical PCS name) on `node`; `task` hears the outcome."""
        if operation == "On":
            self._on(node, task)
        elif operation == "Soft-Off":
            self._off(node, task, graceful=True)
        elif operation in ("Off", "Force-Off"):
            self._off(node, task, graceful=False)
        elif operation == "Soft-Restart":
            self._off(node, task, graceful=True, then_on=True)
        else:  # Hard-Restart, Init
            self._off(node, task, graceful=False, then_on=True)

    def _supersede(self, node: Node) -> None:
        if node.task is not None:
            node.task.finish(node.xname, False, "Superseded by a newer transition")
            node.task = None

    def _on(self, node: Node, task: TaskSink) -> None:
        if node.power == "on":
            if node.pending == "powering_off":
                self._cancel_power_off(node)
            task.finish(node.xname, True, "Transition confirmed, on")
            return
        self._supersede(node)
        node.pgen += 1
        node.pending, node.task = "powering_on", task
        self.cluster.hardware.mark("On reached the node")
        delay = self._delay("power_on", node)
        self.scheduler.call_later(delay, self._powered_on, node, node.pgen, task, delay)

    def _cancel_power_off(self, node: Node) -> None:
        """An On overtakes a pending power-off: the node simply keeps running."""
        self._supersede(node)
        node.pgen += 1
        node.pending = ""
        if node.boot is not None and not node.booted:
            node.pending = "booting"
            delay = self._delay("boot", node)
            self.scheduler.call_later(delay, self._booted, node, node.pgen, delay)

    def _powered_on(self, node: Node, gen: int, task: TaskSink, delay: float) -> None:
        if gen != node.pgen:
            return
        self.cluster.hardware.done(node.xname, delay, "power_on")
        node.task = None
        if node.fault("fail_power_on"):
            node.pending = ""
            task.finish(node.xname, False, "Failed to power on: the node did not respond")
            return
        self.turn_on(node)
        task.finish(node.xname, True, "Transition confirmed, on")

    def _off(self, node: Node, task: TaskSink, graceful: bool, then_on: bool = False) -> None:
        if node.power == "off" and node.pending != "powering_on":
            if then_on:
                self._on(node, task)
            else:
                task.finish(node.xname, True, "Transition confirmed, off")
            return
        if graceful and node.fault("ignore_soft_off"):
            return  # the OS ignores the request; the task fails at the transition deadline
        self._supersede(node)
        node.pgen += 1
        node.pending, node.task = "powering_off", task
        step = "soft_off" if graceful else "force_off"
        self.cluster.hardware.mark(f"{step} reached the node")
        delay = self._delay(step, node)
        self.scheduler.call_later(delay, self._powered_off, node, node.pgen, task, then_on, delay, step)

    def _powered_off(self, node: Node, gen: int, task: TaskSink, then_on: bool, delay: float,
                     step: str = "power_off") -> None:
        if gen != node.pgen:
            return
        self.cluster.hardware.done(node.xname, delay, step)
        node.task = None
        self.turn_off(node)
        if then_on:
            self._on(node, task)
        else:
            task.finish(node.xname, True, "Transition confirmed, off")

    # ------------------------------------------------------------------ state changes

    def turn_on(self, node: Node) -> None:
        """The node has power: snapshot its BSS entry now and boot it, if it has a kernel."""
        node.power, node.power_time = "on", time.time()
        node.booted, node.pending = False, ""
        node.boot_count += 1
        entry = self.cluster.bss.hosts.get(node.xname)
        if entry is None or not entry.kernel or node.fault("fail_boot"):
            node.boot = None  # stays on without booting
            return
        node.boot, node.pending = entry, "booting"
        delay = self._delay("boot", node)
        self.scheduler.call_later(delay, self._booted, node, node.pgen, delay)

    def _booted(self, node: Node, gen: int, delay: float) -> None:
        if gen != node.pgen or node.power != "on":
            return
        self.cluster.hardware.done(node.xname, delay, "boot")
        node.pending, node.booted = "", True
        node.booted_time = time.time()
        self.cluster.reporting.node_booted(node, node.boot_count)
        # The CFS state reporter is a separate node service: it runs whether or not BOS accepts the report.
        self.cluster.cfs.node_booted(node.xname)

    def turn_off(self, node: Node) -> None:
        """Power is gone: the running boot (and its reporter) ends."""
        node.power, node.power_time = "off", time.time()
        node.pending, node.booted, node.boot = "", False, None

    def set_power(self, node: Node, power: str) -> None:
        """Control API: change power at once, cancelling anything in flight."""
        self._supersede(node)
        node.pgen += 1
        if power == "on":
            self.turn_on(node)
        else:
            self.turn_off(node)

    # ------------------------------------------------------------------ observation

    def join_token(self, node: Node) -> str:
        return seeded_uuid(self.config.seed, "spire", node.xname, node.boot_count)

    def cmdline(self, node: Node) -> str:
        """The node's /proc/cmdline while booted ("" otherwise), rendered from the power-on snapshot."""
        if not node.booted or node.boot is None:
            return ""
        override = node.fault("boot_cmdline")
        if override:
            return override
        return self.cluster.bss.cmdline(node.xname, node.boot, self.join_token(node))

    def describe(self, node: Node) -> Dict[str, Any]:
        cfs = self.cluster.cfs.components.get(node.xname)
        return {"xname": node.xname, "nid": node.nid, "role": node.role, "subrole": node.subrole,
                "arch": node.arch, "enabled": node.enabled, "locked": node.locked,
                "power": node.power, "pending": node.pending, "booted": node.booted,
                "boot_count": node.boot_count, "booted_time": node.booted_time, "cmdline": self.cmdline(node),
                "report_status": node.report_status, "reported_token": node.reported_token,
                "reports": node.reports,
                "cfs": None if cfs is None else {"desired_config": cfs.desired_config, "enabled": cfs.enabled,
                                                 "error_count": cfs.error_count,
                                                 "configuration_status": self.cluster.cfs.status(cfs)},
                "faults": node.faults.as_dict() if node.faults else {}}
