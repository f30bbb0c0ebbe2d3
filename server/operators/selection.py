"""Node selection for one boot set of a session (operators.md §6.1, §6.3).

The order of the steps matters and is fixed here. Data comes from a
`Sources` object (HSM and TAPMS behind it in production, plain dicts in tests),
so the algebra is tested without HTTP.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Protocol, Set

from bos_shared.limits import evaluate_limit, names_nothing, no_limit

from ..clients.hsm import HsmClient, roles_of
from ..clients.tapms import TapmsClient, TenantNotFound

LOG = logging.getLogger(__name__)

TENANT_FOREIGN = ("The session template includes nodes which do not exist or are not available "
                  "to this tenant: {}")
TENANT_UNKNOWN = "Data not found for tenant {}"


class SetupError(Exception):
    """Session setup cannot proceed; the message becomes the session's `status.error`."""


class Sources(Protocol):
    async def groups(self) -> Mapping[str, Iterable[str]]: ...
    async def partitions(self) -> Mapping[str, Iterable[str]]: ...
    async def roles(self) -> Mapping[str, Iterable[str]]: ...
    async def locked(self) -> Set[str]: ...
    async def tenant_xnames(self, tenant: str) -> FrozenSet[str]: ...
    async def query(self, ids: Iterable[str], enabled_only: bool) -> List[Dict[str, Any]]: ...


class HsmInventory:
    """The lazily-loaded HSM inventory shared by all sessions of one setup pass (§6.1)."""

    def __init__(self, hsm: HsmClient, tapms: TapmsClient) -> None:
        self.hsm = hsm
        self.tapms = tapms
        self._groups: Optional[Dict[str, List[str]]] = None
        self._partitions: Optional[Dict[str, List[str]]] = None
        self._roles: Optional[Dict[str, List[str]]] = None
        self._locked: Optional[Set[str]] = None

    async def groups(self) -> Mapping[str, Iterable[str]]:
        if self._groups is None:
            self._groups = await self.hsm.groups()
        return self._groups

    async def partitions(self) -> Mapping[str, Iterable[str]]:
        if self._partitions is None:
            self._partitions = await self.hsm.partitions()
        return self._partitions

    async def roles(self) -> Mapping[str, Iterable[str]]:
        if self._roles is None:
            self._roles = roles_of(await self.hsm.all_components())
        return self._roles

    async def locked(self) -> Set[str]:
        if self._locked is None:
            self._locked = await self.hsm.locked_nodes()
        return self._locked

    async def tenant_xnames(self, tenant: str) -> FrozenSet[str]:
        return await self.tapms.tenant_xnames(tenant)

    async def query(self, ids: Iterable[str], enabled_only: bool) -> List[Dict[str, Any]]:
        return await self.hsm.query(ids, enabled_only=enabled_only)


# -- architecture (D22) --

def normalise_arch(value: Any) -> str:
    """HSM `Arch` as one of x86/arm/other/unknown (absent, empty, UNKNOWN in any case = unknown)."""
    text = str(value or "").strip().lower()
    return text if text in ("x86", "arm", "other") else "unknown"


_ARCH_ACCEPTS = {"x86": {"x86", "unknown"}, "arm": {"arm"}, "other": {"other"}, "unknown": {"unknown"}}


def arch_matches(boot_set_arch: Optional[str], hsm_arch: Any) -> bool:
    """Boot-set `arch` (absent = X86) against a node's HSM `Arch` (D22)."""
    wanted = (boot_set_arch or "X86").strip().lower()
    return normalise_arch(hsm_arch) in _ARCH_ACCEPTS.get(wanted, set())


# -- the steps --

async def _tenant_set(sources: Sources, tenant: str) -> FrozenSet[str]:
    try:
        return await sources.tenant_xnames(tenant)
    except TenantNotFound as exc:
        raise SetupError(TENANT_UNKNOWN.format(tenant)) from exc


async def candidates(boot_set: Mapping[str, Any], tenant: Optional[str], sources: Sources,
                     warnings: List[str]) -> Set[str]:
    """Steps 1-3: node_list (tenant-checked), then node_groups, then node_roles_groups."""
    nodes: Set[str] = set(boot_set.get("node_list") or [])
    if tenant and nodes:
        foreign = nodes - await _tenant_set(sources, tenant)
        if foreign:
            raise SetupError(TENANT_FOREIGN.format(",".join(sorted(foreign))))
    for label in boot_set.get("node_groups") or []:
        members = (await sources.groups()).get(label)
        if members is None:
            warnings.append(f"No hardware matching label {label}")
            continue
        nodes.update(members)
    for role in boot_set.get("node_roles_groups") or []:
        members = (await sources.roles()).get(role)
        if members is None:
            warnings.append(f"No hardware matching role {role}")
            continue
        nodes.update(members)
    return nodes


async def name_resolver(sources: Sources) -> Callable[[str], Optional[Iterable[str]]]:
    """Limit names: roles over partitions over groups when names clash (§6.1); None = literal xname."""
    tables = (await sources.roles(), await sources.partitions(), await sources.groups())

    def resolve(name: str) -> Optional[Iterable[str]]:
        for table in tables:
            if name in table:
                return table[name]
        return None
    return resolve


async def apply_limit(nodes: Set[str], limit: Optional[str], sources: Sources) -> Set[str]:
    """Step 5: the session limit (D21 empty items ignored); `all`/`*` = this boot set's nodes.

    No limit keeps every node; a limit with no items keeps none (D21).
    """
    if no_limit(limit):
        return nodes
    if names_nothing(limit):
        return set()
    return evaluate_limit(limit, nodes, await name_resolver(sources))


def arch_kept(nodes: Set[str], found: List[Dict[str, Any]], arch: Optional[str],
              excluded: Optional[Dict[str, str]] = None) -> Set[str]:
    """Step 8: keep nodes whose HSM Arch matches the boot set's arch (D22), from HSM's answer
    for `nodes` (`POST /State/Components/Query`)."""
    kept = {c["ID"] for c in found if c.get("ID") in nodes and arch_matches(arch, c.get("Arch"))}
    if excluded is not None:
        known = {c["ID"]: c.get("Arch") for c in found if c.get("ID") in nodes}
        for node in nodes - kept:
            excluded[node] = (NOT_IN_HSM if node not in known else
                              WRONG_ARCH.format(known[node] or "none", arch or "X86"))
    return kept


async def filter_enabled(nodes: Set[str], sources: Sources,
                         found: Optional[List[Dict[str, Any]]] = None) -> Set[str]:
    """Step 9: keep nodes HSM reports as enabled. From step 8's answer when every entry of it
    carries `Enabled` (one HSM query of the whole session's nodes instead of two: issue 13,
    session start); else with the `enabled` filter, as §6.3 says."""
    if found is not None and all(isinstance(c.get("Enabled"), bool) for c in found):
        return {c["ID"] for c in found if c.get("ID") in nodes and c["Enabled"]}
    found = await sources.query(sorted(nodes), True)
    return {c["ID"] for c in found if c.get("ID") in nodes}


# Why a node of a boot set is left out (dry-run plans, docs/deviations.md "Session control").
NOT_IN_LIMIT = "not in limit"
LOCKED = "locked in HSM"
NOT_IN_TENANT = "not in tenant"
NOT_IN_HSM = "not found in HSM"
WRONG_ARCH = "wrong arch (HSM {}, boot set {})"
DISABLED = "disabled in HSM"


def _drop(before: Set[str], after: Set[str], reason: str, excluded: Optional[Dict[str, str]]) -> Set[str]:
    if excluded is not None:
        excluded.update(dict.fromkeys(before - after, reason))
    return after


async def select_nodes(boot_set: Mapping[str, Any], session: Mapping[str, Any], sources: Sources,
                       warnings: Optional[List[str]] = None,
                       excluded: Optional[Dict[str, str]] = None) -> Set[str]:
    """Steps 1-9 of §6.3 for one boot set; stops as soon as the set is empty.

    `excluded`, when given, receives every candidate left out and why (a dry run
    shows them; session setup does not ask). Raises SetupError for tenant
    problems; HSM/TAPMS failures propagate (the caller completes the session).
    """
    warnings = warnings if warnings is not None else []
    tenant = session.get("tenant") or None
    nodes = await candidates(boot_set, tenant, sources, warnings)
    if nodes:
        nodes = _drop(nodes, await apply_limit(nodes, session.get("limit"), sources), NOT_IN_LIMIT, excluded)
    if nodes:
        nodes = _drop(nodes, nodes - await sources.locked(), LOCKED, excluded)
    if nodes and tenant:
        nodes = _drop(nodes, nodes & await _tenant_set(sources, tenant), NOT_IN_TENANT, excluded)
    found: List[Dict[str, Any]] = []
    if nodes:
        found = await sources.query(sorted(nodes), False)
        nodes = arch_kept(nodes, found, boot_set.get("arch"), excluded)
    if nodes and not session.get("include_disabled"):
        nodes = _drop(nodes, await filter_enabled(nodes, sources, found), DISABLED, excluded)
    return nodes
