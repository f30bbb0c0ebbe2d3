"""CFS v3 client (services.md §5): component listing (paged via `next`) and filter patches."""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, cast

import msgspec

from .rest import JsonClient

GET_IDS_CHUNK = 200
PATCH_IDS_CHUNK = 1000


def _next_params(next_obj: Any) -> Optional[Dict[str, Any]]:
    """The `next` object as query parameters (null values omitted); None on the last page."""
    if not isinstance(next_obj, dict):
        return None
    return {k: v for k, v in next_obj.items() if v is not None}


class _Page(msgspec.Struct):
    """A listing page whose components are kept as `id` and some fields (`_page_decoder`)."""

    components: Any = None
    next: Any = None


@functools.lru_cache(maxsize=8)
def _page_decoder(fields: Tuple[str, ...]) -> Callable[[bytes], _Page]:
    """A decoder of listing pages that reads only `id` and `fields` of each component, skipping
    the rest of it unread (state, tags, ...): the status operator lists all of CFS for a pass
    that looks at many components, and parsing every field of 100,000 records, to keep two,
    was most of that listing's CPU (issue 13). A component without one of `fields` gets None
    for it, as a record read with `.get`; a page of another shape raises (read in full)."""
    part = msgspec.defstruct("CfsPart", [("id", Any, None), *((name, Any, None) for name in fields)],
                             array_like=False)
    page = msgspec.defstruct("CfsPage", [("components", Optional[List[part]], None),  # type: ignore[valid-type]
                                         ("next", Any, None)], bases=(_Page,))
    return cast(Callable[[bytes], _Page], msgspec.json.Decoder(page).decode)


def _trimmed(components: List[Any]) -> List[Dict[str, Any]]:
    """The components of a `_page_decoder` page as dicts (those with an ID)."""
    return [msgspec.structs.asdict(c) for c in components if c.id]


class CfsClient:
    def __init__(self, http: JsonClient) -> None:
        self.http = http

    async def _pages(self, params: Mapping[str, Any],
                     fields: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
        """Every page's components; only `id` and `fields` of each when `fields` is given."""
        out: List[Dict[str, Any]] = []
        query: Optional[Dict[str, Any]] = dict(params)
        decoder = None if fields is None else _page_decoder(tuple(fields))
        while query is not None:
            body = await self.http.get("/components", params=query, decoder=decoder)
            if isinstance(body, _Page):
                out.extend(_trimmed(body.components or []))
                query = _next_params(body.next)
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
        """CFS components for `ids` in GETs of <= 200 IDs; unknown IDs are absent. With `fields`,
        only those fields of each are kept (as all_components: the status operator asks for up to
        a fifth of the cluster by ID)."""
        wanted = sorted(set(ids))
        out: Dict[str, Dict[str, Any]] = {}
        for start in range(0, len(wanted), GET_IDS_CHUNK):
            chunk = wanted[start:start + GET_IDS_CHUNK]
            for comp in await self._pages({"ids": ",".join(chunk)}, fields):
                out[comp["id"]] = comp
        return out

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
