"""The declarative description of a simulated cluster (services.md §9.1).

An inventory is either generated for `--nodes N` or loaded from a YAML/JSON
file; both produce the same `Inventory`, which `cluster.Cluster` turns into
live state. File format (every section optional)::

    delays: {power_on: 2, boot: 5, soft_off: 3, force_off: 1, configure: 3}
    nodes:
      - {xname: x3000c0s19b1n0, nid: 1, role: Compute, subrole: null, arch: X86,
         enabled: true, locked: false, power: off, class: River,
         faults: {ignore_soft_off: true}}          # arch: null = no Arch field
    components:  [{xname: x3000c0s19b1, type: NodeBMC}]
    groups:      [{label: compute, description: "", tags: [], exclusive_group: null, members: [...]}]
    partitions:  [{name: p1, description: "", members: [...]}]
    tenants:     [{name: vcluster-blue, uuid: ..., hsm_group: blue, xnames: [...]}]
    images:      [{id: <uuid>, name: compute, arch: x86_64, boot_parameters: "console=...",
                   initrd: true, rootfs: true, manifest: null}]
    s3_objects:  [{bucket: b, key: k, body: "text"}]
    cfs_configurations: [compute-23.4.0, {name: fail-config, fails: true}]
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml

from bos_shared.xnames import is_valid_xname

from .determinism import seeded_uuid
from .faults import NodeFaults

DEFAULT_IMAGE_ID = "9e3c75e1-ac42-42c7-873c-e758048897d6"
DEFAULT_IMAGE_NAME = "compute-sles15sp6"
DEFAULT_BOOT_PARAMETERS = "console=ttyS0,115200 bad_page=panic crashkernel=360M spire_join_token=${SPIRE_JOIN_TOKEN}"
BOOT_BUCKET = "boot-images"
TENANT_NAME = "vcluster-blue"
GOOD_CONFIGS = ("compute-23.4.0", "uan-23.4.0")
FAILING_CONFIG = "fail-config"
# 8 chassis x 8 slots x 2 BMCs x 2 nodes per cabinet.
NODES_PER_CABINET = 256


class InventoryError(ValueError):
    """The inventory file is not usable; the message says where."""


@dataclass(slots=True)
class NodeSpec:
    xname: str
    nid: Optional[int]
    role: str = "Compute"
    subrole: Optional[str] = None
    arch: Optional[str] = "X86"
    enabled: bool = True
    locked: bool = False
    power: str = "off"
    cls: str = "River"
    faults: Optional[NodeFaults] = None


@dataclass
class ComponentSpec:
    """A non-node HSM component (BMCs, switches, ...)."""

    xname: str
    type: str = "NodeBMC"
    enabled: bool = True
    arch: Optional[str] = "X86"
    cls: str = "River"


@dataclass
class GroupSpec:
    label: str
    members: List[str] = field(default_factory=list)
    description: str = ""
    tags: List[str] = field(default_factory=list)
    exclusive_group: Optional[str] = None


@dataclass
class PartitionSpec:
    name: str
    members: List[str] = field(default_factory=list)
    description: str = ""
    tags: List[str] = field(default_factory=list)


@dataclass
class TenantSpec:
    name: str
    xnames: List[str] = field(default_factory=list)
    uuid: str = ""
    hsm_group: str = ""
    state: str = "Deployed"


@dataclass
class ImageSpec:
    id: str
    name: str
    arch: Optional[str] = "x86_64"
    boot_parameters: Optional[str] = DEFAULT_BOOT_PARAMETERS
    initrd: bool = True
    rootfs: bool = True
    manifest: Optional[Dict[str, Any]] = None
    created: str = "2024-05-01T12:00:00.000000+00:00"


@dataclass
class S3ObjectSpec:
    bucket: str
    key: str
    body: bytes


@dataclass
class ConfigSpec:
    name: str
    fails: bool = False
    layers: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class Inventory:
    nodes: List[NodeSpec] = field(default_factory=list)
    components: List[ComponentSpec] = field(default_factory=list)
    groups: List[GroupSpec] = field(default_factory=list)
    partitions: List[PartitionSpec] = field(default_factory=list)
    tenants: List[TenantSpec] = field(default_factory=list)
    images: List[ImageSpec] = field(default_factory=list)
    s3_objects: List[S3ObjectSpec] = field(default_factory=list)
    configurations: List[ConfigSpec] = field(default_factory=list)
    delays: Dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- generation

def node_xname(index: int) -> str:
    """The xname of the `index`-th generated node (0-based), filling cabinets in order."""
    cabinet, rest = divmod(index, NODES_PER_CABINET)
    chassis, rest = divmod(rest, 32)
    slot, rest = divmod(rest, 4)
    bmc, node = divmod(rest, 2)
    return f"x{1000 + cabinet}c{chassis}s{slot}b{bmc}n{node}"


def _uan_count(count: int) -> int:
    if count >= 100:
        return count // 50
    return 1 if count >= 4 else 0


def generate(count: int, seed: int = 0) -> Inventory:
    """A plausible cluster of `count` nodes: mostly compute, a few UANs, one tenant, one image."""
    if count < 0:
        raise InventoryError("--nodes must not be negative")
    uans = _uan_count(count)
    nodes = [_generated_node(i, count - uans) for i in range(count)]
    compute = [n.xname for n in nodes if n.role == "Compute"]
    tenant_nodes = compute[: min(4, len(compute))]
    return Inventory(
        nodes=nodes,
        components=[ComponentSpec(xname) for xname in sorted({n.xname[: n.xname.rindex("n")] for n in nodes[:8]})],
        groups=[GroupSpec("compute", compute, "All compute nodes", ["compute"]),
                GroupSpec("uan", [n.xname for n in nodes if n.subrole == "UAN"], "User access nodes", ["uan"]),
                GroupSpec("blue", tenant_nodes, "Tenant vcluster-blue", [], "tenants")],
        partitions=[PartitionSpec("p1", [n.xname for n in nodes[: (count + 1) // 2]], "Partition 1")],
        tenants=[TenantSpec(TENANT_NAME, tenant_nodes, seeded_uuid(seed, "tenant", TENANT_NAME), "blue")],
        images=[ImageSpec(DEFAULT_IMAGE_ID, DEFAULT_IMAGE_NAME)],
        configurations=[ConfigSpec(name) for name in GOOD_CONFIGS] + [ConfigSpec(FAILING_CONFIG, fails=True)],
    )


def _generated_node(index: int, first_uan: int) -> NodeSpec:
    xname = node_xname(index)
    if index >= first_uan:
        return NodeSpec(xname, index + 1, role="Application", subrole="UAN")
    # Every 20th node (from the 8th) lacks Arch, as real HSM entries sometimes do (D22).
    arch = None if index % 20 == 7 else "X86"
    return NodeSpec(xname, index + 1, arch=arch, cls="Mountain" if index % 2 else "River")


# --------------------------------------------------------------------------- loading

def load(path: Path) -> Inventory:
    """Read a YAML or JSON inventory file (JSON is valid YAML)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InventoryError(f"cannot read inventory {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InventoryError(f"inventory {path} must be a mapping at the top level")
    return from_mapping(data)


def from_mapping(data: Mapping[str, Any]) -> Inventory:
    inv = Inventory(
        nodes=[parse_node(item, i) for i, item in enumerate(_list(data, "nodes"))],
        components=[_component(item) for item in _list(data, "components")],
        groups=[GroupSpec(str(g["label"]), _ids(g.get("members")), str(g.get("description", "")),
                          list(g.get("tags") or []), g.get("exclusive_group")) for g in _list(data, "groups")],
        partitions=[PartitionSpec(str(p["name"]), _ids(p.get("members")), str(p.get("description", "")),
                                  list(p.get("tags") or [])) for p in _list(data, "partitions")],
        tenants=[TenantSpec(str(t["name"]), _ids(t.get("xnames")), str(t.get("uuid") or uuid.uuid4()),
                            str(t.get("hsm_group", "")), str(t.get("state", "Deployed"))) for t in _list(data, "tenants")],
        images=[_image(item) for item in _list(data, "images")],
        s3_objects=[S3ObjectSpec(str(o["bucket"]), str(o["key"]), str(o.get("body", "")).encode())
                    for o in _list(data, "s3_objects")],
        configurations=[_config(item) for item in _list(data, "cfs_configurations")],
        delays={str(k): float(v) for k, v in (data.get("delays") or {}).items()},
    )
    _check_unique([n.xname for n in inv.nodes] + [c.xname for c in inv.components])
    return inv


def _list(data: Mapping[str, Any], key: str) -> List[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise InventoryError(f"'{key}' must be a list")
    return value


def _ids(value: Any) -> List[str]:
    if isinstance(value, dict):  # accept the HSM shape {"ids": [...]}
        value = value.get("ids")
    return [str(item) for item in (value or [])]


def parse_node(item: Any, index: int) -> NodeSpec:
    """One node entry of an inventory file (also the body of the control API's add-node)."""
    if not isinstance(item, dict) or not (item.get("xname") or item.get("id")):
        raise InventoryError(f"nodes[{index}] needs an xname")
    xname = str(item.get("xname") or item.get("id"))
    if not is_valid_xname(xname):
        raise InventoryError(f"nodes[{index}]: '{xname}' is not a valid xname")
    power = item.get("power", "off")
    if isinstance(power, bool):  # YAML 1.1 reads a bare on/off as a boolean
        power = "on" if power else "off"
    power = str(power).lower()
    if power not in ("on", "off"):
        raise InventoryError(f"nodes[{index}]: power must be on or off")
    try:
        faults = NodeFaults.from_mapping(item["faults"]) if item.get("faults") else None
    except (TypeError, ValueError) as exc:
        raise InventoryError(f"nodes[{index}]: {exc}") from exc
    nid = item.get("nid", index + 1)
    return NodeSpec(xname, int(nid) if nid is not None else None, str(item.get("role", "Compute")),
                    item.get("subrole"), item["arch"] if "arch" in item else "X86", bool(item.get("enabled", True)),
                    bool(item.get("locked", False)), power, str(item.get("class", "River")), faults)


def _component(item: Any) -> ComponentSpec:
    if not isinstance(item, dict) or not item.get("xname"):
        raise InventoryError("every entry of 'components' needs an xname")
    return ComponentSpec(str(item["xname"]), str(item.get("type", "NodeBMC")), bool(item.get("enabled", True)),
                         item["arch"] if "arch" in item else "X86", str(item.get("class", "River")))


def _image(item: Any) -> ImageSpec:
    if not isinstance(item, dict) or not item.get("id"):
        raise InventoryError("every image needs an id")
    params = item["boot_parameters"] if "boot_parameters" in item else DEFAULT_BOOT_PARAMETERS
    return ImageSpec(str(item["id"]), str(item.get("name", item["id"])), item.get("arch", "x86_64"), params,
                     bool(item.get("initrd", True)), bool(item.get("rootfs", True)), item.get("manifest"),
                     str(item.get("created", "2024-05-01T12:00:00.000000+00:00")))


def _config(item: Any) -> ConfigSpec:
    if isinstance(item, str):
        return ConfigSpec(item)
    if not isinstance(item, dict) or not item.get("name"):
        raise InventoryError("every CFS configuration needs a name")
    return ConfigSpec(str(item["name"]), bool(item.get("fails", False)), list(item.get("layers") or []))


def _check_unique(xnames: List[str]) -> None:
    seen: set = set()
    for xname in xnames:
        if xname in seen:
            raise InventoryError(f"xname '{xname}' appears twice in the inventory")
        seen.add(xname)
