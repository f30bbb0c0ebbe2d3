"""Server-side rules for component writes: auto-fields (api.md §2.4), merge (§2.5),
the actual-state 409 rule (§2.6) and the response view (D12).

Pure functions: the store calls them inside its compare-and-set loop, so they
must depend only on their arguments.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, Mapping, Optional

from bos_shared.components import zero_event_stats
from bos_shared.status import component_status, status_view

from .jsonio import clone
from .store.blobs import SharedArtifacts
from .unknown_tokens import UnknownTokens

LOG = logging.getLogger(__name__)
UNKNOWN_TOKENS = UnknownTokens(LOG)  # this process's warnings of unknown tokens, bounded (unknown_tokens.py)
Record = Dict[str, Any]
STATE_FIELDS = ("actual_state", "desired_state", "staged_state")
SHALLOW_FIELDS = ("last_action", "event_stats", "status")


def tokens_in(items: Iterable[Mapping[str, Any]]) -> set:
    """Reported BSS tokens that need resolving (§2.4 step 1)."""
    found = set()
    for item in items:
        actual = item.get("actual_state")
        if isinstance(actual, dict) and actual.get("bss_token"):
            found.add(actual["bss_token"])
    return found


def apply_auto_fields(data: Record, tokens: Optional[Mapping[str, Mapping[str, Any]]], now: str,
                      owned: bool = False) -> Record:
    """Transform incoming component data per §2.4 (steps in order); returns a new dict.

    `tokens` holds the token records of the reported tokens; None skips step 1
    (applystaged re-applies §2.4 to a stored record whose token was resolved before).
    `owned`: the caller hands `data` over (a freshly parsed body it will not read
    again), so it is transformed in place instead of deep-copied first.
    """
    if not owned:
        data = clone(data)
    if tokens is not None:
        _resolve_token(data, tokens)
    _stamp(data, now)
    if data.get("enabled") is True:  # step 3: on hold until the status operator looks
        status = data.get("status")
        data["status"] = dict(status) if isinstance(status, dict) else {}
        data["status"]["status_override"] = "on_hold"
    desired = data.get("desired_state")
    if desired and not data.get("session"):  # step 4: a manual desired state detaches
        data["session"] = ""
    if isinstance(desired, dict) and ("boot_artifacts" in desired or "configuration" in desired):
        data["event_stats"] = zero_event_stats()  # step 5
    return data


def _resolve_token(data: Record, tokens: Mapping[str, Mapping[str, Any]]) -> None:
    actual = data.get("actual_state")
    if not isinstance(actual, dict) or not actual.get("bss_token"):
        return
    record = tokens.get(actual["bss_token"])
    if record is None:
        UNKNOWN_TOKENS.report(actual["bss_token"], data.get("id", "?"))
        return
    actual["boot_artifacts"] = {key: record.get(key, "") for key in
                                ("kernel", "kernel_parameters", "initrd", "timestamp")}


def _stamp(data: Record, now: str) -> None:
    for name in ("actual_state", "desired_state"):
        value = data.get(name)
        if isinstance(value, dict) and not (len(value) == 1 and "bss_token" in value):  # not a bare token report
            value["last_updated"] = now
    for name in ("staged_state", "last_action"):
        value = data.get(name)
        if isinstance(value, dict):
            value["last_updated"] = now


def merge(record: Record, patch: Mapping[str, Any]) -> Record:
    """The stored record after a PATCH (§2.5); never stores the computed status.

    Neither argument is modified. The result shares the values of fields the
    patch leaves alone with `record` (every field it changes is a new object),
    which saves a deep copy of the whole record per write.
    """
    out = dict(record)
    for key, value in patch.items():
        if key == "id":
            continue
        if key in STATE_FIELDS and isinstance(out.get(key), dict):
            out[key] = _merge_state(out[key], value)
        elif key in SHALLOW_FIELDS and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = clone(value)
    _drop_computed(out)
    return out


def _merge_state(current: Record, patch: Mapping[str, Any]) -> Record:
    merged = dict(current)
    for key, value in patch.items():
        if key == "boot_artifacts" and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = clone(value)
    return merged


def _drop_computed(record: Record) -> None:
    status = record.get("status")
    if isinstance(status, dict) and "status" in status:
        record["status"] = {k: v for k, v in status.items() if k != "status"}  # the dict may be shared


def new_record(component_id: str, data: Mapping[str, Any], owned: bool = False) -> Record:
    """A full record for PUT: the body with the path/item ID (`owned` as in apply_auto_fields:
    the dict itself becomes the record, no copy per item of a bulk write)."""
    record = data if owned and isinstance(data, dict) else clone(dict(data))
    record["id"] = component_id
    _drop_computed(record)
    return record


def actual_state_update_allowed(record: Mapping[str, Any]) -> bool:
    """The 409 rule (§2.6), evaluated on the stored record before the patch."""
    if record.get("enabled") is not True:
        return True
    if component_status(record) == "stable":
        return True
    return (record.get("last_action") or {}).get("action") == "powering_on"


def view(record: Mapping[str, Any]) -> Record:
    """A record as every response shows it: computed status, no token timestamp (D12)."""
    out = dict(record)
    actual = out.get("actual_state")
    if isinstance(actual, dict) and isinstance(actual.get("boot_artifacts"), dict) \
            and "timestamp" in actual["boot_artifacts"]:
        artifacts = dict(actual["boot_artifacts"])
        artifacts.pop("timestamp")
        out["actual_state"] = {**actual, "boot_artifacts": artifacts}
    out["status"] = status_view(record)
    return out


def listed_view(record: Record) -> Record:
    """view() of a record decoded for this response alone, made in place (a listing's records):
    shared artifact sets (`Blobs.expand(shared=True)`) become their cached encodings."""
    for state in STATE_FIELDS:
        value = record.get(state)
        if isinstance(value, dict):
            artifacts = value.get("boot_artifacts")
            if isinstance(artifacts, SharedArtifacts):
                value["boot_artifacts"] = artifacts.shown() if state == "actual_state" else artifacts.encoded()
    return view_in_place(record)


def view_in_place(record: Record) -> Record:
    """view() made in place, for a record decoded for this read alone: its dicts are its own but
    for shared artifact sets, which are replaced, never modified (an actual set with a token
    timestamp by a copy without it). A copy of each record and its status per read was a
    twentieth of the status operator's CPU (issue 13)."""
    actual = record.get("actual_state")
    if isinstance(actual, dict):
        artifacts = actual.get("boot_artifacts")
        if isinstance(artifacts, dict) and "timestamp" in artifacts:
            actual["boot_artifacts"] = {k: v for k, v in artifacts.items() if k != "timestamp"}
    status = record.get("status")
    if type(status) is dict:  # status_view() made in place: the same keys in the same order
        computed = component_status(record)
        status.setdefault("phase", "")
        status.setdefault("status_override", "")
        status["status"] = computed
    else:
        record["status"] = status_view(record)
    return record
