"""Typed shapes of the stored records (api.md §2): what code passes around, as the wire
schema in `schema.py` describes it.

The schema stays the one source of truth for validation and the OpenAPI document; these
TypedDicts and Literals give the type checker the same facts (a test holds the Literals
equal to the schema's enumerations). Every key is optional (`total=False`), as in the
records themselves: a PATCH body or an old record may carry any subset.
"""

from __future__ import annotations

from typing import Dict, List, Literal, Optional, TypedDict, Union  # all in the standard library since 3.8

Phase = Literal["powering_on", "powering_off", "configuring", ""]
Action = Literal["actual_state_cleanup", "apply_staged", "newly_discovered", "powering_off_forcefully",
                 "powering_off_gracefully", "powering_on", "session_setup"]
ComponentStatusName = Literal["power_on_pending", "power_on_called", "power_off_pending",
                              "power_off_gracefully_called", "power_off_forcefully_called",
                              "configuring", "stable", "failed", "on_hold"]
Operation = Literal["boot", "reboot", "shutdown"]
SessionStatusName = Literal["pending", "running", "complete"]
PowerAction = Literal["On", "Soft-Off", "Force-Off", "Hard-Restart", "Soft-Restart", "Init"]


class BootArtifacts(TypedDict, total=False):
    kernel: str
    kernel_parameters: str
    initrd: str
    timestamp: str  # stored with a resolved actual state, never shown (D12)


class ActualState(TypedDict, total=False):
    boot_artifacts: BootArtifacts
    bss_token: str
    last_updated: str


class DesiredState(TypedDict, total=False):
    boot_artifacts: BootArtifacts
    configuration: str
    bss_token: str
    last_updated: str


class StagedState(TypedDict, total=False):
    boot_artifacts: BootArtifacts
    configuration: str
    session: str
    last_updated: str


class LastAction(TypedDict, total=False):
    action: Action
    failed: bool
    last_updated: str


class EventStats(TypedDict, total=False):
    power_on_attempts: int
    power_off_graceful_attempts: int
    power_off_forceful_attempts: int


class ComponentStatus(TypedDict, total=False):
    phase: Phase
    status_override: str
    status: ComponentStatusName  # computed on read (api.md §2.3), never stored


class Component(TypedDict, total=False):
    """One node's record (api.md §2.1)."""

    id: str
    actual_state: ActualState
    desired_state: DesiredState
    staged_state: StagedState
    last_action: LastAction
    event_stats: EventStats
    status: ComponentStatus
    enabled: bool
    error: str
    session: str
    retry_policy: int


class SessionStatus(TypedDict, total=False):
    start_time: str
    end_time: Optional[str]
    status: SessionStatusName
    error: Optional[str]


class Session(TypedDict, total=False):
    """A session (api.md §2.7); `tenant` is "" or None for the untenanted."""

    name: str
    tenant: Optional[str]
    operation: Operation
    template_name: str
    limit: Optional[str]
    stage: bool
    components: str
    include_disabled: bool
    status: SessionStatus
    max_in_flight: int  # extension: rolling waves (api.md §3.10)
    max_failed: Union[int, str]  # extension: a count or "N%"


class CfsParameters(TypedDict, total=False):
    configuration: str


class BootSet(TypedDict, total=False):
    name: str
    path: str
    type: str
    etag: str
    kernel_parameters: str
    node_list: List[str]
    node_roles_groups: List[str]
    node_groups: List[str]
    arch: str
    rootfs_provider: str
    rootfs_provider_passthrough: str
    cfs: CfsParameters
    boot_ordinal: int
    shutdown_ordinal: int


class Link(TypedDict, total=False):
    href: str
    rel: str


class SessionTemplate(TypedDict, total=False):
    """A session template (api.md §2.8)."""

    name: str
    tenant: Optional[str]
    description: str
    enable_cfs: bool
    cfs: CfsParameters
    boot_sets: Dict[str, BootSet]
    links: List[Link]


# The options (api.md §2.11) are a plain mapping of the 20 settings: `options.DEFAULTS` and
# the schema's V2Options hold their names and types.
Options = Dict[str, object]
