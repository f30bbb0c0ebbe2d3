"""HSM client (services.md §2): inventory, locks and existence/arch/enablement queries.

Queries put ID lists in POST bodies (URLs are too short) and split them into
bounded chunks so no request grows with the cluster.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Dict, Iterable, List, Optional, Sequence, Tuple

from .rest import JsonClient
from .slim import Slim, slim_decoder, slim_items

QUERY_CHUNK = 5000
# What the operators read of a queried component (session setup's arch and enabled steps, the
# power operators' existence check): the rest of each record is dropped chunk by chunk, so a
# 100,000-node query does not hold 100,000 full HSM records.
QUERY_FIELDS = ("ID", "Type", "Enabled", "Arch", "Role", "SubRole")


def chunked(ids: Sequence[str], size: int) -> List[Sequence[str]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _components(body: Any) -> List[Dict[str, Any]]:
    if not isinstance(body, dict):
        return []
    return [c for c in body.get("Components") or [] if isinstance(c, dict) and c.get("ID")]


def _members(entries: Any, key: str) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not entry.get(key):
            continue
        out[entry[key]] = list(((entry.get("members") or {}).get("ids")) or [])
    return out


class HsmClient:
    def __init__(self, http: JsonClient, chunk: int = QUERY_CHUNK) -> None:
        self.http = http
        self.chunk = chunk

    async def all_components(self) -> List[Dict[str, Any]]:
        """`GET /State/Components`: every component (nodes, BMCs, ...)."""
        return _components(await self.http.get("/State/Components"))

    async def _answers(self, ids: Iterable[str], enabled_only: bool,
                       fields: Tuple[str, ...]) -> AsyncIterator[List[Dict[str, Any]]]:
        """`POST /State/Components/Query` for `ids`, chunked: each answer's components in turn,
        `fields` of each (None where HSM gives none; the rest skipped unread, slim.py).

        `enabled_only` adds `"enabled": ["True"]` (session setup's include_disabled filter).
        """
        decoder = slim_decoder("Components", fields)
        for chunk in chunked(sorted(set(ids)), self.chunk):
            body: Dict[str, Any] = {"ComponentIDs": list(chunk)}
            if enabled_only:
                body["enabled"] = ["True"]
            answer = await self.http.post("/State/Components/Query", body, decoder=decoder, reads=True)
            if isinstance(answer, Slim):
                yield slim_items(answer, "Components", "ID")
            else:  # another shape, read in full
                yield [{k: c.get(k) for k in fields} for c in _components(answer)]

    async def query(self, ids: Iterable[str], enabled_only: bool = False) -> List[Dict[str, Any]]:
        """The queried components (QUERY_FIELDS of each); unknown IDs are absent."""
        found: List[Dict[str, Any]] = []
        async for answer in self._answers(ids, enabled_only, QUERY_FIELDS):
            found.extend(answer)
        return found

    async def existing(self, ids: Iterable[str]) -> set:
        """The subset of `ids` HSM knows (power operators' selection step, operators.md §5.1): the
        IDs alone are taken from each answer (the power operators ask about every node of a
        session at each pass)."""
        found: set = set()
        async for answer in self._answers(ids, False, ("ID",)):
            found.update(c["ID"] for c in answer)
        return found

    async def groups(self) -> Dict[str, List[str]]:
        return _members(await self.http.get("/groups"), "label")

    async def partitions(self) -> Dict[str, List[str]]:
        return _members(await self.http.get("/partitions"), "name")

    async def locked_nodes(self) -> set:
        body = await self.http.get("/locks/status", params={"type": "Node", "locked": True})
        return {c["ID"] for c in _components(body)}


def roles_of(components: Iterable[Dict[str, Any]]) -> Dict[str, List[str]]:
    """Role inventory (operators.md §6.1): `Role` and `Role_SubRole` -> member IDs."""
    roles: Dict[str, List[str]] = {}
    for comp in components:
        role: Optional[str] = comp.get("Role")
        if not role:
            continue
        roles.setdefault(role, []).append(comp["ID"])
        sub = comp.get("SubRole")
        if sub:
            roles.setdefault(f"{role}_{sub}", []).append(comp["ID"])
    return roles
