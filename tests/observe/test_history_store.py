"""The history entry is part of the compare-and-set write (store/cas.py): appended only when
the record write is applied, bounded by count, and its ids increase per component."""

from __future__ import annotations

import asyncio
import time

import pytest

import redis as redis_lib
from redis.asyncio import Redis

from bos_server.store import keys
from bos_server.store.cas import CasWriter, Write, digest
from bos_server.store.history import HistorySettings, _b36, decode, entry, read, sweep


def _record(error: str) -> dict:
    return {"id": "h1", "enabled": True, "error": error, "session": "s"}


async def _scenario(url: str) -> list:
    redis = Redis.from_url(url)
    writer = CasWriter(redis, HistorySettings(max_entries=3, max_age=3600))
    try:
        await redis.delete("rec:h1", keys.component_history("h1"))
        assert await writer.apply([Write("rec:h1", "h1", "", b"v1", history=entry(None, _record("")))]) == []
        # a stale writer (expects the record to be missing): refused, and no history entry either
        assert await writer.apply([Write("rec:h1", "h1", "", b"v2", history=entry(_record(""), _record("x")))]) == [0]
        assert len(decode(await redis.get(keys.component_history("h1")))) == 1
        for n in range(5):
            current = await redis.get("rec:h1")
            new = f"v{n + 3}".encode()
            await writer.apply([Write("rec:h1", "h1", digest(current), new, history=entry(_record(""), _record(str(n))))])
        return await read(redis, writer.history, "h1", None, 100)  # type: ignore[arg-type]
    finally:
        await redis.aclose()


def test_history_is_written_with_the_record_only(redis_server, redis_client: redis_lib.Redis) -> None:
    entries = asyncio.run(_scenario(redis_server.url))
    assert [e["error"] for e in entries] == ["2", "3", "4"]  # bounded to 3, newest kept
    ids = [tuple(map(int, e["id"].split("-"))) for e in entries]
    assert ids == sorted(ids) and len(set(ids)) == 3


SESSION = "3f6c0d2e-9b1f-4c55-8a0e-2f0e4b6c7d8a"
BOOT = [  # one boot as the operators write it: (session, status_override, phase, action, enabled, error)
    ("", "", "", "newly_discovered", False, ""), (SESSION, "on_hold", "", "session_setup", True, ""),
    (SESSION, "", "powering_on", "session_setup", True, ""), (SESSION, "", "powering_on", "powering_on", True, ""),
    (SESSION, "", "powering_on", "powering_on", True, "boot timed out"), (SESSION, "", "", "powering_on", False, ""),
    ("next", "", "", "powering_on", False, ""), ("next", "", "", "powering_on", True, "")]


def _boot_record(step: int) -> dict:
    session, override, phase, action, enabled, error = BOOT[step]
    return {"id": "h2", "session": session, "enabled": enabled, "error": error,
            "status": {"status_override": override, "phase": phase}, "last_action": {"action": action, "failed": False}}


async def _boot(url: str, max_entries: int) -> tuple:
    redis = Redis.from_url(url)
    writer = CasWriter(redis, HistorySettings(max_entries=max_entries, max_age=3600))
    try:
        await redis.delete("rec:h2", keys.component_history("h2"))
        for step in range(len(BOOT)):
            current = await redis.get("rec:h2")
            old = _boot_record(step - 1) if step else None
            conflicts = await writer.apply([Write("rec:h2", "h2", digest(current), f"v{step}".encode(),
                                                  history=entry(old, _boot_record(step)))])
            assert conflicts == []
        stored = await redis.get(keys.component_history("h2"))
        return await read(redis, writer.history, "h2", None, 100), stored  # type: ignore[arg-type]
    finally:
        await redis.aclose()


@pytest.mark.parametrize("max_entries", [30, 3])
def test_every_entry_keeps_its_session_and_error(redis_server, max_entries: int) -> None:
    """Session and error are stored only where they change (history.py); every entry still shows its own,
    also after the oldest entries were dropped."""
    entries, _stored = asyncio.run(_boot(redis_server.url, max_entries))
    expected = BOOT[-max_entries:] if max_entries < len(BOOT) else BOOT
    assert [(e["session"], e["error"], e["enabled"]) for e in entries] == [(s, err, en) for s, _o, _p, _a, en, err in expected]
    assert [e["status"] for e in entries][-3:] == ["stable", "stable", "stable"]
    if max_entries == 30:
        assert entries[0]["reason"] == "created"
        assert entries[1]["reason"] == ("status stable -> on_hold; last_action newly_discovered -> session_setup; "
                                        f"session - -> {SESSION}; enabled")
        assert entries[4]["reason"] == "error set"


def test_a_boot_history_is_small(redis_server) -> None:
    """Eight entries with a UUID session: each session name stored once per run, codes instead of words
    (docs/metrics.md: ≈31 bytes per entry)."""
    _entries, stored = asyncio.run(_boot(redis_server.url, 30))
    # once for its run of entries, once as the old value in the reason of the change to "next"
    assert stored.count(SESSION.encode()) == 2
    assert len(stored) <= 8 * 28 + 2 * len(SESSION) + len("boot timed out"), len(stored)


async def _upgrade(url: str) -> tuple:
    redis = Redis.from_url(url)
    writer = CasWriter(redis, HistorySettings())
    try:
        await redis.delete("rec:h3", keys.component_history("h3"))
        await redis.rpush(keys.component_history("h3"), b'1700000000000-0 ["s","","stable","",false,"",true,"created"]')
        before = await read(redis, writer.history, "h3", None, 100)  # an older version's list: no 500
        assert await writer.apply([Write("rec:h3", "h3", "", b"v1", history=entry(None, _record("")))]) == []
        return before, await read(redis, writer.history, "h3", None, 100)
    finally:
        await redis.aclose()


def test_a_list_of_an_older_version_is_replaced_not_an_error(redis_server) -> None:
    before, after = asyncio.run(_upgrade(redis_server.url))
    assert before == [] and [e["reason"] for e in after] == ["created"]


def test_the_entry_memo_never_answers_another_transitions_entry() -> None:
    """entry() memoises payloads by a short key (history._small: each boot as set/changed, not its
    ~2 KiB of parameters; issue 13): every transition still gets the payload packed for it alone."""
    import itertools

    from bos_server.store import history

    boots = [None, {"kernel": "k1", "kernel_parameters": "p1", "initrd": "i1"},
             {"kernel": "k2", "kernel_parameters": "p1", "initrd": "i1"}, {"kernel": "", "kernel_parameters": ""}]
    records = [{"id": "h1", "session": "s", "status": {"phase": phase}, "desired_state": {"boot_artifacts": desired},
                "actual_state": {"boot_artifacts": actual}, "last_action": {"action": "powering_on"}}
               for phase, desired, actual in itertools.product(["", "powering_on"], boots, boots)]
    history._MEMO.clear()
    for old, new in itertools.product([None] + records, records):
        before, after = history.tracked(old), history.tracked(new)
        alone = history._pack_entry(before, after, old, new, "") if before != after else None
        assert entry(old, new) == alone, (old, new)


LAST = [("s", ""), ("s", "boom"), ("t", ""), ("t", "boom"), ("s", ""), ("u", "late")]  # (session, error) before


async def _alike_or_alone(url: str, max_entries: int) -> tuple:
    """The same histories appended to once per call (`one`) and all in one call (`all`): the script
    rebuilds a last entry once per distinct (entry text, payload) pair (cas.py `blank`)."""
    redis = Redis.from_url(url)
    writer = CasWriter(redis, HistorySettings(max_entries=max_entries, max_age=3600))
    new = {"id": "x", "enabled": True, "error": "boom", "session": "s"}
    try:
        stored = {}
        for form in ("one", "all"):
            ids = [f"{form}{n}" for n in range(len(LAST))]
            await redis.delete(*[f"rec:{i}" for i in ids], *[keys.component_history(i) for i in ids])
            for i, (session, error) in zip(ids, LAST):
                for step in range(max_entries):  # a full history: the next append also drops the oldest
                    old = {"id": i, "enabled": True, "error": error, "session": session, "status": {"phase": str(step)}}
                    raw = await redis.get(f"rec:{i}")
                    assert await writer.apply([Write(f"rec:{i}", i, digest(raw), f"{step}".encode(),
                                                     history=entry(_record("") if step else None, old))]) == []
            payload = entry({"id": "x", "enabled": True, "error": "", "session": "s"}, new)  # the same for each
            writes = [Write(f"rec:{i}", i, digest(await redis.get(f"rec:{i}")), b"new", history=payload) for i in ids]
            for batch in ([[w] for w in writes] if form == "one" else [writes]):
                assert await writer.apply(batch) == []
            stored[form] = [[(e["session"], e["error"], e["phase"], e["reason"]) for e in
                             await read(redis, writer.history, i, None, 100)] for i in ids]  # type: ignore[arg-type]
        return stored["one"], stored["all"]
    finally:
        await redis.aclose()


@pytest.mark.parametrize("max_entries", [30, 3])
def test_histories_appended_in_one_call_are_those_appended_one_by_one(redis_server, max_entries: int) -> None:
    one, together = asyncio.run(_alike_or_alone(redis_server.url, max_entries))
    assert together == one
    assert [entries[-2][:2] for entries in together] == LAST  # each keeps its own last session and error
    assert all(entries[-1][:2] == ("s", "boom") for entries in together)


async def _sweep(url: str) -> tuple:
    redis = Redis.from_url(url)
    settings = HistorySettings(max_entries=30, max_age=3600)
    writer = CasWriter(redis, settings)
    now_ms = int(time.time() * 1000)
    old, fresh = _b36(now_ms - 7_200_000) + "-0\x1f1", _b36(now_ms - 60_000) + "-0\x1f1"
    try:
        quiet, written, bumped, listed = (keys.component_history(i) for i in ("sq", "sw", "sb", "sl"))
        await redis.delete(quiet, written, bumped, listed, "rec:sw")
        await redis.set(quiet, old)  # a component quiet for longer than the age bound (or deleted)
        await redis.set(bumped, old + "\x1e" + fresh)  # old entries, but a recent one
        await redis.rpush(listed, "an older version's list")
        assert await writer.apply([Write("rec:sw", "sw", "", b"v1", history=entry(None, _record("")))]) == []
        no_expiry = await redis.pttl(written) == -1  # the script sets none: the sweep deletes
        deleted = await sweep(redis, settings)
        return deleted, no_expiry, [await redis.exists(k) for k in (quiet, written, bumped, listed)]
    finally:
        await redis.aclose()


def test_the_sweep_deletes_only_histories_quiet_for_the_age_bound(redis_server) -> None:
    deleted, no_expiry, exists = asyncio.run(_sweep(redis_server.url))
    assert no_expiry
    assert (deleted, exists) == (1, [0, 1, 1, 1])
