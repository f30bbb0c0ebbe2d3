"""CFS v3 client (services.md §5): component listing (paged via `next`) and filter patches."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from .rest import JsonClient
from .slim import Slim, slim_decoder, slim_items, slim_value

GET_IDS_CHUNK = 200
PATCH_IDS_CHUNK = 1000
# By-ID GETs (`components`) sent at once: a batch of 2,800 is 14 GETs, which one after the other
# were the longest of the status operator's three requests per look at a batch session setup had
# just enabled (issue 13, realistic latencies), and a pass asking about 20,000 IDs sent 100 in turn.
GETS_IN_FLIGHT = 4


def _next_params(next_obj: Any) -> Optional[Dict[str, Any]]:
    """The `next` object as query parameters (null values omitted); None on the last page."""
    if not isinstance(next_obj, dict):
        return None
    return {k: v for k, v in next_obj.items() if v is not None}


class CfsClient:
    def __init__(self, http: JsonClient) -> None:
        self.http = http

    async def _pages(self, params: Mapping[str, Any],
                     fields: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
        """Every page's components; only `id` and `fields` of each when `fields` is given."""
        out: List[Dict[str, Any]] = []
        query: Optional[Dict[str, Any]] = dict(params)
        # with fields, the rest of each record is skipped unread (slim.py: the status operator
        # lists all of CFS for a pass that looks at many components, to keep two fields)
        decoder = None if fields is None else slim_decoder("components", ("id", *fields), ("next",))
        while query is not None:
            body = await self.http.get("/components", params=query, decoder=decoder)
            if isinstance(body, Slim):
                out.extend(slim_items(body, "components", "id"))
                query = _next_params(slim_value(body, "next"))
                continue
            if not isinstance(body, dict):
                break
            found = [c for c in body.get("components") or [] if isinstance(c, dict) and c.get("id")]
            if fields is not None:
                found = [{k: c[k] for k in ("id", *fields) if k in c} for c in found]
            out.extend(found)
            query = _next_params(body.get("next"))
        return out

    async def all_components(self, fields: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, Any]]:
        """Every CFS component by ID (status operator, once per pass, D26); with `fields`, only
        those fields of each are kept, page by page (100,000 full records held for a whole
        status pass were a good part of the operators' memory)."""
        return {c["id"]: c for c in await self._pages({}, fields)}

    async def components(self, ids: Iterable[str],
                         fields: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, Any]]:
        """CFS components for `ids` in GETs of <= 200 IDs, GETS_IN_FLIGHT at once; unknown IDs are
        absent. With `fields`, only those fields of each are kept (as all_components: the status
        operator asks for up to a fifth of the cluster by ID)."""
        wanted = sorted(set(ids))
        chunks = [wanted[start:start + GET_IDS_CHUNK] for start in range(0, len(wanted), GET_IDS_CHUNK)]
        if len(chunks) <= 1:
            return {comp["id"]: comp for chunk in chunks for comp in await self._pages({"ids": ",".join(chunk)}, fields)}
        gate = asyncio.Semaphore(GETS_IN_FLIGHT)

        async def one(chunk: List[str]) -> List[Dict[str, Any]]:
            async with gate:
                return await self._pages({"ids": ",".join(chunk)}, fields)
        tasks = [asyncio.ensure_future(one(chunk)) for chunk in chunks]
        try:  # GETS_IN_FLIGHT at once; the first error cancels the rest and propagates
            answers = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return {comp["id"]: comp for answer in answers for comp in answer}

    @staticmethod
    def patch_batches(ids: Sequence[str]) -> List[Sequence[str]]:
        """Runs of <= 1000 IDs: one filter-form PATCH each (services.md §5.2)."""
        return [ids[i:i + PATCH_IDS_CHUNK] for i in range(0, len(ids), PATCH_IDS_CHUNK)]

    async def patch_batch(self, ids: Sequence[str], patch: Mapping[str, Any]) -> List[str]:
        """One filter-form PATCH (<= 1000 IDs); returns the IDs CFS patched (unknown ones skipped)."""
        if len(ids) > PATCH_IDS_CHUNK:
            raise ValueError(f"{len(ids)} IDs exceed the CFS patch size of {PATCH_IDS_CHUNK}")
        body = await self.http.patch("/components", {"patch": dict(patch), "filters": {"ids": ",".join(ids)}})
        return list(body.get("component_ids") or []) if isinstance(body, dict) else []
