"""A Redis populated in the reference BOS's layout (api.md §6.4), written from the spec.

Databases 0-5 hold options, components, session templates, sessions, BSS token
records and saved extended statuses, keyed as the reference keys them. The
records are the shapes the reference stores (api.md §2.1, §2.7, §2.8, §2.11,
operators.md): every component phase and last action, overrides, staged
states, resolved tokens; templates with and without tenants; sessions in every
state with saved statuses. Corrupt and unknown entries are mixed in, each with
the reason the importer must give.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import redis as redis_lib

MANIFEST = "s3://boot-images/9e3c75e1-ac42-42c7-873c-e758048897d6/manifest.json"
KERNEL = "s3://boot-images/9e3c75e1-ac42-42c7-873c-e758048897d6/kernel"
INITRD = "s3://boot-images/9e3c75e1-ac42-42c7-873c-e758048897d6/initrd"
PARAMS = ("console=ttyS0,115200 bad_page=panic crashkernel=512M hugepagelist=2m-2g intel_iommu=off "
          "iommu.passthrough=on numa_interleave_omit=headless oops=panic pageblock_order=14 rd.neednet=1 "
          "rd.retry=10 rd.shell split_lock_detect=off systemd.unified_cgroup_hierarchy=1 ip=dhcp quiet "
          "spire_join_token=${SPIRE_JOIN_TOKEN} root=sbps-s3:s3://boot-images/9e3c/rootfs bos_update_frequency=4h")
T0 = "2025-01-13T15:04:05"
T1 = "2025-01-13T15:20:41"
EMPTY = {"kernel": "", "kernel_parameters": "", "initrd": ""}
BOOTED = {"kernel": KERNEL, "kernel_parameters": PARAMS, "initrd": INITRD}
TOKENS = {f"5b0c1f3e-4c2a-4a61-9d7e-0a2f7c9e1b1{n}": {**BOOTED, "kernel_parameters": f"{PARAMS} bss_referral_token=t{n}",
                                                       "timestamp": T0} for n in range(4)}
TOKEN_IDS = sorted(TOKENS)


def sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def scoped_key(tenant: Optional[str], name: str) -> str:
    return sha(tenant or "") + "-" + sha(name)


def _stats(on: int = 0, graceful: int = 0, forceful: int = 0) -> Dict[str, int]:
    return {"power_on_attempts": on, "power_off_graceful_attempts": graceful, "power_off_forceful_attempts": forceful}


def _booted(token: str) -> Dict[str, Any]:
    record = TOKENS[token]
    return {"boot_artifacts": {k: record[k] for k in ("kernel", "kernel_parameters", "initrd", "timestamp")},
            "bss_token": token, "last_updated": T1}


# Each shape: (component record without id, the status the reference computes for it, §2.3)
SHAPES: List[Tuple[str, Callable[[int], Dict[str, Any]], str]] = [
    ("discovered", lambda n: {
        "actual_state": {"boot_artifacts": dict(EMPTY), "bss_token": "", "last_updated": T0},
        "desired_state": {"configuration": "", "boot_artifacts": dict(EMPTY), "bss_token": "", "last_updated": T0},
        "staged_state": {"last_updated": T0},
        "last_action": {"action": "newly_discovered", "failed": False, "last_updated": T0},
        "event_stats": _stats(), "enabled": False, "error": "", "session": ""}, "stable"),
    ("booted", lambda n: {
        "actual_state": _booted(TOKEN_IDS[n % 4]),
        "desired_state": {"boot_artifacts": {k: TOKENS[TOKEN_IDS[n % 4]][k] for k in BOOTED},
                          "configuration": "compute-23.4.0", "bss_token": TOKEN_IDS[n % 4], "last_updated": T0},
        "staged_state": {"last_updated": T0},
        "last_action": {"action": "powering_on", "failed": False, "last_updated": T0},
        "event_stats": _stats(), "status": {"phase": "", "status_override": "", "status": "stable"},
        "enabled": False, "error": "", "session": "boot-compute"}, "stable"),
    ("power-on-called", lambda n: {
        "actual_state": {"boot_artifacts": dict(EMPTY), "bss_token": "", "last_updated": T0},
        "desired_state": {"boot_artifacts": dict(BOOTED), "configuration": "compute-23.4.0",
                          "bss_token": TOKEN_IDS[0], "last_updated": T0},
        "last_action": {"action": "powering_on", "failed": False, "last_updated": T1},
        "event_stats": _stats(on=1), "status": {"phase": "powering_on", "status_override": ""},
        "enabled": True, "error": "", "session": "reboot-running"}, "power_on_called"),
    ("power-on-pending", lambda n: {
        "desired_state": {"boot_artifacts": dict(BOOTED), "configuration": "compute-23.4.0", "bss_token": "",
                          "last_updated": T0},
        "last_action": {"action": "session_setup", "failed": False, "last_updated": T0},
        "event_stats": _stats(), "status": {"phase": "powering_on", "status_override": ""},
        "enabled": True, "error": "", "session": "reboot-running", "retry_policy": 5}, "power_on_pending"),
    ("power-on-failed-retry", lambda n: {
        "last_action": {"action": "powering_on", "failed": True, "last_updated": T1},
        "event_stats": _stats(on=2), "status": {"phase": "powering_on", "status_override": ""},
        "enabled": True, "error": "PCS transition failed", "session": "reboot-running"}, "power_on_pending"),
    ("graceful", lambda n: {
        "actual_state": _booted(TOKEN_IDS[1]),
        "last_action": {"action": "powering_off_gracefully", "failed": False, "last_updated": T1},
        "event_stats": _stats(graceful=1), "status": {"phase": "powering_off", "status_override": ""},
        "enabled": True, "error": "", "session": "reboot-running"}, "power_off_gracefully_called"),
    ("forceful", lambda n: {
        "last_action": {"action": "powering_off_forcefully", "failed": False, "last_updated": T1},
        "event_stats": _stats(graceful=1, forceful=1), "status": {"phase": "powering_off", "status_override": ""},
        "enabled": True, "error": "", "session": "shutdown-tenant"}, "power_off_forcefully_called"),
    ("power-off-pending", lambda n: {
        "last_action": {"action": "session_setup", "failed": False, "last_updated": T0},
        "status": {"phase": "powering_off"}, "enabled": True, "session": "reboot-running"}, "power_off_pending"),
    ("configuring", lambda n: {
        "actual_state": _booted(TOKEN_IDS[2]),
        "desired_state": {"boot_artifacts": {k: TOKENS[TOKEN_IDS[2]][k] for k in BOOTED},
                          "configuration": "compute-23.4.0", "bss_token": TOKEN_IDS[2], "last_updated": T0},
        "last_action": {"action": "powering_on", "failed": False, "last_updated": T0},
        "status": {"phase": "configuring", "status_override": ""}, "enabled": True, "error": "",
        "session": "reboot-running"}, "configuring"),
    ("failed", lambda n: {
        "last_action": {"action": "powering_on", "failed": True, "last_updated": T1},
        "event_stats": _stats(on=3), "status": {"phase": "powering_on", "status_override": "failed"},
        "enabled": False, "error": "The retry limit has been hit for this component, but no services have reported issues",
        "session": "boot-compute"}, "failed"),
    ("on-hold", lambda n: {
        "status": {"phase": "powering_on", "status_override": "on_hold"}, "enabled": True, "session": "reboot-running",
        "last_action": {"action": "session_setup", "failed": False, "last_updated": T0}}, "on_hold"),
    ("staged", lambda n: {
        "actual_state": _booted(TOKEN_IDS[3]),
        "staged_state": {"boot_artifacts": dict(BOOTED), "configuration": "compute-23.5.0", "session": "staged-next",
                         "last_updated": T1},
        "last_action": {"action": "apply_staged", "failed": False, "last_updated": T1},
        "enabled": False, "error": "", "session": ""}, "stable"),
    ("cleaned", lambda n: {
        "actual_state": {"boot_artifacts": dict(EMPTY), "bss_token": "", "last_updated": T1},
        "last_action": {"action": "actual_state_cleanup", "failed": False, "last_updated": T1},
        "enabled": False, "session": ""}, "stable"),
    ("minimal", lambda n: {"enabled": False}, "stable"),
]
COMPONENT_COUNT = 1040


def xname(n: int) -> str:
    return f"x{1000 + n // 256}c{(n // 64) % 4}s{(n // 8) % 8}b{(n // 2) % 4}n{n % 2}"


def _template(name: str, tenant: Optional[str], **body: Any) -> Dict[str, Any]:
    return {"name": name, "tenant": tenant, **body}


COMPUTE_SET = {"path": MANIFEST, "type": "s3", "etag": "1cc4eef4f407bd8a62d7d66ee4b9e9c8",
               "kernel_parameters": "console=ttyS0,115200 ip=dhcp quiet spire_join_token=${SPIRE_JOIN_TOKEN}",
               "node_roles_groups": ["Compute"], "arch": "X86", "rootfs_provider": "sbps",
               "rootfs_provider_passthrough": "sbps:v1:iqn.2023-06.csm.iscsi:_sbps-hsn._tcp.my-system.my-site-domain:300"}
TEMPLATES = [
    _template("compute-23.4", None, description="Compute nodes", enable_cfs=True,
              cfs={"configuration": "compute-23.4.0"}, boot_sets={"compute": dict(COMPUTE_SET)}),
    _template("compute-23.4", "vcluster-blue", enable_cfs=True, cfs={"configuration": "blue-23.4.0"},
              boot_sets={"compute": {**COMPUTE_SET, "node_list": [xname(0), xname(1)], "cfs": {"configuration": "blue-bs"}}}),
    _template("uan-arm", None, enable_cfs=False,
              boot_sets={"uan": {"path": MANIFEST, "type": "s3", "node_groups": ["uan"], "arch": "ARM"},
                         "login": {"path": MANIFEST, "type": "s3", "node_list": [xname(2)], "arch": "ARM"}}),
    _template("tenant-only", "vcluster-red", boot_sets={"red": {"path": MANIFEST, "type": "s3",
                                                                "node_list": [xname(3)]}}),
]


def _session(name: str, tenant: Optional[str], operation: str, state: str, **extra: Any) -> Dict[str, Any]:
    status = {"start_time": T0, "end_time": T1 if state == "complete" else None, "status": state, "error": None}
    status.update(extra.pop("status", {}))
    return {"name": name, "tenant": tenant, "operation": operation, "template_name": "compute-23.4",
            "limit": extra.pop("limit", ""), "stage": extra.pop("stage", False), "components": extra.pop("components", ""),
            "include_disabled": False, "status": status, **extra}


SESSIONS = [
    _session("pending-new", None, "boot", "pending"),
    _session("reboot-running", None, "reboot", "running", components=",".join(xname(n) for n in range(40)),
             limit="compute,!x1000c0s0b0n0"),
    _session("boot-compute", None, "boot", "complete", components=",".join(xname(n) for n in range(10))),
    _session("setup-failed", None, "boot", "complete", status={"error": "No nodes were found to act upon."}),
    _session("staged-next", None, "boot", "complete", stage=True),
    _session("shutdown-tenant", "vcluster-blue", "shutdown", "running", components=xname(0)),
    _session("reboot-running", "vcluster-blue", "reboot", "complete", components=xname(1)),
]
STATUS_OF = {
    ("boot-compute", None): {"status": "complete", "managed_components_count": 10,
                             "phases": {"percent_complete": 100.0, "percent_powering_on": 0.0,
                                        "percent_powering_off": 0.0, "percent_configuring": 0.0},
                             "percent_successful": 90.0, "percent_failed": 10.0, "percent_staged": 0.0,
                             "error_summary": {"The retry limit has been hit": {"count": 1, "list": xname(9)}},
                             "timing": {"start_time": T0, "end_time": T1, "duration": "0:16:36"}},
    ("setup-failed", None): {"status": "complete", "managed_components_count": 0,
                             "phases": {"percent_complete": 0.0, "percent_powering_on": 0.0,
                                        "percent_powering_off": 0.0, "percent_configuring": 0.0},
                             "percent_successful": 0.0, "percent_failed": 0.0, "percent_staged": 0.0,
                             "error_summary": {}, "timing": {"start_time": T0, "end_time": T1, "duration": "0:16:36"}},
    ("reboot-running", "vcluster-blue"): {"status": "complete", "managed_components_count": 1,
                                          "phases": {"percent_complete": 100.0, "percent_powering_on": 0.0,
                                                     "percent_powering_off": 0.0, "percent_configuring": 0.0},
                                          "percent_successful": 100.0, "percent_failed": 0.0, "percent_staged": 0.0,
                                          "error_summary": {},
                                          "timing": {"start_time": T0, "end_time": T1, "duration": "0:16:36"}},
}
OPTIONS = {"polling_frequency": 20, "default_retry_policy": 4, "max_component_batch_size": 2000,
           "logging_level": "DEBUG", "cleanup_completed_session_ttl": "3d", "session_limit_required": False,
           "component_actual_state_ttl": "30m",  # illegal since the one-hour minimum: the default applies
           "disable_components_on_completion": True}  # an option of older releases: unknown, ignored (D11)
OPTION_REJECTS = {"options.component_actual_state_ttl": "component_actual_state_ttl",
                  "options.disable_components_on_completion": "unknown option"}


@dataclass
class Reference:
    """What the fixture wrote, and what the importer must make of it."""

    components: Dict[str, Tuple[Dict[str, Any], str]] = field(default_factory=dict)  # id -> (record, status)
    templates: List[Dict[str, Any]] = field(default_factory=list)
    sessions: List[Dict[str, Any]] = field(default_factory=list)
    statuses: Dict[Tuple[str, Optional[str]], Dict[str, Any]] = field(default_factory=dict)
    tokens: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    options: Dict[str, Any] = field(default_factory=dict)
    rejects: Dict[Tuple[str, str], str] = field(default_factory=dict)  # (kind, key) -> part of the reason


def _put(client: redis_lib.Redis, key: str, value: Any) -> None:
    client.set(key, value if isinstance(value, (bytes, str)) else json.dumps(value))


def populate(url: str, count: int = COMPONENT_COUNT) -> Reference:
    """Write the reference layout into databases 0-5 of the Redis at `url` (emptied first)."""
    ref = Reference()
    dbs = {db: redis_lib.Redis.from_url(url.rsplit("/", 1)[0] + f"/{db}") for db in range(6)}
    try:
        for client in dbs.values():
            client.flushdb()
        _components(dbs[1], ref, count)
        _templates(dbs[2], ref)
        _sessions(dbs[3], dbs[5], ref)
        _tokens(dbs[4], ref)
        _options(dbs[0], ref)
    finally:
        for client in dbs.values():
            client.close()
    return ref


def _components(db: redis_lib.Redis, ref: Reference, count: int) -> None:
    pipe = db.pipeline(transaction=False)
    for n in range(count):
        _shape, make, status = SHAPES[n % len(SHAPES)]
        record = {"id": xname(n), **copy.deepcopy(make(n))}
        pipe.set(record["id"], json.dumps(record))
        ref.components[record["id"]] = (record, status)
    pipe.execute()
    bad = {"x9000c0s0b0n0": ("{not json", "not JSON"),
           "x9000c0s0b0n1": ({"id": "x9000c0s0b0n9", "enabled": True}, "differs from its key"),
           "x9000c0s0b1n0": ({"status": {"phase": "rebooting"}}, "status.phase"),
           "x9000c0s0b1n1": ({"enabled": "yes"}, "enabled"),
           "x9000c0s1b0n0": ([1, 2, 3], "not a JSON object"),
           "x9000c0s1b0n1": ({"desired_state": {"boot_artifacts": {"kernel": "k" * 5000}}}, "kernel"),
           "x9000c0s1b1n0": ({"session": "not a name!"}, "session")}
    for key, (value, reason) in bad.items():
        _put(db, key, value)
        ref.rejects[("components", key)] = reason
    db.hset("x9000c0s2b0n0", mapping={"enabled": "true"})  # a hash: not something BOS writes
    ref.rejects[("components", "x9000c0s2b0n0")] = "Redis hash"


def _templates(db: redis_lib.Redis, ref: Reference) -> None:
    for record in TEMPLATES:
        _put(db, scoped_key(record["tenant"], record["name"]), record)
        ref.templates.append(record)
    bad = [(scoped_key(None, "no-boot-sets"), {"name": "no-boot-sets", "tenant": None}, "Missing required 'boot_sets'"),
           (scoped_key(None, "elsewhere"), _template("moved", None, boot_sets={"a": COMPUTE_SET}), "does not belong"),
           (scoped_key(None, "no-hardware"), _template("no-hardware", None, boot_sets={"a": {"path": MANIFEST, "type": "s3"}}),
            "No hardware specifier fields"),
           (scoped_key(None, "unknown-field"), _template("unknown-field", None, boot_sets={"a": COMPUTE_SET}, owner="me"),
            "owner"),
           ("template-backup-2023", _template("x", None, boot_sets={"a": COMPUTE_SET}), "unknown entry")]
    for key, value, reason in bad:
        _put(db, key, value)
        ref.rejects[("templates", key)] = reason


def _sessions(db: redis_lib.Redis, statuses: redis_lib.Redis, ref: Reference) -> None:
    for record in SESSIONS:
        _put(db, scoped_key(record["tenant"], record["name"]), record)
        ref.sessions.append(record)
    for (name, tenant), status in STATUS_OF.items():
        _put(statuses, scoped_key(tenant, name), status)
        ref.statuses[(name, tenant)] = status
    bad_session = _session("explode", None, "explode", "running")
    _put(db, scoped_key(None, "explode"), bad_session)
    ref.rejects[("sessions", scoped_key(None, "explode"))] = "operation"
    orphan = scoped_key(None, "deleted-long-ago")
    _put(statuses, orphan, STATUS_OF[("boot-compute", None)])
    ref.rejects[("statuses", orphan)] = "orphaned"
    _put(statuses, scoped_key(None, "explode"), STATUS_OF[("boot-compute", None)])
    ref.rejects[("statuses", scoped_key(None, "explode"))] = "orphaned"


def _tokens(db: redis_lib.Redis, ref: Reference) -> None:
    for token, record in TOKENS.items():
        _put(db, token, record)
        ref.tokens[token] = record
    _put(db, "0000-corrupt-token", b"\xff\xfe")
    ref.rejects[("tokens", "0000-corrupt-token")] = "not JSON"
    _put(db, "0000-no-kernel", {"kernel_parameters": "quiet", "timestamp": T0})
    ref.rejects[("tokens", "0000-no-kernel")] = "kernel"


def _options(db: redis_lib.Redis, ref: Reference) -> None:
    _put(db, "options", OPTIONS)
    ref.options = {k: v for k, v in OPTIONS.items() if f"options.{k}" not in OPTION_REJECTS}
    for key, reason in OPTION_REJECTS.items():
        ref.rejects[("options", key)] = reason
    _put(db, "stray-key", "1")
    ref.rejects[("options", "stray-key")] = "unknown entry"
