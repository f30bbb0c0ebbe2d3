"""Which component records were written since a reader last looked: the write feed.

The compare-and-set script (cas.py) appends one entry to the stream `keys.COMPONENT_WRITES` per
call that wrote records, listing the IDs it wrote, in the same script as the writes (so never
one without the other), and trims entries older than cas.FEED_SECONDS (10 s). A reader keeps the ID of the last
entry it read and asks for that entry and the ones after it: when that entry is no longer there
(trimmed, the stream deleted or never written), the entries it missed cannot be known, and the
reader is told so (None) to fall back to reading the records themselves.

The status operator uses this instead of hashing every record it left waiting, on every pass:
at 20,000 nodes that read and hashed 10-14k whole records per pass to find the few hundred
written since (issue 13). Nothing here depends on pub/sub: the feed is part of the store.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Set, Tuple

from . import keys
from .codec import parse

FIELD = "i"  # the entry's one field: the IDs written, a JSON array (an ID may hold any character)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ids(fields: Any) -> List[str]:
    """The IDs of one entry (its fields as the client returns them: bytes or str keys)."""
    value = fields.get(FIELD.encode(), fields.get(FIELD)) if isinstance(fields, dict) else None
    ids = parse(value) if value is not None else []
    return ids if isinstance(ids, list) else []


async def written_since(redis: Any, last: Optional[str]) -> Tuple[Optional[str], Optional[Set[str]]]:
    """(the last entry's ID now, the component IDs written after entry `last`), or a None set when
    they cannot be known: `last` is None, or that entry is gone. The ID returned is the position
    for the next call (None while the stream is empty). An entry seen is final: trimming only
    drops the oldest entries, so `last` still there means nothing after it was dropped."""
    if last is None:
        tail = await redis.xrevrange(keys.COMPONENT_WRITES, count=1)
        return (_text(tail[0][0]) if tail else None), None
    entries: Sequence[Any] = await redis.xrange(keys.COMPONENT_WRITES, min=last)
    if not entries:
        return None, None
    position = _text(entries[-1][0])
    if _text(entries[0][0]) != last:
        return position, None
    written: Set[str] = set()
    for _, fields in entries[1:]:
        written.update(_ids(fields))
    return position, written
