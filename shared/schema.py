"""The BOS v2 wire schema (api.md §1.6 and §2): the single source of truth.

Request validation and the OpenAPI document are both derived from the
definitions below. Field names, limits, patterns and enumerations follow the
spec exactly; read-only fields are marked so request bodies may carry them
and have them ignored (D13).
"""

from __future__ import annotations

from .schema_types import (Array, Boolean, CountOrPercent, Integer, MapOf, Number, Object, Registry, String)

# -- names, identifiers and limits (api.md §1.6) ---------------------------------------------

NAME_PATTERN = r"^[a-zA-Z0-9](?:[-._a-zA-Z0-9]{0,125}[a-zA-Z0-9])?$"
NAME_OR_EMPTY_PATTERN = r"^$|^[a-zA-Z0-9](?:[-._a-zA-Z0-9]{0,125}[a-zA-Z0-9])?$"
AGE_PATTERN = r"^(0|0[mMhHdDwW]|[1-9][0-9]*[mMhHdDwW])$"
TTL_PATTERN = r"^[1-9][0-9]*[hHdDwW]$"

MAX_ID_LENGTH = 127
MAX_TENANT_LENGTH = 127
MAX_LIMIT_LENGTH = 524288
# Deviation (docs/deviations.md): the reference caps a session's `components` at 524288
# characters, which a 100,000-node session (~1.5 MB of IDs) cannot fit; we accept 8 MiB.
MAX_COMPONENTS_FIELD_LENGTH = 8 * 1024 * 1024
MAX_IDS_QUERY_LENGTH = 524288
MAX_FILTER_IDS_LENGTH = 65535
MAX_APPLYSTAGED_XNAMES = 32768
MAX_STATUS_QUERY_LENGTH = 512
MAX_PAGE_SIZE = 1048576
COUNTER_MAX = 1048576
MAX_NODES = 1048576  # a bound for node counts in session extensions

# -- enumerations (api.md §2.2) ---------------------------------------------------------------

PHASES = ("powering_on", "powering_off", "configuring", "")
ACTIONS = ("actual_state_cleanup", "apply_staged", "newly_discovered", "powering_off_forcefully",
           "powering_off_gracefully", "powering_on", "session_setup")
COMPONENT_STATUSES = ("power_on_pending", "power_on_called", "power_off_pending",
                      "power_off_gracefully_called", "power_off_forcefully_called",
                      "configuring", "stable", "failed", "on_hold")
OPERATIONS = ("boot", "reboot", "shutdown")
SESSION_STATUSES = ("pending", "running", "complete")
ARCHES = ("X86", "ARM", "Other", "Unknown")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

registry = Registry()
define = registry.define


def Name(**kw: object) -> String:
    return String(1, 127, pattern=NAME_PATTERN, **kw)  # type: ignore[arg-type]


def NameOrEmpty(**kw: object) -> String:
    return String(0, 127, pattern=NAME_OR_EMPTY_PATTERN, **kw)  # type: ignore[arg-type]


ComponentId = define("ComponentId", String(1, MAX_ID_LENGTH, description="Component ID (xname)"))
Timestamp = String(0, 127, read_only=True, description="UTC, YYYY-MM-DDTHH:MM:SS")
AgeString = define("AgeString", String(1, 8, pattern=AGE_PATTERN,
                                       description="Age: 0 or digits plus m/h/d/w, e.g. 30m, 6h, 7d, 2w"))

# -- components (api.md §2.1) -------------------------------------------------------------------

BootArtifacts = define("BootArtifacts", Object({
    "kernel": String(0, 4095),
    "kernel_parameters": String(0, 4096),
    "initrd": String(0, 4095),
}))
ActualState = define("ActualState", Object({
    "boot_artifacts": BootArtifacts,
    "bss_token": String(0, 65535),
    "last_updated": Timestamp,
}))
DesiredState = define("DesiredState", Object({
    "boot_artifacts": BootArtifacts,
    "configuration": String(0, 127),
    "bss_token": String(0, 65535),
    "last_updated": Timestamp,
}))
StagedState = define("StagedState", Object({
    "boot_artifacts": BootArtifacts,
    "configuration": String(0, 127),
    "session": NameOrEmpty(),
    "last_updated": Timestamp,
}))
LastAction = define("LastAction", Object({
    "action": String(enum=ACTIONS),
    "failed": Boolean(),
    "last_updated": Timestamp,
}))
EventStats = define("EventStats", Object({
    "power_on_attempts": Integer(0, COUNTER_MAX),
    "power_off_graceful_attempts": Integer(0, COUNTER_MAX),
    "power_off_forceful_attempts": Integer(0, COUNTER_MAX),
}))
ComponentStatus = define("ComponentStatus", Object({
    "phase": String(enum=PHASES),
    "status_override": String(0, 65536),
    "status": String(read_only=True, description="Computed on read (api.md §2.3); never stored"),
}))

_COMPONENT_FIELDS = {
    "id": ComponentId,
    "actual_state": ActualState,
    "desired_state": DesiredState,
    "staged_state": StagedState,
    "last_action": LastAction,
    "event_stats": EventStats,
    "status": ComponentStatus,
    "enabled": Boolean(),
    "error": String(0, 65536),
    "session": NameOrEmpty(),
    "retry_policy": Integer(0, COUNTER_MAX),
}
Component = define("V2Component", Object(_COMPONENT_FIELDS, min_properties=1))
ComponentWithId = define("V2ComponentWithId", Object(_COMPONENT_FIELDS, required=("id",)))
ComponentArray = define("V2ComponentArray", Array(ComponentWithId))

BulkFilter = define("V2ComponentsFilter", Object({
    "ids": String(0, MAX_FILTER_IDS_LENGTH, nullable=True),
    "session": NameOrEmpty(nullable=True),
}))
ComponentsUpdate = define("V2ComponentsUpdate", Object({
    "patch": Component,
    "filters": BulkFilter,
}, required=("patch", "filters")))

# -- sessions (api.md §2.7) ------------------------------------------------------------------

# Extensions (docs/deviations.md "Session control"): absent = the reference's behaviour.
SESSION_EXTENSIONS = {
    "max_in_flight": Integer(1, MAX_NODES, description=(
        "Extension: at most this many of the session's nodes in a power transition or booting at once")),
    "max_failed": CountOrPercent(MAX_NODES, description=(
        "Extension: when more nodes than this (a count, or a percentage of the session's nodes) have "
        "failed, the session starts no more nodes and ends with an error")),
}

SessionStatus = define("V2SessionStatus", Object({
    "start_time": String(0, 127),
    "end_time": String(0, 127, nullable=True),
    "status": String(enum=SESSION_STATUSES),
    "error": String(0, 65536, nullable=True),
}))
Session = define("V2Session", Object({
    "name": Name(),
    "tenant": String(0, MAX_TENANT_LENGTH, nullable=True, read_only=True),
    "operation": String(enum=OPERATIONS),
    "template_name": Name(),
    "limit": String(0, MAX_LIMIT_LENGTH, nullable=True),
    "stage": Boolean(),
    "components": String(0, MAX_COMPONENTS_FIELD_LENGTH),
    "include_disabled": Boolean(),
    "status": SessionStatus,
    **SESSION_EXTENSIONS,
}, required=("name", "operation", "template_name")))
SessionCreate = define("V2SessionCreate", Object({
    "name": Name(),
    "operation": String(enum=OPERATIONS),
    "template_name": Name(),
    "limit": String(0, MAX_LIMIT_LENGTH, nullable=True),
    "stage": Boolean(default=False),
    "include_disabled": Boolean(default=False),
    **SESSION_EXTENSIONS,
}, required=("operation", "template_name")))
SessionUpdate = define("V2SessionUpdate", Object({
    "components": String(0, MAX_COMPONENTS_FIELD_LENGTH),
    "status": SessionStatus,
}))

# -- session templates (api.md §2.8) ---------------------------------------------------------

Link = define("Link", Object({"href": String(), "rel": String()}))
CfsParameters = define("V2CfsParameters", Object({"configuration": String(0, 127)}))
_BOOT_SET_FIELDS = {
    "name": Name(write_only=True),
    "path": String(1, 4095),
    "type": String(1, 127),
    "etag": String(0, 65536),
    "kernel_parameters": String(0, 4096),
    "node_list": Array(String(1, 127), 1, 65535),
    "node_roles_groups": Array(String(1, 127), 1, 1023),
    "node_groups": Array(String(1, 127), 1, 4095),
    "arch": String(enum=ARCHES, default="X86"),
    "rootfs_provider": String(1, 511),
    "rootfs_provider_passthrough": String(0, 4096),
    "cfs": CfsParameters,
    # Extension (v1.md §3.1, docs/deviations.md): kept from v1 templates, honoured by v1 sessions only.
    "boot_ordinal": Integer(0, COUNTER_MAX),
    "shutdown_ordinal": Integer(0, COUNTER_MAX),
}
BootSet = define("V2BootSet", Object(_BOOT_SET_FIELDS, required=("path", "type")))
BootSetPatch = Object(_BOOT_SET_FIELDS)
_TEMPLATE_FIELDS = {
    "name": Name(read_only=True),
    "tenant": String(0, MAX_TENANT_LENGTH, nullable=True, read_only=True),
    "description": String(1, 1023),
    "enable_cfs": Boolean(default=True),
    "cfs": CfsParameters,
    "links": Array(Link, read_only=True),
}
SessionTemplate = define("V2SessionTemplate", Object(dict(_TEMPLATE_FIELDS, boot_sets=MapOf(
    BootSet, key=Name(), min_properties=1, max_properties=127)), required=("boot_sets",)))
SessionTemplatePatch = define("V2SessionTemplatePatch", Object(dict(_TEMPLATE_FIELDS, boot_sets=MapOf(
    BootSetPatch, key=Name(), min_properties=1, max_properties=127))))

# -- extended status, applystaged, options, version, health (api.md §2.9-§2.12) --------------

SessionCleanup = define("V2SessionCleanup", Object({
    "stopped_at": String(),
    "keep_configuration": Boolean(),
    "disabled": Array(ComponentId, description="disabled so no operator acts on them again"),
    "configuration_cleared": Array(ComponentId, description="CFS desired configuration cleared"),
    "staged_cleared": Array(ComponentId, description="staged state cleared"),
    "mid_power_transition": MapOf(String(), description="node -> its status when stopped (PCS request "
                                                        "sent, not confirmed: it completes on the node)"),
    "configuration_errors": Array(String()),
    "actions_still_running": Integer(0),
}, description="Extension: what stopping the session cleaned up, per node"))

Percent = Number()
ExtendedStatus = define("V2SessionExtendedStatus", Object({
    "status": String(enum=SESSION_STATUSES),
    "managed_components_count": Integer(0),
    "phases": Object({"percent_complete": Percent, "percent_powering_on": Percent,
                      "percent_powering_off": Percent, "percent_configuring": Percent}),
    "percent_successful": Percent,
    "percent_failed": Percent,
    "percent_staged": Percent,
    "error_summary": MapOf(Object({"count": Integer(0), "list": String()})),
    "timing": Object({"start_time": String(), "end_time": String(nullable=True), "duration": String()}),
    "waiting_for_slot": Integer(0, description="Extension (max_in_flight): nodes waiting for a slot"),
    "cleanup": SessionCleanup,
}))

# -- session control extensions (docs/deviations.md "Session control") -------------------------

SessionStop = define("V2SessionStop", Object({
    "keep_configuration": Boolean(default=False, description="Do not clear CFS desired configuration"),
}))
SessionStopResult = define("V2SessionStopResult", Object({
    "session": Session,
    "stopped": Boolean(description="False when the session had already completed on its own"),
    "cleanup": SessionCleanup,
}))
PlannedBootSet = Object({
    "nodes": Array(ComponentId),
    "node_count": Integer(0),
    "boot_artifacts": BootArtifacts,
    "configuration": String(),
    "arch": String(),
})
SessionPlan = define("V2SessionPlan", Object({
    "dry_run": Boolean(),
    "error": String(description="The error the session would end with (then nothing would be acted on)"),
    "session": SessionCreate,
    "boot_sets": MapOf(PlannedBootSet),
    "excluded": Array(Object({"id": ComponentId, "boot_set": String(), "reason": String()})),
    "taken_over": MapOf(String(), description="node -> the running session it would be taken from"),
    "warnings": Array(String()),
    "summary": Object({"nodes": Integer(0), "excluded": Integer(0), "taken_over": Integer(0),
                       "excluded_by_reason": MapOf(Integer(0))}),
}))
ApplyStagedRequest = define("V2ApplyStagedComponents", Object({
    "xnames": Array(ComponentId, 0, MAX_APPLYSTAGED_XNAMES),
}))
ApplyStagedResponse = define("V2ApplyStagedStatus", Object({
    "succeeded": Array(ComponentId, 0, MAX_APPLYSTAGED_XNAMES),
    "failed": Array(ComponentId, 0, MAX_APPLYSTAGED_XNAMES),
    "ignored": Array(ComponentId, 0, MAX_APPLYSTAGED_XNAMES),
}))

# The 20 options (api.md §2.11): schema and default of each, in one table.
OPTION_FIELDS = {
    "bss_read_timeout": Integer(10, 86400, default=20),
    "cfs_read_timeout": Integer(10, 86400, default=20),
    "cleanup_completed_session_ttl": String(1, 8, pattern=AGE_PATTERN, default="7d"),
    "clear_stage": Boolean(default=False),
    "component_actual_state_ttl": String(2, 8, pattern=TTL_PATTERN, default="4h"),
    "default_retry_policy": Integer(0, COUNTER_MAX, default=3),
    "discovery_frequency": Integer(0, 33554432, default=300),
    "hsm_read_timeout": Integer(10, 86400, default=20),
    "ims_errors_fatal": Boolean(default=False),
    "ims_images_must_exist": Boolean(default=False),
    "ims_read_timeout": Integer(10, 86400, default=20),
    "logging_level": String(enum=LOG_LEVELS, case_insensitive_enum=True, default="INFO"),
    "max_boot_wait_time": Integer(0, COUNTER_MAX, default=1200),
    "max_component_batch_size": Integer(0, 131071, default=2800),
    "max_power_off_wait_time": Integer(0, COUNTER_MAX, default=300),
    "max_power_on_wait_time": Integer(0, COUNTER_MAX, default=120),
    "pcs_read_timeout": Integer(10, 86400, default=20),
    "polling_frequency": Integer(0, COUNTER_MAX, default=15),
    "reject_nids": Boolean(default=False),
    "session_limit_required": Boolean(default=False),
}
Options = define("V2Options", Object(OPTION_FIELDS, additional="ignore", min_properties=1,
                                     max_properties=1024))

Version = define("Version", Object({
    "major": String(pattern=r"^(0|[1-9][0-9]*)$"),
    "minor": String(pattern=r"^(0|[1-9][0-9]*)$"),
    "patch": String(pattern=r"^(0|[1-9][0-9]*)$"),
    "links": Array(Link),
}))
Healthz = define("Healthz", Object({"dbStatus": String(), "apiStatus": String()}))
Problem = define("ProblemDetails", Object({
    "type": String(), "title": String(), "status": Integer(), "detail": String(), "instance": String(),
}))
