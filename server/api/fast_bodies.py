"""Request bodies decoded and validated at C speed (issue 13): msgspec types built from the shared schema.

A bulk write of 1,000-2,800 components spent a fifth of the API's CPU in parsing
(orjson) and then validating (the schema's Python validators) its body. msgspec
does both in one pass over the bytes into types generated here from the same
`bos_shared.schema` objects (one source of truth: nothing is declared twice), and
`msgspec.to_builtins` hands back the plain dicts the rest of the server uses.

The fast path only ever accepts: a body it refuses, for whatever reason, is
parsed and validated again by the reporting path (params.json_body, validate),
whose error texts are the contract's (api.md §1.5, §5). So the two must agree on
what they accept and on the cleaned value (read-only properties dropped, D13);
tests/api/test_fast_bodies.py checks that with Hypothesis. The one visible
difference: an accepted object's keys come in the schema's order, not the body's.
A schema with a construct this module does not translate (MapOf, case-insensitive
enums, property counts, ...) gets no fast decoder, and its bodies take the
reporting path as before.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any, Callable, Dict, List, Literal, Optional, Tuple, Union

try:
    import msgspec
    from msgspec import UNSET, Meta, UnsetType
except ImportError:  # a venv made before msgspec was a dependency: the reporting path alone (`make venv`)
    msgspec = None  # type: ignore[assignment]

from bos_shared.schema_types import Array, Boolean, Integer, Object, Ref, Schema, String

FastDecoder = Callable[[Union[bytes, bytearray]], Optional[Any]]
Runs = List[Tuple[Any, List[Any]]]  # (an item decoded in full, the IDs of the items after it equal to it but for their IDs)
RunsDecoder = Callable[[Union[bytes, bytearray]], Optional[Runs]]
KNOWN_TAILS = 16  # lengths of items' texts after their IDs a body's walk keeps the first of (_text_walk)
KNOWN_MISSES = 64  # items decoded in full after which the walk stops looking for earlier texts


class Again(List[Any]):
    """A run's IDs after its first (Runs' second member) when that first item is an earlier run's first
    item (`of`) with another ID, its values the very objects of `of`'s (_text_walk): a reader can take
    what it made of `of` for the whole run instead of comparing or transforming the item again."""

    __slots__ = ("of",)

    def __init__(self, of: Any) -> None:
        super().__init__()
        self.of = of


class _Untranslatable(Exception):
    """The schema has a construct without an exact msgspec equivalent: no fast path for it."""


def fast_decoder(node: Schema) -> Optional[FastDecoder]:
    """A decoder for JSON bodies of `node`: the validated value, or None when it refuses the body
    (then the caller takes the reporting path). None: `node` cannot be translated exactly
    (or msgspec is not installed)."""
    if msgspec is None:
        return None
    node, least = _counted_at_top(node)
    try:
        decoder = msgspec.json.Decoder(_field_type(node, {}), dec_hook=_read_only_hook)
        runs = _runs_decoder(node) if not least else None
    except _Untranslatable:
        return None
    if runs is not None:
        return lambda raw: _expanded(runs(raw))  # type: ignore[misc]
    decode, to_builtins = decoder.decode, msgspec.to_builtins

    def fast(raw: Union[bytes, bytearray]) -> Optional[Any]:
        try:
            value = to_builtins(decode(raw))
        except (msgspec.MsgspecError, RecursionError):  # refused, or nested deeper than it goes
            return None
        return value if not least or (type(value) is dict and len(value) >= least) else None
    return fast


def _counted_at_top(node: Schema) -> Tuple[Schema, int]:
    """A top-level object with a least property count (`V2Component`: the single PATCH and PUT of a
    node's report, issue 13) as the same object without it, and that count, checked on the value
    decoded: it has at most the body's properties (read-only ones are dropped), so a value with
    enough has a body with enough; one with fewer is refused here and judged by the reporting
    path (which counts the body's). Any other node as it is, with 0."""
    target, nullable = node, node.nullable
    while isinstance(target, Ref):
        target = target.target
        nullable = nullable or target.nullable
    if type(target) is not Object or not target.min_properties or target.max_properties is not None or nullable:
        return node, 0
    uncounted = copy.copy(target)
    uncounted.min_properties = 0
    return uncounted, target.min_properties


def fast_runs_decoder(node: Schema) -> Optional[RunsDecoder]:
    """For an array of objects whose first property is a required `id` (the bulk component writes): a
    decoder of its bodies into runs (_runs_decoder), which fast_decoder's value is expanded from: None
    when it refuses the body, as fast_decoder's; None for another `node` (or without msgspec).

    A bulk write computes the items of a run alike anyway (api/components._runs): handed the runs,
    it skips a dict copy, an ID swap and a comparison per item, a tenth of a seed PUT's API CPU
    before its first script (issue 13)."""
    if msgspec is None:
        return None
    try:
        return _runs_decoder(node)
    except _Untranslatable:
        return None


def _expanded(runs: Optional[Runs]) -> Optional[List[Any]]:
    """The items of `runs`: each item after the first of its run a shallow copy of that first with
    its own ID (readers must not modify the values in place)."""
    if runs is None:
        return None
    out: List[Any] = []
    for item, more in runs:
        out.append(item)
        for other in more:
            value = dict(item)
            value["id"] = other
            out.append(value)
    return out


ID_OPENING = b'{"id":"'  # how an item with its ID first begins in compact JSON (every client of ours)


def _runs_decoder(node: Schema) -> Optional[RunsDecoder]:
    """For an array of objects whose first property is a required `id` (the bulk component writes):
    a decoder that decodes and validates once per run of items equal but for their IDs, into the runs.

    A seed PUTs 1,000 records alike, session setup PATCHes 2,800 nodes with one desired state:
    decoded one by one, each item's ~1.5 KiB were validated and turned into dicts again (a third
    of a seed's API CPU, issue 13). The body is split into its items' JSON texts (msgspec.Raw);
    an item whose text is `{"id":"<id>"` followed by the same bytes as the item before it is
    that item with another ID: only its ID is validated (its own decoder), and it shares the
    previous item's values (a shallow copy: readers must not modify them in place). Every other
    item is decoded in full. So the value is what the whole-array decoder gives, the same bytes
    being validated the same way: an item is `{"id":"` + an ID without quote or backslash + `"` +
    the rest of a valid object, valid exactly when its ID text is a valid JSON string (checked by
    the ID's own decoder). The rest must not hold `"id"` anywhere, nor a `\\u` escape (which can
    spell that key too): a duplicate key would make the last `id` the item's. Such items are
    decoded in full.
    """
    array = node
    while isinstance(array, Ref):
        array = array.target
    if type(array) is not Array or array.min_items or array.max_items is not None or array.nullable:
        return None
    item = array.items
    while isinstance(item, Ref):
        item = item.target
    if type(item) is not Object or item.nullable or not item.properties \
            or next(iter(item.properties)) != "id" or "id" not in item.required:
        return None
    items = msgspec.json.Decoder(List[msgspec.Raw])
    one = msgspec.json.Decoder(_field_type(array.items, {}), dec_hook=_read_only_hook)
    identifier = msgspec.json.Decoder(_field_type(item.properties["id"], {}))
    to_builtins, opening = msgspec.to_builtins, len(ID_OPENING)
    walk = _text_walk(one.decode, identifier.decode)

    def fast(raw: Union[bytes, bytearray]) -> Optional[Runs]:
        try:
            walked = walk(raw)
        except (msgspec.MsgspecError, RecursionError):  # refused, or an item cut short: decided below
            walked = None
        if walked is not None:
            return walked
        out: Runs = []
        rest: Optional[bytes] = None  # the text after the ID of the last item decoded in full (runs from it)
        more: List[Any] = []  # the IDs of the items taken from it
        try:
            for part in items.decode(raw):
                text = bytes(part)
                end = _plain_id_end(text)
                # compared in place (endswith), not sliced: a copy of each ~2 KiB item less
                if rest is not None and end > 0 and len(text) - end - 1 == len(rest) and text.endswith(rest):
                    more.append(identifier.decode(text[opening - 1:end + 1]))
                    continue
                value = to_builtins(one.decode(text))
                more = []
                out.append((value, more))
                rest = None
                if end > 0 and type(value) is dict:
                    tail = text[end + 1:]
                    if b'"id"' not in tail and b"\\u" not in tail:
                        rest = tail
        except (msgspec.MsgspecError, RecursionError):  # refused, or nested deeper than it goes
            return None
        return out
    return fast


NEXT_ITEM = b',{"id":"'  # where the next item of a compact body begins (or a nested one's: see _text_walk)


def _text_walk(decode: Callable[[Any], Any], decode_id: Callable[[Any], Any]) -> RunsDecoder:
    """_runs_decoder's value of a compact body (`[` items joined by `,` `]`, no whitespace between
    them), found without splitting the whole body into items first; None: not such a body, or
    an item this walk cannot place (then the splitting decoder decides, refusals included).

    Splitting a seed's 1.5 MB into 1,000 items (msgspec scanning every string) and copying each
    was half the decoding (issue 13). Here an item that begins `{"id":"<plain id>"` followed by
    the bytes after the ID of the last item decoded in full is that item with another ID: it is
    compared in place and skipped (one memcmp), its ID validated alone, as _runs_decoder does.
    Any other item is decoded in full up to the next NEXT_ITEM or the closing bracket. That text
    cannot occur inside a string (its quotes would be escaped there); inside the item, in a
    nested array, it leaves the slice with a bracket open: not one JSON value, refused by the
    decoder, and the splitting decoder decides. So no item is ever cut short silently.

    An item that does not continue its run but whose text after its ID is that of the first item
    decoded in full with a text of its length (up to KNOWN_TAILS lengths kept, until KNOWN_MISSES
    items were decoded in full: a body of items each distinct) begins a run whose first item is that one's values with
    its own ID, marked Again: a seed's 1,000 records come as ~20 runs of two shapes (the 50th of each
    hundred in another session), and decoding every run's first item in full, then transforming,
    computing and encoding it, was a sixth of a seed PUT's API CPU (issue 13). The bytes are the
    same after a plain ID: the item is as valid as that one, and its value that one's with its ID.
    """
    def walk(raw: Union[bytes, bytearray]) -> Optional[Runs]:
        end = len(raw) - 1
        if end < 1 or raw[0] != 0x5B or raw[end] != 0x5D:  # not `[...]` exactly
            return None
        out: Runs = []
        more: List[Any] = []  # the IDs of the items taken from the last one decoded in full
        startswith, find, take = raw.startswith, raw.find, more.append  # looked up once, not per item
        rest: Optional[bytes] = None
        size = 0  # len(rest)
        known: Dict[int, Tuple[bytes, Any]] = {}  # length -> the first text after an ID decoded in full, its value
        misses = 0  # items decoded in full while looking
        looking = True  # misses < KNOWN_MISSES: one local test per item once a body of distinct items stopped
        at = 1
        while at < end:
            quote = _plain_id_quote(raw, at)
            if rest is not None and quote > 0 and startswith(rest, quote + 1):
                stop = quote + 1 + size
                take(decode_id(raw[at + len(ID_OPENING) - 1:quote + 1]))
            else:
                stop = find(NEXT_ITEM, at)
                stop = end if stop < 0 else stop
                if looking and quote > 0 and (earlier := known.get(stop - quote - 1)) is not None \
                        and startswith(earlier[0], quote + 1):  # its values, this item's ID
                    rest, size = earlier[0], stop - quote - 1
                    value = dict(earlier[1])
                    value["id"] = decode_id(raw[at + len(ID_OPENING) - 1:quote + 1])
                    more = Again(earlier[1])
                else:
                    value = msgspec.to_builtins(decode(raw[at:stop]))
                    more = []
                    rest = None
                    if quote > 0 and type(value) is dict:
                        tail = bytes(raw[quote + 1:stop])
                        if b'"id"' not in tail and b"\\u" not in tail:
                            rest, size = tail, len(tail)
                    if looking:  # a body of items each distinct stops looking: the tests cost it 4 % (callgrind)
                        misses += 1
                        looking = misses < KNOWN_MISSES
                        if rest is not None and looking and size not in known and len(known) < KNOWN_TAILS:
                            known[size] = (rest, value)
                take = more.append
                out.append((value, more))
            if stop < end and raw[stop] != 0x2C:  # items are joined by a comma and nothing else
                return None
            at = stop + 1
        return out if at == end + 1 or end == 1 else None
    return walk


def _plain_id_quote(raw: Union[bytes, bytearray], at: int) -> int:
    """_plain_id_end of the item at `at` of `raw` (where its ID's closing quote is, else -1), in place."""
    if not raw.startswith(ID_OPENING, at):
        return -1
    start = at + len(ID_OPENING)
    end = raw.find(b'"', start)
    if end < 0 or raw.find(b"\\", start, end) >= 0:
        return -1
    return end


def _plain_id_end(text: bytes) -> int:
    """Where the quote closing an item's ID is when the item begins `{"id":"<id>"` with an ID of
    neither quote nor backslash (so JSON shows it as it is), else -1: the item's text after
    its ID is `text[end + 1:]`."""
    if not text.startswith(ID_OPENING):
        return -1
    end = text.find(b'"', len(ID_OPENING))
    if end < 0 or text.find(b"\\", len(ID_OPENING), end) >= 0:
        return -1
    return end


def _field_type(prop: Schema, made: Dict[int, Any]) -> Any:
    """The msgspec type of a property's values, null included when the schema admits it."""
    nullable = prop.nullable
    while isinstance(prop, Ref):
        prop = prop.target
        nullable = nullable or prop.nullable
    found = _type(prop, made)
    return Optional[found] if nullable else found


def _type(node: Schema, made: Dict[int, Any]) -> Any:
    """The msgspec type of `node`'s non-null values."""
    if type(node) is String:
        return _string(node)
    if type(node) is Integer:
        return Annotated[int, Meta(ge=node.minimum, le=node.maximum)]  # msgspec refuses true/false and 1.0
    if type(node) is Boolean:
        return bool
    if type(node) is Array:
        return Annotated[List[_field_type(node.items, made)],  # type: ignore[misc]
                         Meta(min_length=node.min_items, max_length=node.max_items)]
    if type(node) is Object:
        if id(node) not in made:
            made[id(node)] = _struct(node, made)
        return made[id(node)]
    raise _Untranslatable(type(node).__name__)


def _string(node: String) -> Any:
    if node.case_insensitive_enum:
        raise _Untranslatable("case-insensitive enum")
    high = node.max_length

    def allowed(text: str) -> bool:
        return (len(text) >= node.min_length and (high is None or len(text) <= high)
                and (node._regex is None or node._regex.match(text) is not None))
    if node.enum is not None:
        values = tuple(e for e in node.enum if allowed(e))
        if not values:
            raise _Untranslatable("an enum no value satisfies")
        return Literal[values]  # type: ignore[valid-type]
    # msgspec searches; the schema matches at the start: anchored, the two are the same
    pattern = f"^(?:{node.pattern})" if node.pattern else None
    if pattern is not None:
        re.compile(pattern)
    if not node.min_length and high is None and pattern is None:
        return str
    return Annotated[str, Meta(min_length=node.min_length or None, max_length=high, pattern=pattern)]


class _ReadOnly:
    """The type of a read-only property's values: any JSON value decodes to DROPPED (D13)."""


DROPPED = _ReadOnly()


def _read_only_hook(kind: type, _value: Any) -> Any:
    """msgspec's `dec_hook`, called only for a read-only property a body carries: whatever its
    value (already decoded as JSON), it becomes DROPPED, the property's default, which
    `to_builtins` leaves out (`omit_defaults`). A C-level drop: a Python `__post_init__` on
    every struct cost 1.5-4 us per component of a bulk write (issue 13), read-only
    properties present or not."""
    if kind is _ReadOnly:
        return DROPPED
    raise NotImplementedError(kind)


def _struct(node: Object, made: Dict[int, Any]) -> Any:
    """A Struct for an Object: unknown properties refused (or ignored: `additional="ignore"`),
    read-only ones accepted whatever their value and dropped (D13: `_read_only_hook`), the
    others UNSET when absent (so `to_builtins` leaves them out, as the reporting path does)."""
    if node.min_properties or node.max_properties is not None or node.additional not in (False, "ignore"):
        raise _Untranslatable("property counts or additional properties")
    fields: List[Tuple[Any, ...]] = []
    rename: Dict[str, str] = {}
    for n, (name, prop) in enumerate(node.properties.items()):
        attr = f"f{n}"  # any property name, keywords included, as an attribute
        rename[attr] = name
        if prop.read_only:
            if name in node.required:
                raise _Untranslatable("a required read-only property")
            fields.append((attr, _ReadOnly, DROPPED))
        elif name in node.required:
            fields.append((attr, _field_type(prop, made)))
        else:
            fields.append((attr, Union[_field_type(prop, made), UnsetType], UNSET))
    # omit_defaults: only DROPPED is a default that is not UNSET (every other field is required or UNSET)
    return msgspec.defstruct(f"Fast{len(made)}", fields, kw_only=True, rename=rename, omit_defaults=True,
                             forbid_unknown_fields=node.additional is False)
