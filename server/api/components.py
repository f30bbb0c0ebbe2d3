"""Components: `/v2/components` and `/v2/components/{component_id}` (api.md §3.3, §3.4)."""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Callable, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Tuple

import orjson
from aiohttp import web

from bos_shared import schema
from bos_shared.ages import parse_duration
from bos_shared.times import now_str

from .. import metrics
from ..component_writes import (actual_state_update_allowed, apply_auto_fields, listed_view, merge, new_record,
                                tokens_in, view)
from ..jsonio import dumps, dumps_transient
from ..store import ComponentQuery, keys
from ..store.alike import AlikeKey, Like, shown_like, shown_own, shown_split
from ..store.tokens import cached_tokens, get_tokens
from .context import ctx
from .errors import ActualStateConflict, BadRequest, NotFound
from .fast_bodies import Again, Runs, fast_decoder, fast_runs_decoder
from .params import arrived_body, fast_body, json_body, validate, validate_items
from .routes import Query, flag, integer, query, route
from .responses import (SEND_CHUNK, ResponseParts, respond, respond_ids, respond_joined, respond_list,
                        respond_minimal, respond_parts, wants_minimal)
from .tenancy import check_owned, owned_xnames, tenant_of

MISSING_ID = "At least one component is missing the required 'id' field"
RESPONSE_CHUNK = 1000  # records viewed and encoded at a time in a bulk write's response
WHOLE_WRITE = 3000  # a bulk write up to this size is one store update (session setup writes 2,800)
WRITE_SLICE = 1000  # records per store update of a larger one (_write_in_slices)
Record = Dict[str, Any]
FAST_RUNS = fast_runs_decoder(schema.ComponentArray)  # list-form bodies at C speed, as runs (fast_bodies.py)
FAST_ONE = fast_decoder(schema.Component)  # a single component's body (a node's report) likewise
Compute = Callable[[str, Optional[Record]], Optional[Record]]


def _not_found(component_id: str) -> NotFound:
    return NotFound(f"Component '{component_id}' does not exist")


def _path_id(request: web.Request) -> str:
    return validate(schema.ComponentId, request.match_info["component_id"], "component_id")


def _split_ids(raw: str, what: str) -> List[str]:
    ids = [item.strip() for item in raw.split(",") if item.strip()]
    for item in ids:
        if len(item) > schema.MAX_ID_LENGTH:
            raise BadRequest(f"Invalid {what}: the ID '{item[:40]}...' is longer than {schema.MAX_ID_LENGTH} characters")
    return list(dict.fromkeys(ids))


MAX_DURATION_LENGTH = 16  # longer numbers overflow a float timestamp
LIST_QUERY = (
    Query("ids", schema.String(1, schema.MAX_IDS_QUERY_LENGTH)),
    Query("session", schema.Name()),
    Query("staged_session", schema.Name()),
    flag("enabled"),
    Query("phase", schema.String(enum=schema.PHASES)),
    Query("status", schema.String(0, schema.MAX_STATUS_QUERY_LENGTH)),
    Query("start_after_id", schema.String(1, schema.MAX_ID_LENGTH)),
    integer("page_size", 0, schema.MAX_PAGE_SIZE, 0),
    Query("actual_state_older_than", schema.String(2, MAX_DURATION_LENGTH, pattern=r"^[0-9]+[smhdwSMHDW]$"),
          description="Extension: components whose actual state was last reported longer ago than this"),
)


def _list_query(request: web.Request) -> ComponentQuery:
    phase = query(request, "phase")
    status = query(request, "status")
    return ComponentQuery(
        session=query(request, "session"),
        staged_session=query(request, "staged_session"),
        enabled=query(request, "enabled"),
        phase=phase or None,  # `phase=` means no phase filter
        statuses=[s.strip() for s in status.split(",") if s.strip()] if status is not None else None,
        start_after=query(request, "start_after_id"),
        page_size=query(request, "page_size"),
        actual_before=_actual_cutoff(request),
    )


def _actual_cutoff(request: web.Request) -> Optional[float]:
    """Extension `actual_state_older_than=<n><s|m|h|d|w>`: components whose actual boot was
    last reported longer ago than that (the actual-state-cleanup operator's selection,
    served from an index instead of a scan of every component)."""
    if request.query.get("actual_state_older_than") is None:
        return None
    raw = query(request, "actual_state_older_than")  # shape checked by its declaration
    seconds = parse_duration(raw)
    if seconds is None:
        raise BadRequest(f"Invalid query parameter 'actual_state_older_than': {raw[:40]!r} is not a duration like 4h or 90m")
    return time.time() - seconds


def _ids_param(request: web.Request) -> Optional[List[str]]:
    raw = query(request, "ids")
    if raw is None:
        return None
    ids = _split_ids(raw, "query parameter 'ids'")
    if not ids:
        raise BadRequest("Invalid query parameter 'ids': it must name at least one component ID")
    return ids


async def list_components(request: web.Request) -> web.StreamResponse:
    query = _list_query(request)
    candidates = _ids_param(request)
    tenant = tenant_of(request)
    if tenant:
        owned = await owned_xnames(request, tenant)
        candidates = [i for i in candidates if i in owned] if candidates is not None else list(owned)
    chunks = ctx(request).store.components.iter_query(query, candidates, shared=True)
    return await respond_list(request, _views(chunks))


async def _views(chunks: AsyncIterator[List[Record]]) -> AsyncIterator[List[Record]]:
    async for chunk in chunks:
        yield [listed_view(r) for r in chunk]


def _item_list(body: Any) -> List[Record]:
    """A list-form body: every item must be an object with an `id` (checked before the schema)."""
    if not isinstance(body, list):
        raise BadRequest("Invalid body: must be an array of components")
    if any(isinstance(item, dict) and "id" not in item for item in body):
        raise BadRequest(MISSING_ID)
    return validate_items(schema.ComponentArray, body)


async def _resolved(request: web.Request, items: Iterable[Record]) -> Dict[str, Any]:
    return (await _resolved_all(request, items))[0]


async def _resolved_all(request: web.Request, items: Iterable[Record]) -> Tuple[Dict[str, Any], bool]:
    """The records of the tokens the items report, and whether every one was found (_runs: the items
    are looked at once, not again for that: a pass over a bulk write's items, 3 % of its CPU).
    Tokens this process has cached are taken from the cache without a look-up (cached_tokens).
    A bulk write's items: the first of each run (_items), which the others equal but for their IDs."""
    wanted = tokens_in(items)
    tokens = cached_tokens(wanted)
    if tokens is None:
        tokens = await get_tokens(ctx(request).store.redis, wanted)
    return tokens, wanted <= tokens.keys()


async def _items(request: web.Request) -> Tuple[Runs, bool]:
    """A list-form body, validated, as runs of items equal but for their IDs (fast_bodies.Runs): by the
    fast decoder, else by the reporting path (its errors), each item a run of its own; and whether
    the fast decoder took it."""
    runs = await fast_body(request, FAST_RUNS)
    return (runs, True) if runs is not None else (_own_runs(await json_body(request)), False)


def _own_runs(body: Any) -> Runs:
    """A list-form body validated by the reporting path (_item_list), each item a run of its own."""
    return [(item, []) for item in _item_list(body)]


def _ids_of(runs: Runs) -> Iterator[str]:
    """The IDs of the runs' items, in the body's order."""
    for item, more in runs:
        yield item["id"]
        yield from more


def _runs(items: Runs, resolved: Tuple[Mapping[str, Any], bool], now: str, fast: bool
          ) -> Tuple[Dict[str, Record], Dict[str, int]]:
    """Each ID's item with the auto-fields applied (§2.4), and its run: consecutive items equal
    but for their IDs share one transformed item (session setup's 2,800 desired states, a
    seed's records), made once, and one run number, the store's `alike` key (store/alike.py).
    `items`: the body's runs (_items): the fast decoder's are such runs already, and the items
    after each first take its transformed item without a look (a copy, an ID swap and a
    comparison per item were a tenth of a seed PUT's API CPU before its first script, issue 13).

    Runs only for a body the fast decoder took: its objects have the schema's key order and
    strictly typed values, so equal items encode alike (1 == 1.0 == True would not). Nor when
    an item reports an unknown token (`resolved`: the tokens, and whether every one reported
    was found): each component is counted in its warning (§2.4 step 1, unknown_tokens.py).
    A duplicate ID: the last item wins. A run the decoder marks Again (its first item an earlier
    run's with another ID, fast_bodies._text_walk) takes that run's transformed item and number:
    a seed's ~20 runs of two shapes are two computations in the store, not twenty (alike.py).
    """
    out: Dict[str, Record] = {}
    runs: Dict[str, int] = {}
    tokens, all_found = resolved
    if not fast or not all_found:
        n = 0
        for item, more in items:  # the fast decoder's items may share values (fast_bodies._runs_decoder)
            out[item["id"]], runs[item["id"]] = apply_auto_fields(item, tokens, now, owned=not fast), n
            for other in more:
                n += 1
                out[other], runs[other] = apply_auto_fields({**item, "id": other}, tokens, now), n
            n += 1
        return out, runs
    previous: Optional[Record] = None
    made: Record = {}
    run = -1
    firsts: Dict[int, Tuple[Record, int]] = {}  # id(a run's first item) -> its transformed item and run
    count = 0  # runs numbered
    for item, more in items:
        taken = firsts.get(id(more.of)) if type(more) is Again else None  # that item's values: taken as it was
        if taken is not None:
            made, run = taken
        elif previous is None or not _same_but_id(item, previous):
            made, run, count = apply_auto_fields(item, tokens, now), count, count + 1  # a copy: `item` is compared
        firsts[id(item)] = made, run
        previous = item
        out[item["id"]], runs[item["id"]] = made, run
        if more:  # a duplicate ID: the last item wins, in its first place (as one at a time would)
            out.update(dict.fromkeys(more, made))
            runs.update(dict.fromkeys(more, run))
    return out, runs


def _same_but_id(item: Record, other: Record) -> bool:
    """The two items are equal but for their IDs (compared whole, in C, with `other`'s ID swapped for a moment)."""
    own = other["id"]
    other["id"] = item["id"]
    try:
        return item == other
    finally:
        other["id"] = own


async def put_components(request: web.Request) -> web.StreamResponse:
    items, fast = await _items(request)
    create_only = query(request, "create_only")
    await check_owned(request, tenant_of(request), _ids_of(items))
    records, runs = _runs(items, await _resolved_all(request, [item for item, _more in items]), now_str(), fast)
    del items
    for made in {id(r): r for r in records.values()}.values():  # once per run
        new_record(made["id"], made, owned=True)

    def compute(component_id: str, old: Optional[Record]) -> Optional[Record]:
        if create_only and old is not None:
            return None  # D32: never overwrite a record created meanwhile
        return dict(records[component_id])  # the store gives it its ID: a run's items share one dict

    return await _write_in_slices(request, list(records), compute, records, alike=runs.__getitem__, absent=True)


async def _write_in_slices(request: web.Request, ids: List[str], compute: Compute,
                           inputs: Dict[str, Any], read: Optional[Dict[str, Optional[bytes]]] = None,
                           alike: Optional[AlikeKey] = None, absent: bool = False) -> web.StreamResponse:
    """A bulk write answered with the written records (or only their IDs: `Prefer: return=minimal`), in request order.

    Up to WHOLE_WRITE records are one store update, its answer joined from the records' shared
    parts as it is sent (_answer_written). Larger writes go WRITE_SLICE
    records at a time, and each slice's inputs are dropped and its response encoded
    once it is written (to a temporary file when large, ResponseParts): the request holds
    its parsed body, shrinking, not the records, their writes, their views and the
    response all at once (issue 10 item 7). Each record is written atomically either way.
    `alike`: the store's (records computed alike, store/alike.py); their views are encoded once.
    `absent`: the store's (a PUT expects to create its records: the first are written without a read first).
    A minimal answer (the operators' writes) always goes WRITE_SLICE at a time: it needs no
    records back, and a worker's peak memory is that of the writes it runs at once (issue 13).
    """
    store = ctx(request).store.components
    minimal = wants_minimal(request)
    if minimal:
        return respond_ids(await _written_ids(store, ids, WRITE_SLICE, compute, inputs, read, alike, absent))
    size = max(len(ids), 1) if len(ids) <= WHOLE_WRITE else WRITE_SLICE
    if len(ids) <= WHOLE_WRITE:  # one update: every record is written before the first byte is sent
        early = _Early(ids)
        written = await store.update(ids, compute, read=read, alike=alike, ahead=early.make, absent=absent)
        if read is not None:
            read.clear()  # the stored values are not needed for the answer (memory)
        _drop(inputs, ids)
        return await _answer_written(request, ids, written, early.taken(written))
    parts = ResponseParts()  # spooled to a file when large: the response never adds to the peak
    shown: Dict[int, Any] = {}
    try:
        for start in range(0, len(ids), size):
            part = ids[start:start + size]
            written = await store.update(part, compute, alike=alike, absent=absent)
            for chunk in range(0, len(part), RESPONSE_CHUNK):
                views = [shown_like(written[i], view, shown) for i in part[chunk:chunk + RESPONSE_CHUNK]
                         if i in written]
                if views:
                    parts.add(memoryview(dumps_transient(views))[1:-1])  # written out at once: no copies
            del written
            _drop(inputs, part)
    except BaseException:
        parts.close()
        raise
    return await respond_parts(request, parts)


OWN_ENCODINGS = 64  # records of a write's answer encoded on their own (not alike) kept for one Content-Length


class _Answer(NamedTuple):
    """An answer's parts made (_answer_parts): each a comma and a record's text, or its parts; `done`: how many
    of the IDs they answer (fewer than all when too many records were encoded on their own); `shown`: the
    models encoded (alike.shown_split's memo); `joined`: the parts are the answer's text already (_joined)."""

    parts: List[bytes]
    done: int
    shown: Dict[int, Any]
    joined: bool = False


def _joined(parts: List[bytes]) -> List[bytes]:
    """An answer's parts (each a comma and a record's text, or its parts) as its text: in brackets, joined
    into pieces of about SEND_CHUNK, which respond_joined sends as they are (a join of one bytes object
    is that object). Made while the scripts run (_Early), the copy of a 2,800-record bulk write's 9.4 MB
    is not made after them (issue 13)."""
    if not parts:
        return []
    parts[0] = b"["
    parts.append(b"]")
    pieces: List[bytes] = []
    start = pending = 0
    for end, part in enumerate(parts):
        pending += len(part)
        if pending >= SEND_CHUNK:
            pieces.append(b"".join(parts[start:end + 1]))
            start, pending = end + 1, 0
    if start < len(parts):
        pieces.append(b"".join(parts[start:]))
    return pieces


class _Early:
    """The answer of a store update made while its scripts run (ComponentStore.update's `ahead`), from the
    records it will return when none conflicts: the API's work on the answer overlaps Redis' on the writes
    instead of following it. Made for a seed's 1,000-record PUT, it was 2 of the API's 21 ms (issue 13)."""

    def __init__(self, ids: List[str]) -> None:
        self.ids = ids
        self.records: Optional[Mapping[str, Record]] = None
        self.answer: Optional[_Answer] = None

    def make(self, records: Mapping[str, Record]) -> None:
        answer = _answer_parts(self.ids, records, {})
        if answer.done == len(self.ids):
            answer = answer._replace(parts=_joined(answer.parts), joined=True)
        self.records, self.answer = records, answer

    def taken(self, written: Mapping[str, Record]) -> Optional[_Answer]:
        """The answer made, if `written` (the update's) holds the very records it was made from. Asked
        once: the records are let go here, not held while the answer is sent (a streamed answer lets
        each record go once it is encoded, _views_of)."""
        made, answer = self.records, self.answer
        self.records = self.answer = None
        if made is None or len(made) != len(written):
            return None
        if any(written.get(i) is not record for i, record in made.items()):
            return None
        return answer


def _answer_parts(ids: List[str], written: Mapping[str, Record], shown: Dict[int, Any]) -> _Answer:
    """The views of `written`'s records in `ids` order as parts (_answer_written), up to the record that makes
    more than OWN_ENCODINGS encoded on their own; `written` is only read."""
    models = {id(record.like) for record in written.values() if type(record) is Like}
    parts: List[bytes] = []
    own = 0
    for n, component_id in enumerate(ids):
        record = written.get(component_id)
        if record is None:
            continue
        split: Optional[Tuple[bytes, ...]] = shown_split(record, view, shown)
        parts.append(b",")
        if split is None and id(record) in models:
            split = shown_own(record, view, shown)
        if split is None:
            own += 1
            parts.append(dumps(view(record)))
            if own > OWN_ENCODINGS:
                return _Answer(parts, n + 1, shown)
        else:
            parts += split
    return _Answer(parts, len(ids), shown)


async def _answer_written(request: web.Request, ids: List[str], written: Dict[str, Record],
                          made: Optional[_Answer] = None) -> web.StreamResponse:
    """The answer of one store update: its records' views in `ids` order (`ids` distinct).

    Records written alike (store/alike.py) are each their ID prefix and their model's view
    after its ID, shared: the answer is those parts joined once as it is sent, with a
    Content-Length (respond_joined). A model (the record of its key computed in full) is
    encoded once, its text shared with the records taken from it (shown_own). A write with
    more than OWN_ENCODINGS records neither alike nor models (each an encoding of its own,
    kept until sent) is streamed as it is encoded instead (respond_list), beginning with the
    parts made already: its answer is not held in memory whole, and no record is encoded twice.
    Models counted as records of their own, the ~100-400 shapes of a bulk write at 100,000
    (stored values stamped in the many seconds of its seed, then of each bulk) sent it
    down the streamed path, each record encoded again there (issue 13).
    `made`: the parts made already (_Early), for these very records."""
    parts, done, shown, joined = made if made is not None else _answer_parts(ids, written, {})
    if done < len(ids):
        return await respond_list(request, _made_then_views(parts, ids[done:], written, shown))
    written.clear()  # the parts hold what the answer needs
    if not parts:
        return respond([])
    return await respond_joined(request, parts if joined else _joined(parts))


async def _made_then_views(parts: List[bytes], ids: List[str], written: Dict[str, Record],
                           shown: Dict[int, Any]) -> AsyncIterator[List[Any]]:
    """The records' texts made already (`parts`: each a comma and its text), as one JSON fragment of
    comma-separated records, then the views of the records of `ids` (_views_of)."""
    parts[0] = b""  # no comma before the first record
    made = [orjson.Fragment(b"".join(parts))]
    parts.clear()
    yield made
    del made
    async for views in _views_of(ids, written, shown):
        yield views


async def _views_of(ids: List[str], written: Dict[str, Record],
                    shown: Optional[Dict[int, Any]] = None) -> AsyncIterator[List[Record]]:
    """The response views of a write's records (`ids` distinct), RESPONSE_CHUNK at a time:
    respond_list streams them as they are encoded (no copy of a ~10 MB response in memory or
    in a file), and each record is let go once viewed (a slow client holds one chunk, not all).
    Records written alike (store/alike.py) are encoded once per shape (`shown`: the models
    encoded already), then given their IDs."""
    shown = {} if shown is None else shown
    for start in range(0, len(ids), RESPONSE_CHUNK):
        records = (written.pop(i, None) for i in ids[start:start + RESPONSE_CHUNK])
        views = [shown_like(record, view, shown) for record in records if record is not None]
        if views:
            yield views


async def _written_ids(store: Any, ids: List[str], size: int, compute: Compute, inputs: Dict[str, Any],
                       read: Optional[Dict[str, Optional[bytes]]] = None,
                       alike: Optional[AlikeKey] = None, absent: bool = False) -> List[str]:
    written_ids: List[str] = []
    for start in range(0, len(ids), size):
        part = ids[start:start + size]
        written = await store.update(part, compute, read=read, alike=alike, absent=absent)
        if read is not None:  # each slice's stored values are let go once it is written (memory)
            for component_id in part:
                read.pop(component_id, None)
        written_ids += [i for i in part if i in written]
        del written
        _drop(inputs, part)
    return written_ids


def _drop(inputs: Dict[str, Any], written: List[str]) -> None:
    for component_id in written:
        inputs.pop(component_id, None)


async def patch_components(request: web.Request) -> web.StreamResponse:
    items: Optional[Runs] = await fast_body(request, FAST_RUNS)
    body = await json_body(request) if items is None else items
    skip_bad_ids = query(request, "skip_bad_ids")
    tenant = tenant_of(request)
    now = now_str()
    by_session = False
    patches: Dict[str, Record] = {}  # the list form's items, dropped as they are written
    if isinstance(body, dict):
        targets, patch_for = await _filter_form(request, body, tenant, now)
        by_session = bool(body["filters"].get("session"))
        alike: AlikeKey = _one_patch  # every record gets the same patch
    else:
        fast = items is not None
        items = items if items is not None else _own_runs(body)
        body = None  # memory (issue 10 item 7): only the validated copy is used from here on
        patches, runs = _runs(items, await _resolved_all(request, [item for item, _more in items]), now, fast)
        del items
        targets, patch_for, alike = list(patches), patches.__getitem__, runs.__getitem__
    read: Optional[Dict[str, Optional[bytes]]] = None
    if not by_session:
        targets, read = await _existing_targets(request, targets, tenant, skip_bad_ids)

    def compute(component_id: str, old: Optional[Record]) -> Optional[Record]:
        return merge(old, patch_for(component_id)) if old is not None else None

    return await _write_in_slices(request, targets, compute, patches, read, alike)


def _one_patch(_component_id: str) -> int:
    return 0


async def _filter_form(request: web.Request, body: Record, tenant: Optional[str], now: str):
    update = validate(schema.ComponentsUpdate, body)
    filters = update["filters"]
    ids, session = filters.get("ids") or "", filters.get("session") or ""
    if ids and session:
        raise BadRequest("Multiple filters provided")
    if not ids and not session:
        raise BadRequest("No filter provided.")
    tokens = await _resolved(request, [update["patch"]])
    patch = apply_auto_fields(update["patch"], tokens, now)
    patch.pop("id", None)
    if ids:
        return _split_ids(ids, "filters.ids"), lambda _id: patch
    members = await ctx(request).store.components.ids_in(keys.by_session(session))
    if tenant:
        owned = await owned_xnames(request, tenant)
        members = [m for m in members if m in owned]
    return sorted(members), lambda _id: patch


async def _existing_targets(request: web.Request, targets: List[str], tenant: Optional[str],
                            skip_bad_ids: bool) -> Tuple[List[str], Optional[Dict[str, Optional[bytes]]]]:
    """Listed IDs that exist (and that the tenant owns), else 404 for the first bad one; and, for a
    write of up to WHOLE_WRITE records, their stored values: read once to find the bad IDs, they
    are the update's first read (store.update's `read`), one MGET instead of a ZMSCORE and an MGET.
    A larger write looks its IDs up in the index and reads each slice as it writes it (memory)."""
    store = ctx(request).store.components
    read: Optional[Dict[str, Optional[bytes]]] = None
    if len(targets) <= WHOLE_WRITE:
        read = dict(zip(targets, await store.get_raw_many(targets)))
        existing = {t for t, raw in read.items() if raw is not None}
    else:
        existing = await store.existing(targets)
    owned = await owned_xnames(request, tenant) if tenant else None
    good = [t for t in targets if t in existing and (owned is None or t in owned)]
    if len(good) != len(targets) and not skip_bad_ids:
        accepted = set(good)
        raise _not_found(next(t for t in targets if t not in accepted))
    return good, read


async def _owned_or_404(request: web.Request, component_id: str) -> None:
    tenant = tenant_of(request)
    if tenant and component_id not in await owned_xnames(request, tenant):
        raise _not_found(component_id)


async def get_component(request: web.Request) -> web.Response:
    component_id = _path_id(request)
    await _owned_or_404(request, component_id)
    record = await ctx(request).store.components.get(component_id)
    if record is None:
        raise _not_found(component_id)
    return respond(view(record))


async def _one_body(request: web.Request) -> Record:
    """A single component's body, validated: by the fast decoder, else by the reporting path (its errors).
    A node's report decoded and checked in one C pass: reading, parsing (orjson) and validating it
    took ~19 of the ~46 us of thread CPU the report handler spends before its write (issue 13)."""
    body: Optional[Record] = await fast_body(request, FAST_ONE)
    return body if body is not None else validate(schema.Component, await json_body(request))


async def put_component(request: web.Request) -> web.StreamResponse:
    component_id = _path_id(request)
    body = await _one_body(request)
    await _owned_or_404(request, component_id)
    data = dict(body, id=component_id)
    tokens = await _resolved(request, [data])
    record = new_record(component_id, apply_auto_fields(data, tokens, now_str(), owned=True), owned=True)
    written = await ctx(request).store.components.update_one(component_id, lambda _i, _old: record)
    return _answer_one(request, written)


async def patch_component(request: web.Request) -> web.StreamResponse:
    component_id = _path_id(request)
    body = arrived_body(request, FAST_ONE)  # a node's report: no coroutine to read it
    if body is None:
        body = await _one_body(request)
    if tenant_of(request):  # no coroutine for the check when there is no tenant (a node's report)
        await _owned_or_404(request, component_id)
    # a node's report carries its boot's token, cached after the first report: no coroutine for it
    tokens = cached_tokens(tokens_in((body,)))
    if tokens is None:
        tokens = await _resolved(request, [body])
    patch = apply_auto_fields(dict(body, id=component_id), tokens, now_str(), owned=True)
    reports_actual = "actual_state" in body

    def compute(_id: str, old: Optional[Record]) -> Record:
        if old is None:
            raise _not_found(component_id)
        if reports_actual and not actual_state_update_allowed(old):
            raise ActualStateConflict()  # §2.6, checked against the version being written (D2)
        return merge(old, patch)

    if not reports_actual:
        return _answer_one(request, await ctx(request).store.components.update_one(component_id, compute))
    try:  # a node reporter's report: counted by outcome (docs/metrics.md)
        written = await ctx(request).store.components.update_one(component_id, compute)
    except ActualStateConflict:
        metrics.reporter_report("rejected")
        raise
    except NotFound:
        metrics.reporter_report("not_found")
        raise
    metrics.reporter_report("accepted")
    return _answer_one(request, written)


def _answer_one(request: web.Request, written: Optional[Record]) -> web.StreamResponse:
    """A single-record write's answer: its view, or nothing (204) when the caller prefers
    `return=minimal` (api.md §3.4: a node's reporter reads only the status; building and sending
    the record's view was ~3 % of the API's instructions per report, issue 13)."""
    if wants_minimal(request):
        return respond_minimal()
    return respond(_shown(written))


def _shown(written: Optional[Record]) -> Record:
    """The response view of a single-record write whose compute always writes (or raises)."""
    assert written is not None
    return view(written)


async def delete_component(request: web.Request) -> web.Response:
    component_id = _path_id(request)
    await _owned_or_404(request, component_id)
    if not await ctx(request).store.components.delete(component_id):
        raise _not_found(component_id)
    return web.Response(status=204)


ROUTES = [
    route("GET", "/v2/components", list_components, query=LIST_QUERY, response="[V2Component]"),
    route("PUT", "/v2/components", put_components, query=(flag("create_only", False),),
          body="V2ComponentArray", response="[V2Component]"),
    route("PATCH", "/v2/components", patch_components, query=(flag("skip_bad_ids", False),),
          body="V2ComponentArray|V2ComponentsUpdate", response="[V2Component]"),
    route("GET", "/v2/components/{component_id}", get_component, response="V2Component"),
    route("PUT", "/v2/components/{component_id}", put_component, body="V2Component", response="V2Component"),
    route("PATCH", "/v2/components/{component_id}", patch_component, body="V2Component", response="V2Component"),
    route("DELETE", "/v2/components/{component_id}", delete_component, status=204),
]
