"""Content-addressed boot-artifact blobs: the memory diet of component records.

Every node of a session carries the same ~2 KiB of kernel parameters twice
(desired and actual). Records store the blob's digest string in its place (records of
older versions: `{"$blob": <digest>}`; the schema never allows a string there) and the blob
is stored once. Blobs are immutable, so each process caches them freely; they
are written (SET NX) and their last-use time refreshed by the same atomic
script that writes the record, and swept only when unreferenced and unused for
a while, so a record can never point at a missing blob.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import orjson
from redis.asyncio import Redis

from ..jsonio import exact
from . import keys

STATES = ("actual_state", "desired_state", "staged_state")
MIN_BYTES = 160  # smaller artifact sets stay inline: a reference would not save anything
REF = "$blob"  # the reference object of older versions
CACHE_SIZE = 4096
TIMESTAMP = "timestamp"  # kept with a resolved actual state, never shown (D12)

Record = Dict[str, Any]


class SharedArtifacts(Dict[str, Any]):
    """A cached artifact set handed to readers that promised not to modify it (`expand(shared=True)`),
    with its JSON encodings made once: a listing of 100,000 records puts the same few sets in every
    record, and embedding their encoding (`orjson.Fragment`) instead of encoding ~2 KiB of strings
    per record twice is a fifth of the listing's CPU."""

    __slots__ = ("_encoded", "_shown")

    def __init__(self, artifacts: Dict[str, Any]) -> None:
        super().__init__(artifacts)
        self._encoded: Optional[orjson.Fragment] = None
        self._shown: Optional[orjson.Fragment] = None

    def encoded(self) -> orjson.Fragment:
        """The set as JSON, exactly as `orjson.dumps` renders the dict."""
        if self._encoded is None:
            self._encoded = orjson.Fragment(exact(orjson.dumps(self)))
        return self._encoded

    def shown(self) -> orjson.Fragment:
        """The set as JSON without its token timestamp: an actual state's as responses show it (D12)."""
        if self._shown is None:
            self._shown = orjson.Fragment(exact(orjson.dumps({k: v for k, v in self.items() if k != TIMESTAMP})))
        return self._shown


def digest_of(raw: bytes) -> str:
    """A blob's name: 80 bits of BLAKE2b, 20 hex digits (40 bytes less per record than SHA-1's
    40 digits; collisions need ~2^40 distinct artifact sets). References of older records
    (40-digit SHA-1) still resolve: a reference is read as the key's name, whatever its length."""
    return hashlib.blake2b(raw, digest_size=10).hexdigest()


def _canonical(artifacts: Dict[str, Any]) -> bytes:
    return exact(orjson.dumps(artifacts, option=orjson.OPT_SORT_KEYS))  # kept in the digest memo


class Blobs:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._cache: "OrderedDict[str, SharedArtifacts]" = OrderedDict()
        self._digests: Dict[Tuple[Any, ...], Tuple[str, bytes]] = {}  # sorted items -> (digest or "", canonical JSON)
        self._last: Dict[str, Tuple[Dict[str, Any], Tuple[str, bytes]]] = {}  # per state: the last set interned

    def intern(self, record: Record, out_blobs: Dict[str, bytes]) -> Record:
        """The record as stored: large boot_artifacts replaced by references (added to out_blobs)."""
        stored = record
        for state in STATES:
            value = record.get(state)
            if not isinstance(value, dict):
                continue
            artifacts = value.get("boot_artifacts")
            if not isinstance(artifacts, dict):
                continue
            found = self._digest(artifacts, state)
            if found is None:
                continue
            digest, raw = found
            out_blobs[digest] = raw
            self._remember(digest, artifacts)
            if stored is record:
                stored = dict(record)
            stored[state] = dict(value, boot_artifacts=digest)
        return stored

    def _digest(self, artifacts: Dict[str, Any], state: str = "") -> Optional[Tuple[str, bytes]]:
        """(digest, canonical JSON) of an artifact set, None when it stays inline.

        A bulk write or a wave of reports carries the same few sets thousands of
        times: the digest is remembered by content (the sorted items), which
        costs a tuple instead of an encoding and a SHA-1 per record. Cheaper still,
        the set last looked up for the same `state` is compared first: one dict
        comparison, no sorting and no hashing of ~2 KiB of kernel parameters.
        """
        last = self._last.get(state)
        if last is not None and artifacts == last[0]:
            return last[1]
        found = self._digest_by_items(artifacts)
        if found is not None and all(type(v) is str for v in artifacts.values()):
            # Only sets of strings: a value equal to a str is a str, so equal sets encode alike
            # (1 == 1.0 == True would not).
            self._last[state] = (dict(artifacts), found)
        return found

    def _digest_by_items(self, artifacts: Dict[str, Any]) -> Optional[Tuple[str, bytes]]:
        try:
            key: Optional[Tuple[Any, ...]] = tuple(sorted(artifacts.items()))
            hit = self._digests.get(key) if key is not None else None
        except TypeError:  # an unhashable value (not the schema's strings): no memo
            key, hit = None, None
        if hit is not None:
            return hit if hit[0] else None
        raw = _canonical(artifacts)
        found = (digest_of(raw), raw) if len(raw) >= MIN_BYTES else ("", b"")
        if key is not None:
            self._digests[key] = found
            if len(self._digests) > CACHE_SIZE:
                self._digests.pop(next(iter(self._digests)))
        return found if found[0] else None

    async def expand(self, records: Iterable[Optional[Record]], shared: bool = False) -> None:
        """Replace references by their blobs, in place.

        `shared`: every record gets this process's cached dict itself instead of a
        copy (for read-only use, e.g. rendering a listing of 100,000 records).
        """
        cache = self._cache
        misses: List[Tuple[Any, ...]] = []  # (state, digest) of sets not cached yet: loaded, then expanded
        for record in records:
            if record is None:
                continue
            for state in STATES:
                value = record.get(state)
                if isinstance(value, dict):
                    artifacts = value.get("boot_artifacts")
                    ref = artifacts if isinstance(artifacts, str) else _ref(artifacts)
                    if ref is None:
                        continue
                    hit = cache.get(ref)
                    if hit is None:
                        misses.append((value, ref))
                    else:
                        value["boot_artifacts"] = hit if shared else dict(hit)
        if not misses:
            return
        await self._load({digest for _v, digest in misses if digest not in cache})
        for value, digest in misses:
            value["boot_artifacts"] = cache[digest] if shared else dict(cache[digest])

    async def _load(self, digests: Set[str]) -> None:
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
        self._cache[digest] = SharedArtifacts(artifacts)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)


def _ref(artifacts: Any) -> Optional[str]:
    """The blob a stored `boot_artifacts` refers to, if it is a reference."""
    if isinstance(artifacts, str):
        return artifacts
    if isinstance(artifacts, dict) and REF in artifacts:  # an older version's reference
        return str(artifacts[REF])
    return None


def referenced_digests(record: Record) -> List[str]:
    found = []
    for state in STATES:
        ref = _ref(record[state].get("boot_artifacts")) if isinstance(record.get(state), dict) else None
        if ref is not None:
            found.append(ref)
    return found
