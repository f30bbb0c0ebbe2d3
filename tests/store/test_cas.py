"""The compare-and-set write itself (D2), with no write batcher in the way.

Each test lets a second, independent store write the same record between the
read and the write of an update: the update must notice it, recompute from the
new value, and leave both changes in place, with the indexes describing the
final record. With the hash comparison of the write script switched off
(`make mutation`), these tests fail.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional

import pytest
import redis as redis_lib

from bos_server.store import Store, keys
from bos_server.store.codec import loads
from bos_sim.stack import RedisServer

Record = Dict[str, Any]
Read = Callable[..., Awaitable[Any]]


@pytest.fixture
def url(redis_server: RedisServer, redis_client: redis_lib.Redis) -> Iterator[str]:
    redis_client.flushdb()
    yield redis_server.url


def interposing(read: Read, interloper: Callable[[], Awaitable[Any]]) -> Read:
    """`read`, except that its first call lets `interloper` write after the read returned."""
    done: List[bool] = []

    async def wrapped(*args: Any) -> Any:
        result = await read(*args)
        if not done:
            done.append(True)
            await interloper()
        return result
    return wrapped


async def component_race(url: str, first: Record, theirs: Callable[[Record], Record],
                         ours: Callable[[Record], Record]) -> None:
    mine, other = Store.connect(url), Store.connect(url)
    try:
        await mine.components.update([first["id"]], lambda _id, _old: dict(first))
        interloper = lambda: other.components.update([first["id"]], lambda _id, old: theirs(old))  # noqa: E731
        mine.components.get_raw_many = interposing(mine.components.get_raw_many, interloper)  # type: ignore
        await mine.components.update([first["id"]], lambda _id, old: ours(old or {}))
    finally:
        await mine.close()
        await other.close()


def test_d2_component_update_recomputes_after_a_conflicting_write(url: str, redis_client: redis_lib.Redis) -> None:
    asyncio.run(component_race(url, {"id": "x1", "enabled": False, "error": ""},
                               theirs=lambda old: {**old, "error": "set by the other writer"},
                               ours=lambda old: {**old, "retry_policy": 7}))
    record = loads(redis_client.get(keys.component("x1")))
    assert record["retry_policy"] == 7, "our update was lost"
    assert record["error"] == "set by the other writer", "the concurrent write was lost"


def test_d2_component_indexes_move_with_the_record_that_won(url: str, redis_client: redis_lib.Redis) -> None:
    asyncio.run(component_race(url, {"id": "x1", "enabled": False},
                               theirs=lambda old: {**old, "enabled": True},
                               ours=lambda old: {**old, "error": "e"}))
    record = loads(redis_client.get(keys.component("x1")))
    assert record["enabled"] is True and record["error"] == "e"
    assert redis_client.zscore(keys.COMPONENT_ENABLED, "x1") is not None, "index lost the concurrent write"


def test_d2_an_update_given_its_first_read_recomputes_after_a_write_that_came_after_that_read(
        url: str, redis_client: redis_lib.Redis) -> None:
    """A bulk PATCH reads its records once to find its 404s and hands that read to the update
    (`read=`, issue 13): a write landing between that read and the update must not be lost."""
    async def scenario() -> None:
        mine, other = Store.connect(url), Store.connect(url)
        try:
            await mine.components.update(["x1", "x2"], lambda cid, _old: {"id": cid, "enabled": False, "error": ""})
            read = dict(zip(["x1", "x2"], await mine.components.get_raw_many(["x1", "x2"])))
            await other.components.update(["x1"], lambda _id, old: {**old, "error": "set by the other writer"})
            await mine.components.update(["x1", "x2"], lambda _id, old: {**old, "retry_policy": 7} if old else None,
                                         read=read)
        finally:
            await mine.close()
            await other.close()

    asyncio.run(scenario())
    first, second = (loads(redis_client.get(keys.component(i))) for i in ("x1", "x2"))
    assert first["retry_policy"] == 7 and second["retry_policy"] == 7, "our update was lost"
    assert first["error"] == "set by the other writer", "the concurrent write was lost"
    assert redis_client.zscore(keys.COMPONENT_ERRORED, "x1") is not None, "the index lost the concurrent write"


def test_d2_session_update_recomputes_after_a_conflicting_write(url: str) -> None:
    async def scenario() -> Optional[Record]:
        mine, other = Store.connect(url), Store.connect(url)
        try:
            await mine.sessions.put({"name": "s1", "tenant": "", "operation": "boot", "components": "",
                                     "status": {"status": "pending", "error": None}})
            interloper = lambda: other.sessions.update("", "s1", lambda old: {**old, "components": "x1,x2"})  # noqa: E731
            mine.redis.get = interposing(mine.redis.get, interloper)  # type: ignore
            await mine.sessions.update("", "s1", lambda old: {**old, "status": {**old["status"], "status": "running"}})
            return await other.sessions.get("", "s1")
        finally:
            await mine.close()
            await other.close()

    record = asyncio.run(scenario())
    assert record is not None
    assert record["status"]["status"] == "running", "our update was lost"
    assert record["components"] == "x1,x2", "the concurrent write was lost"


def test_one_call_writing_a_key_twice_checks_the_second_write_against_the_first(
        url: str, redis_client: redis_lib.Redis) -> None:
    """The script reads every record with one MGET and batches the writes (cas.py); a key
    written twice in one call must still behave as two writes in sequence."""
    from bos_server.store.cas import MISSING, CasWriter, Write, digest

    key, idx_a, idx_b = keys.component("dup1"), keys.by_session("a"), keys.by_session("b")

    async def scenario() -> List[List[int]]:
        store = Store.connect(url)
        try:
            writer = CasWriter(store.redis)
            first = Write(key, "dup1", MISSING, b"v1", add_to=(idx_a,))
            then = Write(key, "dup1", digest(b"v1"), b"v2", remove_from=(idx_a,), add_to=(idx_b,))
            stale = Write(key, "dup1", digest(b"v1"), b"v3", add_to=(idx_a,))  # read before `then`
            return [await writer.apply([first, then, stale])]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [[2]], "the third write was checked against the value before the call"
    assert redis_client.get(key) == b"v2"
    assert redis_client.zscore(idx_a, "dup1") is None and redis_client.zscore(idx_b, "dup1") == 0


def test_a_key_written_again_after_another_keys_flush_is_checked_against_its_first_write(
        url: str, redis_client: redis_lib.Redis) -> None:
    """A second key written twice flushes the pending writes in between (cas.py): the first key's
    next write must still be read back, not checked against the value the call began with (a
    write that expected the first key absent overwrote it: a lost update)."""
    from bos_server.store.cas import MISSING, CasWriter, Write, digest

    first, other = keys.component("dup-a"), keys.component("dup-b")

    async def scenario() -> List[int]:
        store = Store.connect(url)
        try:
            return await CasWriter(store.redis).apply([
                Write(first, "dup-a", MISSING, b"a1"), Write(other, "dup-b", MISSING, b"b1"),
                Write(other, "dup-b", digest(b"b1"), b"b2"),  # flushes a1 and b1
                Write(first, "dup-a", MISSING, b"a-stale")])  # read before a1 was written
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [3], "the last write was checked against the value before the call"
    assert redis_client.get(first) == b"a1" and redis_client.get(other) == b"b2"


def test_a_key_written_twice_in_one_call_keeps_both_history_entries(url: str, redis_client: redis_lib.Redis) -> None:
    """The script appends a written key's history entry to the text it read, and to the text it made
    already when the call writes the key again (cas.py: latest)."""
    from bos_server.store.cas import MISSING, CasWriter, Write, digest
    from bos_server.store.history import GS, US, HistorySettings

    key = keys.component("twice")

    async def scenario() -> List[int]:
        store = Store.connect(url)
        try:
            return await CasWriter(store.redis, HistorySettings()).apply([
                Write(key, "twice", MISSING, b"v1", history=b"first"),
                Write(key, "twice", digest(b"v1"), b"v2", history=b"second")])
        finally:
            await store.close()

    assert asyncio.run(scenario()) == []
    entries = redis_client.get(keys.component_history("twice")).split(GS.encode())
    assert [entry.split(US.encode(), 1)[1] for entry in entries] == [b"first", b"second"]


def test_a_batched_write_moves_each_record_between_indexes_with_its_scores(
        url: str, redis_client: redis_lib.Redis) -> None:
    """Index moves travel as one word list per record (cas.py): removals, plain and scored additions."""
    from bos_server.store.cas import MISSING, CasWriter, Write

    async def scenario() -> List[int]:
        store = Store.connect(url)
        try:
            writer = CasWriter(store.redis)
            await store.redis.zadd(keys.by_session("old"), {"m1": 0, "m2": 0})
            writes = [Write(keys.component(m), m, MISSING, b"{}", remove_from=(keys.by_session("old"),),
                            add_to=(keys.COMPONENT_IDS, keys.by_session("new")),
                            scored={keys.COMPONENT_ACTUAL_STAMP: 1733000000.5 + n})
                      for n, m in enumerate(["m1", "m2", "m3"])]
            return await writer.apply(writes)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == []
    assert redis_client.zcard(keys.by_session("old")) == 0
    assert redis_client.zrange(keys.by_session("new"), 0, -1) == [b"m1", b"m2", b"m3"]
    assert redis_client.zscore(keys.COMPONENT_ACTUAL_STAMP, "m3") == 1733000002.5


def test_writes_of_one_shape_share_a_template_only_with_their_own_expected_value_moves_and_history(
        url: str, redis_client: redis_lib.Redis) -> None:
    """Shaped writes (records written alike) send key, member and a template reference (cas.py);
    writes of one value shape read as absent, as that shape, or stale must each be checked against
    their own expected value, and each get its own moves and history."""
    from bos_server.store.cas import MISSING, CasWriter, Shaped, Write
    from bos_server.store.history import HistorySettings

    rest, newer = b',"error":"old"}', b',"error":"new"}'
    history = HistorySettings()

    async def scenario() -> List[int]:
        store = Store.connect(url)
        try:
            writer = CasWriter(store.redis, history)
            for member in ("s1", "s2", "s3"):
                await store.redis.set(keys.component(member), b'{"id":"' + member.encode() + b'"' + rest)
            await store.redis.set(keys.component("s3"), b'{"id":"s3","error":"changed"}')  # since it was read
            writes = [Write(keys.component(m), m, MISSING, Shaped(newer), add_to=(keys.by_session("a"),),
                            history=b"created") for m in ("n1", "n2")]
            writes += [Write(keys.component(m), m, Shaped(rest), Shaped(newer), add_to=(keys.by_session("b"),),
                             history=b"changed") for m in ("s1", "s2", "s3")]
            writes.append(Write(keys.component("n3"), "n3", Shaped(rest), Shaped(newer)))  # read as existing: absent
            return await writer.apply(writes)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [4, 5], "a write was checked against another template's expected value"
    for member in ("n1", "n2", "s1", "s2"):
        assert redis_client.get(keys.component(member)) == b'{"id":"' + member.encode() + b'"' + newer
    assert redis_client.get(keys.component("s3")) == b'{"id":"s3","error":"changed"}'
    assert redis_client.get(keys.component("n3")) is None
    assert redis_client.zrange(keys.by_session("a"), 0, -1) == [b"n1", b"n2"]
    assert redis_client.zrange(keys.by_session("b"), 0, -1) == [b"s1", b"s2"]
    assert redis_client.get(keys.component_history("n1")).endswith(b"created")
    assert redis_client.get(keys.component_history("s2")).endswith(b"changed")


def test_a_call_of_more_records_than_one_command_takes_checks_and_moves_each_record(
        url: str, redis_client: redis_lib.Redis) -> None:
    """The script reads and writes a call's records with commands of at most 4,000 arguments each
    (cas.py, `batched`): past that, each record must still be compared with its own value read and
    its history appended to its own; a stale one among them is refused alone."""
    from bos_server.store.cas import CasWriter, Write, digest
    from bos_server.store.history import HistorySettings

    members = [f"b{n:05d}" for n in range(4500)]
    stale = {17, 4003, 4499}  # in the first slice of 4,000 keys and in the second

    async def scenario() -> List[int]:
        store = Store.connect(url)
        try:
            writer = CasWriter(store.redis, HistorySettings())
            await store.redis.mset({keys.component(m): b"old " + m.encode() for m in members})
            for n in stale:
                await store.redis.set(keys.component(members[n]), b"changed since it was read")
            return await writer.apply([Write(keys.component(m), m, digest(b"old " + m.encode()), b"new " + m.encode(),
                                             add_to=(keys.by_session("s"),), history=m.encode())
                                       for m in members], chunk=len(members))
        finally:
            await store.close()

    assert asyncio.run(scenario()) == sorted(stale)
    applied = [m for n, m in enumerate(members) if n not in stale]
    values = redis_client.mget([keys.component(m) for m in members])
    assert [v for n, v in enumerate(values) if n not in stale] == [b"new " + m.encode() for m in applied]
    assert [m.decode() for m in redis_client.zrange(keys.by_session("s"), 0, -1)] == applied
    histories = redis_client.mget([keys.component_history(m) for m in applied])
    assert all(h is not None and h.endswith(m.encode()) for h, m in zip(histories, applied))


def test_a_json_object_read_is_sent_as_read_and_a_write_applies_only_on_that_exact_value(
        url: str, redis_client: redis_lib.Redis) -> None:
    """A record read (a JSON object) goes to the script as it is, not as its SHA-1 (cas.Digest): the
    script compares the strings. A value of the same length that differs in one byte is refused."""
    from bos_server.store.cas import Write, _args, digest

    read = b'{"id":"j1","error":"a"}'
    redis_client.set(keys.component("j1"), read)
    args = _args([Write(keys.component("j1"), "j1", digest(read), b'{"id":"j1","error":"b"}')], {})
    assert read in args and digest(read) not in [a for a in args if isinstance(a, str)]

    _applies_only_on_the_value_read(url, redis_client, "j1", read)


def _applies_only_on_the_value_read(url: str, redis_client: redis_lib.Redis, cid: str, read: bytes) -> None:
    """A write of `cid` made from `read` is refused once the record changed, applied on `read`."""
    from bos_server.store import cas

    async def write() -> List[int]:
        store = Store.connect(url)
        try:
            new = b'{"id":"%s","error":"b"}' % cid.encode()
            return await cas.CasWriter(store.redis).apply([cas.Write(keys.component(cid), cid, cas.digest(read), new)])
        finally:
            await store.close()

    redis_client.set(keys.component(cid), b'{"id":"%s","error":"c"}' % cid.encode())  # changed since read
    assert asyncio.run(write()) == [0]
    redis_client.set(keys.component(cid), read)
    assert asyncio.run(write()) == []
    assert redis_client.get(keys.component(cid)) == b'{"id":"%s","error":"b"}' % cid.encode()


def test_a_json_object_read_is_not_hashed_and_its_write_still_applies_only_on_that_exact_value(
        url: str, redis_client: redis_lib.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """digest() of a JSON object read computes no SHA-1 (it is sent as read); any other value keeps
    its SHA-1. With hashlib.sha1 unusable, an object's write is still refused after a change and
    applied on the exact value read."""
    import hashlib

    from bos_server.store import cas

    other = b"packed-or-legacy"
    assert cas.digest(other) == hashlib.sha1(other).hexdigest()

    class NoSha1:
        @staticmethod
        def sha1(_raw: bytes) -> Any:
            raise AssertionError("a JSON object read was hashed")

    monkeypatch.setattr(cas, "hashlib", NoSha1)
    read = b'{"id":"j2","error":"a"}'
    assert cas.digest(read) == cas.OBJECT_READ and cas.digest(read).raw == read  # type: ignore[attr-defined]

    _applies_only_on_the_value_read(url, redis_client, "j2", read)


def test_writes_made_from_the_same_objects_share_a_template_and_others_do_not() -> None:
    """_args finds a shaped write's template by the identities of the objects it is made from (the
    records of a shape share them): a write that differs in any of them, even in an equal-looking
    field, gets the template of its own values."""
    from bos_server.store.cas import Shaped, Write, _args
    from bos_server.store.history import HistorySettings
    value, read_a, read_b = Shaped(b',"error":"new"}'), Shaped(b',"error":"a"}'), Shaped(b',"error":"b"}')
    adds, scored, history = ("bos:idx:comp:all",), {"bos:idx:comp:actual": 1.0}, b"entry"
    writes = [Write(keys.component(i), i, read, value, (), adds, scored, history)
              for i, read in (("x1", read_a), ("x2", read_a), ("x3", read_b))]
    writes.append(Write(keys.component("x4"), "x4", read_a, value, (), adds, scored, b"other"))
    args = _args(writes, {}, history=HistorySettings())
    refs = [args[args.index(w.member) + 1] for w in writes]
    assert refs[0] == refs[1], "the writes of one shape share a template"
    assert len({refs[0], refs[2], refs[3]}) == 3, "a write read as another shape, or with another entry, shares it"
