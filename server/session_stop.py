"""Stopping a session with cleanup (extension, docs/deviations.md "Session control"; seed 000).

`stop_session` is the one implementation behind `POST /v2/sessions/{name}/stop`,
`DELETE` of a pending or running v2 session and v1 session delete. It:

1. marks the session complete with the error `STOPPED` (session setup then leaves it alone);
2. disables the session's components that are still enabled under it, noting the
   nodes caught mid power transition (their PCS request was sent and not yet confirmed);
3. waits for the operator actions in progress at that moment (store/acting.py), then
   disables again (a setup that was under way when the stop began may have enabled nodes);
4. clears the CFS desired configuration of the nodes this session configured which
   had not finished configuring (unless `keep_configuration`);
5. clears the staged state written by a staged session;
6. saves what was done per node (`cleanup` in the extended status).

Every step is a compare-and-set write or an idempotent CFS patch, so calling it
again (or while operators act) is safe; a second call repeats the steps and
merges its findings into the saved report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AbstractSet, Any, Dict, List, Optional, Sequence

from bos_shared.components import empty_staged_state
from bos_shared.status import component_status
from bos_shared.times import now_str

from .clients.cfs import CfsClient
from .store import Store, keys
from .store.acting import wait_for_actions
from .store.codec import dumps, loads

Record = Dict[str, Any]

STOPPED = "Session stopped by request"
ACTIONS_WAIT = 60.0  # seconds a stop waits for operator actions under way
IN_TRANSITION = frozenset({"power_on_called", "power_off_gracefully_called", "power_off_forcefully_called"})
REPORT_LISTS = ("disabled", "configuration_cleared", "staged_cleared")


@dataclass
class StopResult:
    """What a stop did; `stopped` is False when the session had completed on its own."""

    session: Record
    stopped: bool
    cleanup: Dict[str, Any] = field(default_factory=dict)


def empty_cleanup(keep_configuration: bool) -> Dict[str, Any]:
    return {"stopped_at": now_str(), "keep_configuration": keep_configuration, "disabled": [],
            "configuration_cleared": [], "staged_cleared": [], "mid_power_transition": {},
            "configuration_errors": [], "actions_still_running": 0}


def was_stopped(session: Record) -> bool:
    status = session.get("status") or {}
    return status.get("status") == "complete" and status.get("error") == STOPPED


async def stop_session(store: Store, cfs: Optional[CfsClient], tenant: Optional[str], name: str, *,
                       keep_configuration: bool = False, only: Optional[AbstractSet[str]] = None,
                       exclude: AbstractSet[str] = frozenset(),
                       actions_wait: float = ACTIONS_WAIT) -> Optional[StopResult]:
    """Stop session (tenant, name); None if it does not exist.

    `only`/`exclude` limit the nodes touched (a tenant's own nodes; D25: nodes of
    other tenants' same-named sessions). A session that completed on its own is
    returned unchanged with `stopped=False`.
    """
    session = await _mark_stopped(store, tenant, name)
    if session is None:
        return None
    if not was_stopped(session):
        return StopResult(session, False, await saved_cleanup(store, tenant, name) or {})
    report = empty_cleanup(keep_configuration)
    scope = _Scope(only, exclude)
    stopped_now = await _disable(store, name, scope, report)
    report["actions_still_running"] = await wait_for_actions(store.redis, actions_wait)
    stopped_now += await _disable(store, name, scope, report)
    if not keep_configuration:
        earlier = await saved_cleanup(store, tenant, name) or {}
        unfinished = set(earlier.get("disabled") or []) - set(earlier.get("configuration_cleared") or [])
        await _clear_configuration(cfs, name, sorted(set(stopped_now) | unfinished), report)
    await _clear_staged(store, name, scope, report)
    session = await _mark_stopped(store, tenant, name) or session  # a setup under way may have marked it running
    merged = await _save(store, tenant, name, report)
    return StopResult(session, True, merged)


@dataclass(frozen=True)
class _Scope:
    only: Optional[AbstractSet[str]]
    exclude: AbstractSet[str]

    def __call__(self, ids: Sequence[str]) -> List[str]:
        return [i for i in ids if (self.only is None or i in self.only) and i not in self.exclude]


async def _mark_stopped(store: Store, tenant: Optional[str], name: str) -> Optional[Record]:
    """Pending or running → complete with error STOPPED; a complete session is left as it is."""
    def compute(old: Record) -> Record:
        status = dict(old.get("status") or {})
        if status.get("status") == "complete":
            return old
        status.update(status="complete", error=STOPPED, end_time=status.get("end_time") or now_str())
        return {**old, "status": status}

    before = await store.sessions.get(tenant, name)
    if before is None:
        return None
    if (before.get("status") or {}).get("status") == "complete":
        return before
    record = await store.sessions.update(tenant, name, compute)
    if record is not None:
        await store.events.sessions_written(["complete"])
    return record


async def _disable(store: Store, name: str, scope: _Scope, report: Dict[str, Any]) -> List[str]:
    """Disable members still enabled under the session; returns the IDs this call disabled."""
    ids = scope(await store.components.ids_in(keys.by_session(name)))
    caught: Dict[str, str] = {}

    def compute(_cid: str, old: Optional[Record]) -> Optional[Record]:
        if old is None or old.get("session") != name or old.get("enabled") is not True:
            return None
        status = component_status(old)
        if status in IN_TRANSITION:
            caught[old["id"]] = status
        return {**old, "enabled": False}

    written = await store.components.update(ids, compute)
    report["disabled"] += sorted(written)
    report["mid_power_transition"].update({i: s for i, s in caught.items() if i in written})
    return sorted(written)


async def _clear_configuration(cfs: Optional[CfsClient], name: str, ids: Sequence[str],
                               report: Dict[str, Any]) -> None:
    """Seed 000 step 5: unset CFS desired configuration this session set on nodes not yet configured."""
    if not ids:
        return
    if cfs is None:
        report["configuration_errors"].append("CFS is not configured for the API server; nothing was cleared")
        return
    try:
        records = await cfs.components(ids)
    except Exception as exc:  # reported to the caller; the rest of the cleanup goes on
        report["configuration_errors"].append(f"Unable to read CFS components: {exc}")
        return
    targets = sorted(i for i, rec in records.items() if _configured_by(rec, name))
    for batch in cfs.patch_batches(targets):
        try:
            await cfs.patch_batch(batch, {"desired_config": ""})
        except Exception as exc:  # only this batch stays set; say which
            report["configuration_errors"].append(f"Unable to clear CFS desired configuration of "
                                                  f"{len(batch)} nodes ({batch[0]}...): {exc}")
            continue
        report["configuration_cleared"] += list(batch)


def _configured_by(cfs_record: Record, name: str) -> bool:
    """This session set the desired configuration (its tag) and CFS has not finished applying it."""
    return (bool(cfs_record.get("desired_config"))
            and (cfs_record.get("tags") or {}).get("bos_session") == name
            and str(cfs_record.get("configuration_status") or "").lower() != "configured")


async def _clear_staged(store: Store, name: str, scope: _Scope, report: Dict[str, Any]) -> None:
    ids = scope(await store.components.ids_in(keys.by_staged_session(name)))

    def compute(_cid: str, old: Optional[Record]) -> Optional[Record]:
        if old is None or (old.get("staged_state") or {}).get("session") != name:
            return None
        return {**old, "staged_state": {**empty_staged_state(), "session": ""}}

    report["staged_cleared"] += sorted(await store.components.update(ids, compute))


async def saved_cleanup(store: Store, tenant: Optional[str], name: str) -> Optional[Dict[str, Any]]:
    raw = await store.redis.get(keys.session_cleanup(tenant, name))
    return loads(raw) if raw else None


async def _save(store: Store, tenant: Optional[str], name: str, report: Dict[str, Any]) -> Dict[str, Any]:
    """Merge with an earlier stop's report (idempotent calls add, never forget) and save."""
    earlier = await saved_cleanup(store, tenant, name)
    if earlier:
        for key in REPORT_LISTS:
            report[key] = sorted(set(earlier.get(key) or []) | set(report[key]))
        report["mid_power_transition"] = {**(earlier.get("mid_power_transition") or {}),
                                          **report["mid_power_transition"]}
        report["stopped_at"] = earlier.get("stopped_at") or report["stopped_at"]
    await store.redis.set(keys.session_cleanup(tenant, name), dumps(report))
    return report


def cleanup_keys(tenant: Optional[str], name: str) -> List[str]:
    """Keys to delete with the session record."""
    return [keys.session_cleanup(tenant, name)]


async def stop_components(store: Store, cfs: Optional[CfsClient], name: str, *, keep_configuration: bool = False,
                          actions_wait: float = ACTIONS_WAIT) -> Dict[str, Any]:
    """Steps 2-4 above for work that has no v2 session record: a v1 session, whose components
    carry its ID as `session` (v1.md §2.3 V4). Returns the cleanup report (not saved)."""
    report = empty_cleanup(keep_configuration)
    scope = _Scope(None, frozenset())
    stopped_now = await _disable(store, name, scope, report)
    report["actions_still_running"] = await wait_for_actions(store.redis, actions_wait)
    stopped_now += await _disable(store, name, scope, report)
    if not keep_configuration:
        await _clear_configuration(cfs, name, sorted(set(stopped_now)), report)
    return report
