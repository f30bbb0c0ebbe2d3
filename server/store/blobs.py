"""Content-addressed boot-artifact blobs: the memory diet of component records.

Every node of a session carries the same ~2 KiB of kernel parameters twice
(desired and actual). Records store `{"$blob": <sha1>}` instead and the blob
is stored once. Blobs are immutable, so each process caches them freely; they
are written (SET NX) and their last-use time refreshed by the same atomic
script that writes the record, and swept only when unreferenced and unused for
a while, so a record can never point at a missing blob.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Optional

import orjson
from redis.asyncio import Redis

from . import keys

STATES = ("actual_state", "desired_state", "staged_state")
MIN_BYTES = 160  # smaller artifact sets stay inline: a reference would not save anything
REF = "$blob"
CACHE_SIZE = 4096

Record = Dict[str, Any]


def _canonical(artifacts: Dict[str, Any]) -> bytes:
    return orjson.dumps(artifacts, option=orjson.OPT_SORT_KEYS)


class Blobs:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._cache: "OrderedDict[str, Dict[str, Any]]" = OrderedDict()

    def intern(self, record: Record, out_blobs: Dict[str, bytes]) -> Record:
        """The record as stored: large boot_artifacts replaced by references (added to out_blobs)."""
        stored = record
        for state in STATES:
            value = record.get(state)
            artifacts = value.get("boot_artifacts") if isinstance(value, dict) else None
            if not isinstance(artifacts, dict):
                continue
            raw = _canonical(artifacts)
            if len(raw) < MIN_BYTES:
                continue
            digest = hashlib.sha1(raw).hexdigest()
            out_blobs[digest] = raw
            self._remember(digest, artifacts)
            if stored is record:
                stored = dict(record)
            stored[state] = dict(value, boot_artifacts={REF: digest})
        return stored

    async def expand(self, records: Iterable[Optional[Record]], shared: bool = False) -> None:
        """Replace references by their blobs, in place.

        `shared`: every record gets this process's cached dict itself instead of a
        copy (for read-only use, e.g. rendering a listing of 100,000 records).
        """
        refs: List[tuple] = []
        for record in records:
            if record is None:
                continue
            for state in STATES:
                value = record.get(state)
                artifacts = value.get("boot_artifacts") if isinstance(value, dict) else None
                if isinstance(artifacts, dict) and REF in artifacts:
                    refs.append((value, artifacts[REF]))
        if not refs:
            return
        await self._load({digest for _v, digest in refs if digest not in self._cache})
        for value, digest in refs:
            value["boot_artifacts"] = self._cache[digest] if shared else dict(self._cache[digest])

    async def _load(self, digests: set) -> None:
        wanted = sorted(digests)
        if not wanted:
            return
        raws = await self.redis.mget([keys.artifacts_blob(d) for d in wanted])
        for digest, raw in zip(wanted, raws):
            if raw is None:
                raise LookupError(f"boot-artifact blob {digest} is missing")
            self._remember(digest, orjson.loads(raw))

    def _remember(self, digest: str, artifacts: Dict[str, Any]) -> None:
        if digest in self._cache:
            self._cache.move_to_end(digest)
            return
        self._cache[digest] = dict(artifacts)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)


def referenced_digests(record: Record) -> List[str]:
    found = []
    for state in STATES:
        artifacts = (record.get(state) or {}).get("boot_artifacts") if isinstance(record.get(state), dict) else None
        if isinstance(artifacts, dict) and REF in artifacts:
            found.append(artifacts[REF])
    return found
