"""The BOS v1 wire schema (v1.md §2-§3): request bodies of the v1 compatibility API.

v1 templates are stored as v2 templates (v1.md §1), so only the v1 *input*
shape lives here; what is stored and returned is `schema.SessionTemplate`.
"""

from __future__ import annotations

from .schema import COUNTER_MAX, MAX_LIMIT_LENGTH, Link, Name
from .schema_types import Array, Boolean, Integer, MapOf, Object, String

OPERATIONS = ("boot", "configure", "reboot", "shutdown")
PHASES = ("boot", "configure", "shutdown")
CATEGORIES = ("not_started", "in_progress", "succeeded", "failed", "excluded")
# BOA's order when it creates a phase (v1.md §2.4): kept as created.
BOA_CATEGORY_ORDER = ("not_started", "succeeded", "failed", "excluded", "in_progress")
# Phases per operation, in the order the agent creates them (v1.md §4.2).
OPERATION_PHASES = {"boot": ("boot", "configure"), "reboot": ("shutdown", "boot", "configure"),
                    "shutdown": ("shutdown",), "configure": ("configure",)}
UPDATE_TYPES = ("NodeChangeList", "NodeErrorsList", "GenericMetadata")
BOOT_SET_PHASE = "boot_set"  # GenericMetadata on the boot set itself

_NODES = Array(String(1, 127), 1, 65535)

# -- templates (v1.md §3.1) -------------------------------------------------------------------

V1_ONLY_TEMPLATE_FIELDS = ("cfs_url", "cfs_branch", "partition")
V1_ONLY_CFS_FIELDS = ("clone_url", "branch", "commit", "playbook")
V1_ONLY_BOOT_SET_FIELDS = ("network",)

BootSet = Object({
    "name": String(),
    "path": String(1, 4095),
    "type": String(1, 127),
    "etag": String(0, 65536),
    "kernel_parameters": String(0, 4096),
    "rootfs_provider": String(0, 511),
    "rootfs_provider_passthrough": String(0, 4096),
    "node_list": _NODES,
    "node_roles_groups": Array(String(1, 127), 1, 1023),
    "node_groups": Array(String(1, 127), 1, 4095),
    "network": String(pattern=r"^[nN][mM][nN]$"),
    "boot_ordinal": Integer(0, COUNTER_MAX),
    "shutdown_ordinal": Integer(0, COUNTER_MAX),
}, required=("path", "type"))
SessionTemplate = Object({
    "name": String(1),
    "description": String(),
    "enable_cfs": Boolean(),
    "cfs": Object({"configuration": String(0, 127), "clone_url": String(), "branch": String(),
                   "commit": String(), "playbook": String()}),
    "cfs_url": String(),
    "cfs_branch": String(),
    "partition": String(),
    "boot_sets": MapOf(BootSet),
}, required=("name",))

# -- sessions (v1.md §2.3) --------------------------------------------------------------------

SessionCreate = Object({
    "operation": String(enum=OPERATIONS, case_insensitive_enum=True),
    "templateName": String(1),
    "templateUuid": String(1),
    "limit": String(0, MAX_LIMIT_LENGTH),
}, required=("operation",))
SESSION_READ_ONLY = ("job", "links")

# -- status tree (v1.md §2.4) -----------------------------------------------------------------

Metadata = Object({
    "start_time": String(0, 127),
    "stop_time": String(0, 127, nullable=True),
    "complete": Boolean(),
    "in_progress": Boolean(),
    "error_count": Integer(),
}, additional="ignore")
SessionStatusCreate = Object({
    "id": String(),
    "boot_sets": Array(Name()),
    "metadata": Metadata,
    "links": Array(Link),
})
Category = Object({"name": String(enum=CATEGORIES, case_insensitive_enum=True), "node_list": Array(String(1, 127))},
                  required=("name",))
Phase = Object({
    "name": String(enum=PHASES, case_insensitive_enum=True),
    "metadata": Metadata,
    "categories": Array(Category),
    "errors": MapOf(Array(String(1, 127))),
}, required=("name",))
BootSetStatusCreate = Object({
    "name": String(),
    "session": String(),
    "metadata": Metadata,
    "phases": Array(Phase),
    "links": Array(Link),
})
NodeChange = Object({
    "phase": String(enum=PHASES, case_insensitive_enum=True),
    "source": String(enum=CATEGORIES, case_insensitive_enum=True),
    "destination": String(enum=CATEGORIES, case_insensitive_enum=True),
    "node_list": Array(String(1, 127)),
}, required=("phase", "source", "destination", "node_list"))
NodeErrors = MapOf(Array(String(1, 127)))
GenericMetadata = Object({"start_time": String(0, 127), "stop_time": String(0, 127, nullable=True)})
# An update item is {"update_type", "phase", "data"}; `data` is checked by DATA_BY_TYPE.
UpdateHead = Object({"update_type": String(enum=UPDATE_TYPES), "phase": String(1, 127)},
                    required=("update_type", "phase"))
DATA_BY_TYPE = {"NodeChangeList": NodeChange, "NodeErrorsList": NodeErrors, "GenericMetadata": GenericMetadata}
