"""BOS API client used by the operators (api.md §3, operators.md §2.3-§2.4, §7).

The operators talk to the API over HTTP like any other client. This module
owns paging (`page_size` + `start_after_id`), patch batching and the §2.4
invariant that an operator patch with `desired_state` also carries `session`.

Every write the operators send sets absolute values (attempt counts are computed
from the record read, not incremented by the server), so sending one twice leaves
the same record: they are retried like GETs on a 503 or a dropped connection
(the API answers 503 while its Redis is away, operators.md §2.6).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple
from urllib.parse import quote

from bos_shared.records import Component  # the typed record (api.md §2.1)

from .bos_reads import StoreReads, store_query
from .rest import JsonClient

TENANT_HEADER = "Cray-Tenant-Name"
MINIMAL = {"Prefer": "return=minimal"}  # RFC 7240: bulk writes answer with the IDs written
# Upper bound on records per bulk write even when max_component_batch_size is 0
# ("unlimited"): keeps every request body bounded at 100,000 nodes.
MAX_WRITE_BATCH = 5000
# IDs per `GET /components?ids=...`: keeps the request line far below the 600 KiB the API accepts (D8).
IDS_PER_GET = 2000


class PatchInvariantError(AssertionError):
    """An operator tried to write `desired_state` without `session` (operators.md §2.4).

    Without `session` the server would detach the component from its session;
    this is a programming error, never a runtime condition.
    """


def check_patch_invariant(patches: Iterable[Mapping[str, Any]]) -> None:
    """Raise PatchInvariantError for any patch with `desired_state` but no `session`."""
    for patch in patches:
        if "desired_state" in patch and "session" not in patch:
            raise PatchInvariantError(f"patch for {patch.get('id')!r} has desired_state without session")


def batches(items: Sequence[Any], size: int) -> List[Sequence[Any]]:
    """Split into runs of `size` (0 or less = one run, capped at MAX_WRITE_BATCH)."""
    size = MAX_WRITE_BATCH if size <= 0 else min(size, MAX_WRITE_BATCH)
    return [items[i:i + size] for i in range(0, len(items), size)]


def _ids(body: Any) -> List[str]:
    """IDs of a bulk write's answer: the minimal form (a list of IDs) or full records."""
    if not isinstance(body, list):
        return []
    return [item["id"] if isinstance(item, dict) else item for item in body
            if isinstance(item, str) or (isinstance(item, dict) and isinstance(item.get("id"), str))]


async def _repaged(chunks: AsyncIterator[List[Component]], size: int) -> AsyncIterator[List[Component]]:
    """Chunks regrouped into pages of `size` (0 = one page), as the API's paging would give them;
    the last page is short (possibly empty), like the last page of `start_after_id` paging."""
    page: List[Component] = []
    async for chunk in chunks:
        page.extend(chunk)
        while size > 0 and len(page) >= size:
            yield page[:size]
            page = page[size:]
    yield page


def _tenant_headers(tenant: Optional[str]) -> Optional[Dict[str, str]]:
    return {TENANT_HEADER: tenant} if tenant else None


class BosClient:
    """Endpoints of the BOS API the operators use; base URL ends in `/v2`."""

    def __init__(self, http: JsonClient, reads: Optional[StoreReads] = None) -> None:
        self.http = http
        # Component listings straight from the API's Redis when the operators share it (bos_reads.py).
        self.reads = reads

    # -- options --
    async def get_options(self) -> Dict[str, Any]:
        body = await self.http.get("/options")
        return body if isinstance(body, dict) else {}

    # -- components --
    async def iter_component_pages(self, page_size: int, **filters: Any) -> AsyncIterator[List[Component]]:
        """Pages of `GET /components` (§2.3): repeat with start_after_id until a short page."""
        if self.reads is not None and (query := store_query(**filters)) is not None:
            async for page in _repaged(self.reads.pages(query), page_size):
                yield page
            return
        params = {k: v for k, v in filters.items() if v is not None}
        if page_size <= 0:
            yield await self._components(params)
            return
        params["page_size"] = page_size
        while True:
            page = await self._components(params)
            yield page
            if len(page) < page_size:
                return
            params["start_after_id"] = page[-1]["id"]

    async def component_page(self, page_size: int, start_after_id: Optional[str] = None,
                             **filters: Any) -> List[Component]:
        """One page of `GET /components` (page_size 0 = everything in one request)."""
        if self.reads is not None and (query := store_query(page_size, start_after_id, **filters)) is not None:
            return [c async for page in self.reads.pages(query) for c in page]
        params = {k: v for k, v in filters.items() if v is not None}
        if page_size > 0:
            params["page_size"] = page_size
            if start_after_id is not None:
                params["start_after_id"] = start_after_id
        return await self._components(params)

    async def list_components(self, page_size: int, **filters: Any) -> List[Component]:
        out: List[Component] = []
        async for page in self.iter_component_pages(page_size, **filters):
            out.extend(page)
        return out

    async def components_by_ids(self, ids: Sequence[str], **filters: Any) -> List[Component]:
        """Current records of `ids` that match `filters` (unknown IDs are omitted)."""
        if self.reads is not None and (query := store_query(**filters)) is not None:
            return await self.reads.components_by_ids(ids, query)
        found: List[Component] = []
        for start in range(0, len(ids), IDS_PER_GET):
            params = {k: v for k, v in filters.items() if v is not None}
            params["ids"] = ",".join(ids[start:start + IDS_PER_GET])
            found.extend(await self._components(params))
        return found

    async def acting_records(self, ids: Sequence[str], **filters: Any) -> List[Component]:
        """components_by_ids as the power operators read them under their claim: from the store,
        only the fields they read (bos_reads.acting_fields); else the API's records."""
        if self.reads is not None and (query := store_query(**filters)) is not None:
            return await self.reads.acting_records(ids, query)
        return await self.components_by_ids(ids, **filters)

    async def components_with_prints(self, ids: Sequence[str], **filters: Any
                                     ) -> Optional[Tuple[List[Component], Dict[str, int]]]:
        """components_by_ids with each record's fingerprint (bos_reads.py), or None when the
        records are not read from the store (then no fingerprints exist)."""
        if self.reads is None or (query := store_query(**filters)) is None:
            return None
        return await self.reads.components_with_prints(ids, query)

    async def component_ids(self, page_size: int) -> List[str]:
        """Every component's ID: from the store's ID index when the operators share the API's
        Redis (discovery at 100,000 nodes read and decoded every record for their IDs alone, a
        pass of 5-50 s during the benchmark's sessions), else paged through the API."""
        if self.reads is not None:
            return await self.reads.all_ids()
        return [c["id"] async for page in self.iter_component_pages(page_size) for c in page]

    async def enabled_ids_in(self, statuses: Sequence[str]) -> Optional[List[str]]:
        """IDs of the enabled components in any of `statuses` (no record read), or None without
        store reads."""
        return None if self.reads is None else await self.reads.enabled_ids_in(statuses)

    async def action_stamps(self, ids: Sequence[str]) -> Optional[Dict[str, Optional[str]]]:
        """Each record's `last_action.last_updated` (None: none; absent records left out), or None
        without store reads (bos_reads.StoreReads.action_stamps)."""
        return None if self.reads is None else await self.reads.action_stamps(ids)

    async def power_off_due(self, cutoff: float) -> Optional[Tuple[List[str], Optional[float]]]:
        """The enabled components waiting on a power-off call, due at `cutoff`, and the earliest stamp
        not due yet (bos_reads.StoreReads.power_off_due), or None without store reads."""
        return None if self.reads is None else await self.reads.power_off_due(cutoff)

    async def missing_from_power_off_index(self) -> Optional[List[str]]:
        """Enabled components in a power-off-called status that the power-off score index lacks
        (bos_reads.StoreReads.missing_from_power_off_index), or None without store reads."""
        return None if self.reads is None else await self.reads.missing_from_power_off_index()

    async def fingerprints(self, ids: Sequence[str]) -> Optional[List[Optional[int]]]:
        """Each stored record's fingerprint (None: absent), or None without store reads."""
        return None if self.reads is None else await self.reads.fingerprints(ids)

    async def written_since(self, last: Optional[str]) -> Tuple[Optional[str], Optional[Set[str]]]:
        """The store's write feed after entry `last` (store/write_feed.py): the position now and
        the IDs written since, or a None set when not known (no store reads: both None)."""
        return (None, None) if self.reads is None else await self.reads.written_since(last)

    async def any_component(self, **filters: Any) -> Optional[Component]:
        """The first matching component, or None: a cheap existence check (one indexed page of 1)."""
        page = await self.component_page(1, None, **filters)
        return page[0] if page else None

    async def any_matches(self, **filters: Any) -> bool:
        """Whether any component matches `filters`: from the store's indexes when they answer it
        (bos_reads.StoreReads.exists), else one indexed page of 1."""
        if self.reads is not None and (query := store_query(**filters)) is not None:
            found = await self.reads.exists(query)
            if found is not None:
                return found
        return await self.any_component(**filters) is not None

    async def _components(self, params: Mapping[str, Any]) -> List[Component]:
        body = await self.http.get("/components", params=params)
        return body if isinstance(body, list) else []

    async def patch_components(self, patches: Sequence[Mapping[str, Any]], batch_size: int = 0,
                               skip_bad_ids: bool = False) -> List[str]:
        """Bulk list-form PATCH in bounded batches; returns the IDs of the updated components.

        Asks for the minimal answer (`Prefer: return=minimal`, api.md §3.3.3): no operator reads
        the updated records, and decoding 100,000 of them was a third of a boot's operator CPU.
        A server that ignores the preference answers with the records; their IDs are taken."""
        check_patch_invariant(patches)
        updated: List[str] = []
        params = {"skip_bad_ids": True} if skip_bad_ids else None
        for batch in batches(list(patches), batch_size):
            body = await self.http.patch("/components", list(batch), params=params, idempotent=True,
                                         headers=MINIMAL)
            updated.extend(_ids(body))
        return updated

    async def create_components(self, records: Sequence[Mapping[str, Any]]) -> List[str]:
        """`PUT /components?create_only=true` (D32): only IDs that do not exist are written;
        returns the IDs created."""
        body = await self.http.put("/components", list(records), params={"create_only": True}, headers=MINIMAL)
        return _ids(body)

    # -- sessions --
    async def list_sessions(self, status: Optional[str] = None) -> List[Dict[str, Any]]:
        """All tenants' sessions (no tenant header), optionally by status."""
        body = await self.http.get("/sessions", params={"status": status})
        return body if isinstance(body, list) else []

    async def session_heads(self, status: Optional[str] = None) -> List[Dict[str, Any]]:
        """list_sessions, each session without its `components` string when read from the store
        (bos_reads.StoreReads.session_heads): for the per-pass reads that use other fields only."""
        if self.reads is not None:
            return await self.reads.session_heads(status)
        return await self.list_sessions(status)

    async def session_names(self, status: Optional[str] = None) -> List[Tuple[Optional[str], str]]:
        """(tenant, name) of every session (in `status`, if given), in the listing's order: from the
        store's indexes when read from the store (bos_reads.StoreReads.session_names), else from
        the listing."""
        if self.reads is not None:
            return await self.reads.session_names(status)
        return [(s.get("tenant") or None, s["name"]) for s in await self.list_sessions(status)]

    async def get_session(self, name: str, tenant: Optional[str]) -> Dict[str, Any]:
        body = await self.http.get(f"/sessions/{quote(name, safe='')}", headers=_tenant_headers(tenant))
        return body if isinstance(body, dict) else {}

    async def get_template(self, name: str, tenant: Optional[str]) -> Dict[str, Any]:
        body = await self.http.get(f"/sessiontemplates/{quote(name, safe='')}",
                                   headers=_tenant_headers(tenant))
        return body if isinstance(body, dict) else {}

    async def patch_session(self, name: str, tenant: Optional[str], body: Mapping[str, Any]) -> Dict[str, Any]:
        out = await self.http.patch(f"/sessions/{quote(name, safe='')}", dict(body),
                                    headers=_tenant_headers(tenant), idempotent=True)
        return out if isinstance(out, dict) else {}

    async def save_session_status(self, name: str, tenant: Optional[str]) -> Dict[str, Any]:
        out = await self.http.post(f"/sessions/{quote(name, safe='')}/status",
                                   headers=_tenant_headers(tenant), idempotent=True)
        return out if isinstance(out, dict) else {}

    async def delete_sessions(self, status: str, min_age: str) -> None:
        await self.http.delete("/sessions", params={"status": status, "min_age": min_age})
