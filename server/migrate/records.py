"""One reference entry → our record, or the reason it is rejected.

Every record passes the same schema as the API's writes (api.md §2), so an
imported record is one our API could have stored. What the reference stored is
kept as it was (timestamps, overrides, counters): the import is not a write
through §2.4, which would stamp `last_updated` and put enabled nodes on hold.
Only what we never store is dropped: the computed `status.status` (§2.3) and a
boot set's write-only `name` (§4.1 step 5); a template's or session's `tenant`
is made explicit (`null` when untenanted, §1.8).
"""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, Mapping, Optional, Tuple

from bos_shared import schema
from bos_shared.schema import OPTION_FIELDS
from bos_shared.schema_types import SchemaError

from ..templates import TemplateError, check_boot_sets_field, hardware_problem
from .reference import OPTIONS_KEY, SCOPED_KEY, Entry, scoped_key

Record = Dict[str, Any]
TOKEN_FIELDS = ("kernel", "kernel_parameters", "initrd")
STATE_FIELDS = ("actual_state", "desired_state", "staged_state", "last_action")


class Rejected(Exception):
    """The entry cannot be imported; the message is the reason shown in the report."""


def decode(entry: Entry) -> Any:
    if entry.raw is None:
        raise Rejected(f"not a JSON string but a Redis {entry.wrong_type}")
    try:
        return json.loads(entry.raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(f"not JSON ({exc})") from None


def _object(value: Any, what: str) -> Record:
    if not isinstance(value, dict):
        raise Rejected(f"{what} is not a JSON object but {type(value).__name__}")
    return value


def _validate(model: Any, value: Any) -> None:
    try:
        model.validate(value)
    except SchemaError as exc:
        raise Rejected(str(exc)) from None


# -- components (database 1) --

def component(entry: Entry) -> Record:
    record = copy.deepcopy(_object(decode(entry), "the component"))
    if "id" in record and record["id"] != entry.key:
        raise Rejected(f"its id {record['id']!r} differs from its key")
    record["id"] = entry.key
    if isinstance(record.get("status"), dict):
        record["status"].pop("status", None)  # computed on read (§2.3), never stored
    _validate(schema.ComponentWithId, _without_token_stamp(record))
    for field in STATE_FIELDS:
        stamp = (record.get(field) or {}).get("last_updated")
        if stamp is not None and (not isinstance(stamp, str) or len(stamp) > 127):
            raise Rejected(f"{field}.last_updated: must be a timestamp string")
    return record


def _without_token_stamp(record: Record) -> Record:
    """A resolved token adds `timestamp` to the actual boot artifacts (D12): stored, never validated."""
    actual = record.get("actual_state")
    if not isinstance(actual, dict):
        return record
    artifacts = actual.get("boot_artifacts")
    if not isinstance(artifacts, dict) or "timestamp" not in artifacts:
        return record
    if not isinstance(artifacts["timestamp"], str):
        raise Rejected("actual_state.boot_artifacts.timestamp: must be a timestamp string")
    trimmed = dict(artifacts)
    del trimmed["timestamp"]
    return {**record, "actual_state": {**actual, "boot_artifacts": trimmed}}


# -- templates and sessions (databases 2 and 3): keyed by tenant and name --

def _scoped(entry: Entry, what: str) -> Tuple[Record, Optional[str], str]:
    if not SCOPED_KEY.match(entry.key):
        raise Rejected("unknown entry: the key is not sha1(tenant)-sha1(name)")
    record = copy.deepcopy(_object(decode(entry), f"the {what}"))
    name, tenant = record.get("name"), record.get("tenant")
    _validate(schema.Name(), name)
    assert isinstance(name, str)  # checked just above
    if tenant is not None and not (isinstance(tenant, str) and len(tenant) <= schema.MAX_TENANT_LENGTH):
        raise Rejected("tenant: must be null or a string of at most 127 characters")
    tenant = tenant or None
    if scoped_key(tenant, name) != entry.key:
        raise Rejected(f"its key does not belong to its tenant {tenant!r} and name {name!r}")
    record["tenant"] = tenant
    return record, tenant, name


def template(entry: Entry) -> Record:
    """A session template, checked like a PUT (api.md §4.1) except the S3/IMS look-ups."""
    record, _tenant, name = _scoped(entry, "session template")
    body = {k: v for k, v in record.items() if k not in ("name", "tenant", "links")}
    try:
        check_boot_sets_field(body)
    except TemplateError as exc:
        raise Rejected(str(exc)) from None
    for key, boot_set in body["boot_sets"].items():
        if isinstance(boot_set, dict):
            if "name" in boot_set and boot_set["name"] != key:
                raise Rejected(f"boot_sets key ({key}) does not match 'name' field of corresponding boot set "
                               f"({boot_set['name']})")
            boot_set.pop("name", None)
            problem = hardware_problem(boot_set)
            if problem:
                raise Rejected(f"Boot set {key}: {problem}")
    _validate(schema.SessionTemplate, body)
    return {"name": name, "tenant": record["tenant"], **body}


def session(entry: Entry) -> Record:
    record, _tenant, _name = _scoped(entry, "session")
    _validate(schema.Session, record)
    if not isinstance(record.get("status"), dict) or "status" not in record["status"]:
        raise Rejected("status.status: a session needs its status (pending, running or complete)")
    return record


def saved_status(entry: Entry) -> Record:
    if not SCOPED_KEY.match(entry.key):
        raise Rejected("unknown entry: the key is not sha1(tenant)-sha1(name)")
    record = _object(decode(entry), "the saved status")
    _validate(schema.ExtendedStatus, record)
    return record


# -- BSS token records (database 4) and options (database 0) --

def token(entry: Entry) -> Record:
    if not entry.key or len(entry.key) > 65535:
        raise Rejected("a BSS token is 1..65535 characters")
    record = _object(decode(entry), "the token record")
    if not isinstance(record.get("kernel"), str) or not record["kernel"]:
        raise Rejected("kernel: a token record names its kernel")
    for field in TOKEN_FIELDS + ("timestamp",):
        if field in record and not isinstance(record[field], str):
            raise Rejected(f"{field}: must be a string")
    return {field: record.get(field, "") for field in TOKEN_FIELDS + ("timestamp",)}


def options(entry: Entry) -> Tuple[Record, Dict[str, str]]:
    """The valid known options, and a reason per option left out (D11: unknown ones are ignored)."""
    if entry.key != OPTIONS_KEY:
        raise Rejected("unknown entry: the options database holds only the key 'options'")
    stored = _object(decode(entry), "the options record")
    kept: Record = {}
    dropped: Dict[str, str] = {}
    for name, value in stored.items():
        field = OPTION_FIELDS.get(name)
        if field is None:
            dropped[name] = "unknown option (ignored, D11)"
            continue
        try:
            kept[name] = field.validate(value, name)
        except SchemaError as exc:
            dropped[name] = f"{exc}; the default applies"
    return kept, dropped


def same(left: Optional[Mapping[str, Any]], right: Optional[Mapping[str, Any]]) -> bool:
    return left is not None and right is not None and left == right
