"""Listing answers decoded to a few fields of each item (msgspec structs), the rest of each
item skipped unread.

The operators ask CFS and HSM about up to every node at each pass (the status operator's CFS
listing, the power operators' HSM existence check) and keep one to six fields of records that
carry many more (CFS's state and tags, HSM's flags, NIDs, classes): parsing every field of
100,000 records, to drop most of them, was most of those calls' CPU (issue 13).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Optional, Tuple, cast

import msgspec


class Slim(msgspec.Struct):
    """A decoded answer: its list of items (each with the chosen fields), and its other kept keys."""


@functools.lru_cache(maxsize=16)
def slim_decoder(items: str, fields: Tuple[str, ...], extra: Tuple[str, ...] = ()) -> Callable[[bytes], Slim]:
    """A decoder of a JSON object whose `items` list is read as `fields` of each item (None for a
    field an item lacks, as a dict read with `.get`), plus the keys `extra` as they are. An answer
    of another shape (an item that is not an object) raises ValueError: read it in full then
    (JsonClient.request's `decoder` does)."""
    part = msgspec.defstruct("SlimItem", [(name, Any, None) for name in fields])
    page = msgspec.defstruct("SlimAnswer", [(items, Optional[List[part]], None),  # type: ignore[valid-type]
                                            *((name, Any, None) for name in extra)], bases=(Slim,))
    return cast(Callable[[bytes], Slim], msgspec.json.Decoder(page).decode)


def slim_items(answer: Slim, items: str, key: str) -> List[Dict[str, Any]]:
    """The answer's items as dicts, those whose `key` field is set (an ID)."""
    return [msgspec.structs.asdict(item) for item in getattr(answer, items) or () if getattr(item, key)]


def slim_value(answer: Slim, key: str) -> Any:
    """One of the answer's `extra` keys (None if it had none)."""
    return getattr(answer, key, None)
