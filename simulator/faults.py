"""Fault injection (services.md §9.3): per-node misbehaviour and per-service failures.

Rates pick faulty nodes with `determinism.chance`, so the same seed gives the
same faulty nodes on every run, whatever order requests arrive in.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Iterable, List, Mapping, Optional

from .config import RATE_FAULTS
from .determinism import chance


@dataclass(slots=True)
class NodeFaults:
    """How one node misbehaves. Most nodes have none (and then no object at all)."""

    ignore_soft_off: bool = False      # Soft-Off is ignored; the PCS task fails at its deadline
    fail_power_on: bool = False        # On never takes effect; the PCS task fails
    pcs_error: str = ""                # power-status reports this error text instead of a state
    missing_pcs: bool = False          # PCS does not know the node ("Component not found ...")
    missing_cfs: bool = False          # CFS has no record for the node
    boot_cmdline: str = ""             # boots to this command line instead of the rendered one
    fail_boot: bool = False            # powers on but never boots (no report, no CFS step)
    fail_config: bool = False          # every CFS configuration attempt fails

    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> Dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: Optional["NodeFaults"] = None) -> "NodeFaults":
        """Merge `data` over `base`; unknown keys are an error (typos must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown node fault(s): {', '.join(sorted(unknown))}")
        merged = asdict(base) if base is not None else {}
        merged.update(data)
        return cls(**merged)


def rate_faults(seed: int, xname: str, rates: Mapping[str, float], pcs_error_text: str) -> Optional[NodeFaults]:
    """The persistent faults the CLI rates assign to `xname` (None when it gets none)."""
    chosen: Dict[str, Any] = {}
    for kind in RATE_FAULTS:
        rate = rates.get(kind, 0.0)
        if rate > 0 and chance(seed, "fault", kind, xname) < rate:
            chosen[kind] = pcs_error_text if kind == "pcs_error" else True
    return NodeFaults(**chosen) if chosen else None


_rule_ids = itertools.count(1)


@dataclass
class ServiceFault:
    """Make a service answer `status`, or stall `delay` seconds, for matching requests.

    Ends after `count` matching requests or at `until` (monotonic), whichever
    comes first; neither means "until removed".
    """

    service: str
    status: Optional[int] = None
    delay: float = 0.0
    path_prefix: str = ""
    method: str = ""
    count: Optional[int] = None
    until: Optional[float] = None
    id: int = field(default_factory=lambda: next(_rule_ids))
    hits: int = 0

    def matches(self, service: str, method: str, path: str, relative: str) -> bool:
        if self.service not in (service, "*"):
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path_prefix and not (path.startswith(self.path_prefix) or relative.startswith(self.path_prefix)):
            return False
        return True

    def expired(self, now: float) -> bool:
        if self.count is not None and self.hits >= self.count:
            return True
        return self.until is not None and now >= self.until

    def describe(self) -> Dict[str, Any]:
        remaining = None if self.until is None else max(0.0, self.until - time.monotonic())
        return {"id": self.id, "service": self.service, "status": self.status, "delay": self.delay,
                "path_prefix": self.path_prefix, "method": self.method, "count": self.count,
                "seconds_left": remaining, "hits": self.hits}


class ServiceFaults:
    """The active per-service rules; the first live matching rule applies."""

    def __init__(self) -> None:
        self.rules: List[ServiceFault] = []

    def add(self, rule: ServiceFault) -> ServiceFault:
        if rule.status is None and rule.delay <= 0:
            raise ValueError("a service fault needs a status, a delay (timeout), or both")
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        before = len(self.rules)
        self.rules = [rule for rule in self.rules if rule.id != rule_id]
        return len(self.rules) != before

    def clear(self, service: Optional[str] = None) -> None:
        self.rules = [rule for rule in self.rules if service is not None and rule.service != service]

    def take(self, service: str, method: str, path: str, relative: str) -> Optional[ServiceFault]:
        """The rule that applies to this request (counting the hit), or None."""
        now = time.monotonic()
        self.rules = [rule for rule in self.rules if not rule.expired(now)]
        for rule in self.rules:
            if rule.matches(service, method, path, relative):
                rule.hits += 1
                return rule
        return None

    def describe(self) -> List[Dict[str, Any]]:
        now = time.monotonic()
        return [rule.describe() for rule in self.rules if not rule.expired(now)]


def parse_service_fault(data: Mapping[str, Any], services: Iterable[str]) -> ServiceFault:
    """Build a rule from a control-API body; raises ValueError with a readable reason."""
    service = str(data.get("service", ""))
    if service not in set(services) | {"*"}:
        raise ValueError(f"unknown service '{service}'")
    status = data.get("status")
    if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
        raise ValueError("status must be an HTTP status code")
    timeout = data.get("timeout", data.get("delay", 0))
    if not isinstance(timeout, (int, float)) or timeout < 0:
        raise ValueError("timeout must be a non-negative number of seconds")
    count = data.get("count")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer")
    seconds = data.get("seconds")
    if seconds is not None and (not isinstance(seconds, (int, float)) or seconds <= 0):
        raise ValueError("seconds must be a positive number")
    until = time.monotonic() + seconds if seconds is not None else None
    return ServiceFault(service=service, status=status, delay=float(timeout),
                        path_prefix=str(data.get("path_prefix", "")), method=str(data.get("method", "")),
                        count=count, until=until)
