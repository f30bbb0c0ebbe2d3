"""The write path's shortcuts keep its guarantees (issue 13): every test here goes red when
the shortcut it covers is made wrong.

- A record whose new encoding equals the stored value is not written again.
- `merge` shares untouched fields with the stored record but never modifies it.
- Artifact digests memoised by content equal the digest of the canonical JSON.
- The hiredis command packer sends the bytes redis-py's own packer would.
"""

from __future__ import annotations

import copy
from typing import Any, Dict

import orjson
import pytest
import requests
from redis.asyncio.connection import Connection

from bos_server.api.components import FAST_RUNS, OWN_ENCODINGS, RESPONSE_CHUNK, _Early, _joined, _runs
from bos_server.api.responses import SEND_CHUNK
from bos_server.component_writes import apply_auto_fields, merge, new_record
from bos_server.store import Store
from bos_server.store.blobs import MIN_BYTES, Blobs, digest_of
from bos_server.store.packing import HiredisPackingConnection, connection_class
from bos_sim.stack import ApiServer, wait_until
from tests.support.client import Api

LONG = {"kernel": "s3://boot-images/img/kernel", "kernel_parameters": "console=ttyS0 " + "x" * MIN_BYTES,
        "initrd": "s3://boot-images/img/initrd"}


def test_an_unchanged_record_is_not_written_again(api: Api, redis_client) -> None:
    assert api.put("/v2/components/x1", json={"enabled": False, "retry_policy": 2}).status_code == 200
    redis_client.pexpire("bos:comp:x1", 10_000_000)  # a SET would clear this
    resp = api.patch("/v2/components/x1", json={"retry_policy": 2})
    assert resp.status_code == 200 and resp.json()["retry_policy"] == 2
    assert redis_client.pttl("bos:comp:x1") > 0, "an identical record was rewritten"
    resp = api.patch("/v2/components/x1", json={"retry_policy": 3})
    assert resp.status_code == 200 and resp.json()["retry_policy"] == 3
    assert redis_client.pttl("bos:comp:x1") == -1, "a changed record was not written"


def test_an_unchanged_bulk_item_is_returned_like_a_written_one(api: Api) -> None:
    body = [{"id": "a", "enabled": False, "retry_policy": 1}, {"id": "b", "enabled": False}]
    assert api.put("/v2/components", json=body).status_code == 200
    resp = api.patch("/v2/components", json=[{"id": "a", "retry_policy": 1}, {"id": "b", "retry_policy": 5}])
    assert resp.status_code == 200
    assert [(r["id"], r["retry_policy"]) for r in resp.json()] == [("a", 1), ("b", 5)]


def test_merge_never_modifies_the_stored_record() -> None:
    record = {"id": "x1", "enabled": True, "status": {"phase": "", "status": "stable", "status_override": ""},
              "desired_state": {"boot_artifacts": dict(LONG), "configuration": "c"},
              "event_stats": {"power_on_attempts": 1}, "last_action": {"action": "powering_on"}}
    before = copy.deepcopy(record)
    out = merge(record, {"desired_state": {"boot_artifacts": {"kernel": "k2"}}, "event_stats": {"power_on_attempts": 2},
                         "enabled": False})
    assert record == before
    assert "status" not in out["status"] and out["desired_state"]["boot_artifacts"]["kernel"] == "k2"
    assert out["desired_state"]["boot_artifacts"]["initrd"] == LONG["initrd"]
    assert out["event_stats"] == {"power_on_attempts": 2} and out["enabled"] is False


def test_owned_bodies_transform_like_copied_ones() -> None:
    body = {"id": "x1", "enabled": True, "desired_state": {"boot_artifacts": dict(LONG)},
            "actual_state": {"bss_token": "t"}, "staged_state": {}, "last_action": {"action": "a"}}
    tokens = {"t": {"kernel": "k", "kernel_parameters": "p", "initrd": "i", "timestamp": "2026-01-01T00:00:00Z"}}
    copied = new_record("x1", apply_auto_fields(copy.deepcopy(body), tokens, "NOW"))
    owned = new_record("x1", apply_auto_fields(copy.deepcopy(body), tokens, "NOW", owned=True), owned=True)
    assert owned == copied


@pytest.mark.parametrize("artifacts", [LONG, {"kernel": "short"}, dict(reversed(list(LONG.items())))])
def test_memoised_artifact_digests_are_those_of_the_canonical_json(artifacts: Dict[str, Any]) -> None:
    blobs = Blobs(redis=None)  # type: ignore[arg-type]  (intern never touches Redis)
    raw = orjson.dumps(artifacts, option=orjson.OPT_SORT_KEYS)
    for _ in range(2):  # first computed, then from the memo
        out: Dict[str, bytes] = {}
        stored = blobs.intern({"desired_state": {"boot_artifacts": dict(artifacts)}}, out)
        if len(raw) < MIN_BYTES:
            assert out == {} and stored["desired_state"]["boot_artifacts"] == artifacts
        else:
            digest = digest_of(raw)
            assert out == {digest: raw} and stored["desired_state"]["boot_artifacts"] == digest
    other: Dict[str, bytes] = {}
    blobs.intern({"actual_state": {"boot_artifacts": dict(LONG, kernel="another")}}, other)
    assert not (set(other) & set(out)) or len(raw) < MIN_BYTES


@pytest.mark.parametrize("args", [
    ("SET", "k", "v"), ("CONFIG GET", "maxmemory"), (b"CLIENT SETINFO", "lib-name", "x"),
    ("EVALSHA", "f" * 40, 3, b"\x00\xff", "é", 1.25, 0, 1_700_000_000.5, bytearray(b"z"), memoryview(b"m")),
])
def test_hiredis_packer_sends_redis_py_bytes(args: tuple) -> None:
    assert HiredisPackingConnection().pack_command(*args) == [b"".join(Connection().pack_command(*args))]


def test_the_store_uses_the_hiredis_packer_for_tcp_urls() -> None:
    assert Store.connect("redis://127.0.0.1:1/0").redis.connection_pool.connection_class is HiredisPackingConnection
    assert Store.connect("unix:///tmp/none.sock").redis.connection_pool.connection_class is not HiredisPackingConnection
    assert connection_class("redis+sentinel://127.0.0.1:26379/mymaster") == {}
    assert connection_class("rediss://127.0.0.1:1/0") == {}


def test_concurrent_token_lookups_share_one_round_trip(redis_server) -> None:
    import asyncio

    from bos_server.store import tokens as token_store

    async def scenario() -> Dict[str, Any]:
        store = Store.connect(redis_server.url)
        try:
            await token_store.put_token(store.redis, "tok-known", {"kernel": "k", "kernel_parameters": "p",
                                                                   "initrd": "i"})
            token_store.forget(["tok-known"])
            calls = []
            original = token_store.read_kept

            async def counting_read(*args: Any) -> Any:
                calls.append(args)
                return await original(*args)

            token_store.read_kept = counting_read  # type: ignore[assignment]
            try:
                results = await asyncio.gather(*(token_store.get_tokens(store.redis, [f"tok-unknown-{n}", "tok-known"])
                                                 for n in range(20)))
            finally:
                token_store.read_kept = original  # type: ignore[assignment]
            return {"calls": len(calls), "results": results}
        finally:
            await store.close()

    outcome = asyncio.run(scenario())
    assert outcome["calls"] == 1
    for found in outcome["results"]:
        assert set(found) == {"tok-known"} and found["tok-known"]["kernel"] == "k"


def test_bulk_writes_of_items_alike_answer_and_store_each_record_as_its_own(api: Api) -> None:
    """Runs of items equal but for their IDs are decoded, computed and shown once per shape
    (fast_bodies._runs_decoder, store/alike.py): each answer and each stored record is still
    that record's, in request order, a record stored differently keeps what differs."""
    ids = [f"a{n}" for n in range(6)]
    body = [{"id": i, "enabled": False, "error": "its own" if i == "a2" else "",
             "desired_state": {"boot_artifacts": dict(LONG), "configuration": "c"}} for i in ids]
    resp = api.put("/v2/components", data=orjson.dumps(body), headers={"Content-Type": "application/json"})
    assert resp.status_code == 200 and [r["id"] for r in resp.json()] == ids
    assert resp.json() == [api.get(f"/v2/components/{i}").json() for i in ids]
    patch = [{"id": i, "desired_state": {"configuration": "c2"}, "enabled": True} for i in reversed(ids)]
    resp = api.patch("/v2/components", data=orjson.dumps(patch), headers={"Content-Type": "application/json"})
    assert resp.status_code == 200 and [r["id"] for r in resp.json()] == list(reversed(ids))
    assert resp.json() == [api.get(f"/v2/components/{i}").json() for i in reversed(ids)]
    shown = {r["id"]: r for r in resp.json()}
    assert shown["a2"]["error"] == "its own" and shown["a3"]["error"] == ""
    assert all(r["desired_state"]["configuration"] == "c2" and r["enabled"] for r in shown.values())
    assert all(r["desired_state"]["boot_artifacts"] == LONG for r in shown.values())
    listed = api.get("/v2/components", params={"enabled": "true"}).json()
    assert [r["id"] for r in listed] == ids


def test_a_shape_met_again_is_transformed_once_and_keeps_its_first_run() -> None:
    """A seed body's stretches of one shape, each after a component in another session (fast_bodies: Again),
    share one transformed item and one run number, the store's alike key (two computations, not seven);
    each ID still gets its own item's transformation, in the body's order. Goes red when _runs ignores Again."""
    from bench.api_store import TOKEN, boot_artifacts, component, in_small_session
    assert FAST_RUNS is not None
    items = [component(n) for n in range(300)]
    tokens = {TOKEN: dict(boot_artifacts(), timestamp="2026-01-01T00:00:00Z")}
    now = "2026-12-03T12:00:00Z"
    runs = FAST_RUNS(orjson.dumps(items))
    assert runs is not None
    records, numbers = _runs(runs, (tokens, True), now, True)
    ids = [item["id"] for item in items]
    assert list(records) == ids and list(numbers) == ids
    assert sorted(set(numbers.values())) == [0, 1] and len({id(r) for r in records.values()}) == 2
    for n, item in enumerate(items):
        assert {**records[item["id"]], "id": item["id"]} == apply_auto_fields(item, tokens, now), item["id"]
        assert numbers[item["id"]] == (1 if in_small_session(n) else 0)


def _put_big(api: Api, ids: list, own: tuple = ()) -> dict:
    """PUTs records alike but for `own` (an error of their own), with ~2 KiB kernel parameters;
    returns them as listed."""
    params = {"kernel": "s3://boot-images/big/kernel", "kernel_parameters": "console=ttyS0 " + "y" * 2048,
              "initrd": "s3://boot-images/big/initrd"}
    body = [{"id": i, "enabled": False, "error": f"own {i}" if i in own else "",
             "desired_state": {"boot_artifacts": params, "configuration": "c"}} for i in ids]
    resp = api.put("/v2/components", data=orjson.dumps(body), headers={"Content-Type": "application/json"})
    assert resp.status_code == 200 and len(resp.content) > SEND_CHUNK
    assert resp.headers.get("Content-Length") == str(len(resp.content))  # joined, not streamed as encoded
    listed = {r["id"]: r for r in api.get("/v2/components", params={"ids": ",".join(ids)}).json()}
    assert resp.json() == [listed[i] for i in ids]
    return listed


def test_a_large_bulk_answer_joined_from_shared_parts_is_each_record_as_read(api: Api) -> None:
    """A bulk write's answer over SEND_CHUNK is its records' ID prefixes and shared view texts
    joined as it is sent, with a Content-Length (api/components._answer_written): each record
    is still its own, in request order, records not alike among them; and past OWN_ENCODINGS
    records neither alike nor models the answer is streamed as encoded instead, the same
    records, those encoded before it turned included once."""
    ids = [f"j{n:04d}" for n in range(RESPONSE_CHUNK + 100)]  # streamed as encoded: more than one chunk
    _put_big(api, ids, own=("j0007", "j0300", "j1099"))
    patch = [{"id": i, "desired_state": {"configuration": f"c{n}"}} for n, i in enumerate(reversed(ids))]
    resp = api.patch("/v2/components", data=orjson.dumps(patch), headers={"Content-Type": "application/json"})
    assert resp.status_code == 200 and [r["id"] for r in resp.json()] == list(reversed(ids))
    assert "Content-Length" not in resp.headers  # streamed as encoded: not held whole in memory
    listed = {r["id"]: r for r in api.get("/v2/components", params={"ids": ",".join(ids)}).json()}
    assert resp.json() == [listed[i] for i in reversed(ids)]
    assert [r["desired_state"]["configuration"] for r in resp.json()] == [f"c{n}" for n in range(len(ids))]


def test_a_bulk_answer_of_many_shapes_each_written_alike_is_joined(api: Api) -> None:
    """Records computed in full are the models of the records of their key (shown_own), not records
    of their own: a write of more than OWN_ENCODINGS patches, each given to 10 records alike, is
    joined with a Content-Length, not streamed as encoded (models counted as records of their
    own, it was), and each record is as read."""
    assert 110 > OWN_ENCODINGS
    ids = [f"k{n:04d}" for n in range(RESPONSE_CHUNK + 100)]
    _put_big(api, ids)
    patch = [{"id": i, "desired_state": {"configuration": f"c{n // 10}"}} for n, i in enumerate(ids)]
    resp = api.patch("/v2/components", data=orjson.dumps(patch), headers={"Content-Type": "application/json"})
    assert resp.status_code == 200
    assert resp.headers.get("Content-Length") == str(len(resp.content))  # joined, not streamed as encoded
    listed = {r["id"]: r for r in api.get("/v2/components", params={"ids": ",".join(ids)}).json()}
    assert resp.json() == [listed[i] for i in ids]
    assert [r["desired_state"]["configuration"] for r in resp.json()] == [f"c{n // 10}" for n in range(len(ids))]


def test_a_bulk_write_of_items_alike_counts_each_component_with_an_unknown_token(tmp_path, redis_server) -> None:
    """Items equal but for their IDs share one transformation (api/components._runs), except when
    they report a token that is not found: each component is counted in the warning (§2.4 step 1).
    The first is logged at once, the others in the summary the worker writes at the latest when it
    shuts down (unknown_tokens.py; goes red without main._flush_unknown_tokens)."""
    api = ApiServer(tmp_path, redis_server.url)
    ids = ["xtok1", "xtok2", "xtok3"]
    try:
        body = orjson.dumps([{"id": i, "actual_state": {"bss_token": "no-such-token"}} for i in ids])
        resp = requests.put(f"{api.url}/v2/components", data=body, headers={"Content-Type": "application/json"},
                            timeout=10)
        assert resp.status_code == 200, resp.text
        wait_until(lambda: "Unknown BSS referral token" in api.log_path.read_text(errors="replace"), 10,
                   "the first warning, at once")
    finally:
        assert api.stop() == 0
    warned = [line for line in api.log_path.read_text().splitlines() if "unknown bss referral token" in line.lower()]
    assert len(warned) == 2, warned
    assert warned[0].endswith("Unknown BSS referral token no-such-token reported for xtok1"), warned
    assert "2 more reports of unknown BSS referral tokens" in warned[1], warned
    assert warned[1].endswith("the first: no-such-token for xtok2, no-such-token for xtok3"), warned


def test_an_answer_made_while_the_scripts_run_is_kept_only_for_the_records_it_was_made_from() -> None:
    """_Early (the answer made during a bulk write's scripts): a record the store recomputed after a
    conflict is another object, and the answer must then be made again from what was written."""
    ids = ["a", "b"]
    given = {"a": {"id": "a", "enabled": False}, "b": {"id": "b", "enabled": False}}

    def made() -> _Early:
        early = _Early(ids)
        early.make(given)
        return early
    early = made()
    answer = early.taken(dict(given))
    assert answer is not None and answer.done == 2
    assert early.records is None and early.answer is None, "the records are held while the answer is sent"
    assert made().taken({**given, "b": {"id": "b", "enabled": True}}) is None, "an answer of a record not written"
    assert made().taken({"a": given["a"]}) is None, "an answer of a record not written"
    assert _Early(ids).taken(given) is None  # never made: the store called no ahead


def test_an_answer_joined_early_is_the_array_in_pieces_sent_without_another_copy() -> None:
    """_joined (the answer's text made while the scripts run): the records in brackets, in pieces
    of at least SEND_CHUNK but the last, which respond_joined sends as they are."""
    texts = [b'{"id":"x%d","t":"%s"}' % (n, b"y" * 3000) for n in range(900)]
    parts = [piece for text in texts for piece in (b",", text)]
    pieces = _joined(parts)
    assert b"".join(pieces) == b"[" + b",".join(texts) + b"]"
    assert len(pieces) > 1 and all(len(p) >= SEND_CHUNK for p in pieces[:-1])
    assert _joined([]) == []
