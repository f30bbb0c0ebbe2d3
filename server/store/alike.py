"""Records written alike: one computation for every record of a bulk write that differs from
another only in its ID (issue 13).

A bulk write carries a handful of distinct shapes: session setup gives 2,800 nodes the
same desired state, a seed PUTs records equal but for their IDs, and the records a
bulk PATCH reads were mostly written alike by the previous one. Computed one by one,
each record was decoded, merged, interned, packed, encoded, shaped for its indexes and
its history entry: ~15 Python steps per record, most of a bulk write's CPU.

The caller of `ComponentStore.update` says which records it computes alike (`alike`:
an ID's key; records with equal keys get the same patch or body). The store then
keys each record by (that key, its stored value without the ID, its writer): records
with equal keys are equal but for their ID, before and (compute being a pure function
of the record and the request) after the write. The first of them is computed in full;
every other one takes its stored value from the first's, with its own ID put in front,
and the same index moves, history entry and change-event facets. The compare-and-set
is unchanged: each record is sent with the digest of its own stored value, as read.

The ID is the first member of every record this server writes (the schema's order,
kept by merges); a record whose stored value or new value does not start with it is
computed in full, as before.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Hashable, List, Mapping, NamedTuple, Optional, Tuple

import orjson

from .codec import dumps

AlikeKey = Callable[[str], Hashable]  # ComponentStore.update's `alike`
Key = Tuple[Hashable, Optional[bytes], str]  # (the caller's key, the stored value after the ID, the writer)


class Like(Dict[str, Any]):
    """A written record taken from another (`like`) of the same update: equal to it but for `id`.

    A plain dict to every reader; `like` lets a response encode the record's view once per
    shape (api/components.py)."""

    __slots__ = ("like",)
    like: Optional[Dict[str, Any]]


class Template(NamedTuple):
    """What a record computed in full leaves for the others of its key (`rest`: its new
    stored value after the ID; None: compute left the record alone; `shaped`: `rest` as the
    script's value, made once for every record of the key)."""

    rest: Optional[bytes]
    record: Optional[Dict[str, Any]]
    unchanged: bool  # the new value is the stored one: nothing to write
    write: Tuple[Any, ...]  # (removed, added, scored, history entry) of cas.Write
    facets: Any
    blobs: Mapping[str, bytes]
    shaped: Any = None


def id_prefix(component_id: str) -> bytes:
    """How a stored value whose first member is this ID begins: `{"id":"<id>"`."""
    return b'{"id":' + orjson.dumps(component_id)


Seen = Dict[int, List[bytes]]  # key_of's `seen`
SEEN_PER_LENGTH = 4  # distinct stored values (after the ID) kept per length in `seen`: the last ones met


def key_of(component_id: str, raw: Optional[bytes], alike: AlikeKey, actor: str,
           seen: Optional[Seen] = None) -> Optional[Tuple[Key, bytes]]:
    """(The record's key, its ID prefix), or None when its stored value does not start with its ID.

    `seen`: stored values after their IDs met already in this update, by length. A record whose
    value is one of them takes that bytes object into its key (compared in place), instead of a
    copy of its own ~600 bytes, hashed again for every look-up of the key.
    """
    prefix = id_prefix(component_id)
    if raw is None:
        return (alike(component_id), None, actor), prefix
    if not raw.startswith(prefix):
        return None
    return (alike(component_id), _rest(raw, len(prefix), seen), actor), prefix


def _rest(raw: bytes, start: int, seen: Optional[Seen]) -> bytes:
    """`raw[start:]`, as the equal bytes object of `seen` when there is one."""
    if seen is None:
        return raw[start:]
    known = seen.setdefault(len(raw) - start, [])
    for rest in known:
        if raw.endswith(rest):  # of the same length: equal to raw[start:]
            return rest
    rest = raw[start:]
    # The last ones met, not the first: values stamped alike come in runs of IDs (a seed writes in
    # ID order), and a 100,000 store's ~100 values of one length missed the first four kept.
    known.insert(0, rest)
    if len(known) > SEEN_PER_LENGTH:
        known.pop()
    return rest


def rest_of(value: bytes, component_id: str) -> Optional[bytes]:
    """A new stored value after its ID prefix; None when it does not start with its ID."""
    prefix = id_prefix(component_id)
    return value[len(prefix):] if value.startswith(prefix) else None


def like(template: Template, component_id: str) -> Dict[str, Any]:
    """The record `template` stands for, with `component_id` as its ID."""
    record = Like(template.record)  # type: ignore[arg-type]
    record["id"] = component_id  # the first member already: its place is kept
    record.like = template.record
    return record


def shown_like(record: Dict[str, Any], view: Callable[[Dict[str, Any]], Any],
               memo: Dict[int, Tuple[Any, Optional[bytes]]]) -> Any:
    """`view(record)`, or for a Like its view's JSON made from its model's (encoded once per model in
    `memo`): the model's view with this record's ID, as orjson.Fragment."""
    split = shown_split(record, view, memo)
    return view(record) if split is None else orjson.Fragment(split[0] + split[1])


def shown_own(record: Dict[str, Any], view: Callable[[Dict[str, Any]], Any],
              memo: Dict[int, Tuple[Any, Optional[bytes]]]) -> Tuple[bytes, ...]:
    """The view's JSON of a model (a record computed in full that others were taken from, like),
    as parts: its ID prefix and the text after its ID, remembered in `memo` for the records
    taken from it (shown_split), which share it instead of encoding it again; the whole text
    when it does not start with the ID."""
    found = memo.get(id(record))  # encoded already for a record taken from it, met first
    if found is None:  # the record is kept in the memo: its id() is not reused meanwhile
        found = memo[id(record)] = (record, rest_of(dumps(view(record)), record["id"]))
    if found[1] is None:
        return (dumps(view(record)),)
    return id_prefix(record["id"]), found[1]


def shown_split(record: Dict[str, Any], view: Callable[[Dict[str, Any]], Any],
                memo: Dict[int, Tuple[Any, Optional[bytes]]]) -> Optional[Tuple[bytes, bytes]]:
    """For a Like, its view's JSON as two parts, not joined: its ID prefix, and its model's view after
    the model's ID (encoded once per model in `memo`, shared); None for any other record."""
    model = getattr(record, "like", None)
    if model is None:
        return None
    found = memo.get(id(model))
    if found is None:  # the model is kept in the memo: its id() is not reused meanwhile
        found = memo[id(model)] = (model, rest_of(dumps(view(model)), model["id"]))
    if found[1] is None:
        return None
    return id_prefix(record["id"]), found[1]
