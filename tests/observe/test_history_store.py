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
from bos_server.store import history
from bos_server.store.history import RS, US, HistorySettings, _b36, decode, entry, read, sweep


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
    blanks a payload's unchanged session and error once per distinct payload (cas.py `delta`)."""
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
            last = {i: {"id": i, "enabled": True, "error": error, "session": session,
                        "status": {"phase": str(max_entries - 1)}} for i, (session, error) in zip(ids, LAST)}
            writes = [Write(f"rec:{i}", i, digest(await redis.get(f"rec:{i}")), b"new", history=entry(last[i], new))
                      for i in ids]  # each from its own record: the payloads of equal records are one (entry_of)
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


def _phase_record(phase: str, component_id: str = "h4") -> dict:
    return {"id": component_id, "enabled": True, "error": "boom", "session": "s", "status": {"phase": phase}}


async def _clock(url: str) -> list:
    """Entry ids come from one clock per Redis (cas.py), not from each history's last entry: the
    clock is set an hour ahead, as after Redis' own clock stepped back."""
    redis = Redis.from_url(url)
    writer = CasWriter(redis, HistorySettings(max_entries=30, max_age=7200))
    try:
        await redis.delete("rec:h4", keys.component_history("h4"))
        await writer.apply([Write("rec:h4", "h4", "", b"v0", history=entry(None, _phase_record("0")))])
        ahead = int(time.time() * 1000) + 3_600_000
        await redis.set(keys.HISTORY_CLOCK, f"{ahead} 5")
        await writer.apply([Write("rec:h4", "h4", digest(b"v0"), b"v1", history=entry(_phase_record("0"), _phase_record("1")))])
        await writer.apply([Write("rec:h4", "h4", digest(b"v1"), b"v2", history=entry(_phase_record("1"), _phase_record("2"))),
                            Write("rec:h4", "h4", digest(b"v2"), b"v3", history=entry(_phase_record("2"), _phase_record("3")))])
        return [e["id"] for e in await read(redis, writer.history, "h4", None, 100)]  # type: ignore[arg-type]
    finally:
        await redis.aclose()


def test_entry_ids_increase_per_component_also_when_the_clock_steps_back(redis_server) -> None:
    ids = asyncio.run(_clock(redis_server.url))
    ahead = [tuple(map(int, i.split("-"))) for i in ids[1:]]
    assert len(ids) == 4 and ahead[0][1] == 6 and ahead == sorted(set(ahead)), ids
    assert tuple(map(int, ids[0].split("-"))) < ahead[0]


async def _begun_again(url: str) -> list:
    """A history gone (swept as quiet) while its record stays: the next entry changes neither session
    nor error, yet holds both, as the first entry of a history."""
    redis = Redis.from_url(url)
    writer = CasWriter(redis, HistorySettings(max_entries=30, max_age=3600))
    try:
        await redis.delete("rec:h5", keys.component_history("h5"))
        await writer.apply([Write("rec:h5", "h5", "", b"v0", history=entry(None, _phase_record("0", "h5")))])
        await redis.delete(keys.component_history("h5"))
        await writer.apply([Write("rec:h5", "h5", digest(b"v0"), b"v1",
                                  history=entry(_phase_record("0", "h5"), _phase_record("1", "h5")))])
        return await read(redis, writer.history, "h5", None, 100)  # type: ignore[arg-type]
    finally:
        await redis.aclose()


def test_a_history_begun_again_holds_the_session_and_error_it_did_not_change(redis_server) -> None:
    entries = asyncio.run(_begun_again(redis_server.url))
    assert [(e["phase"], e["session"], e["error"]) for e in entries] == [("1", "s", "boom")]


async def _older_version(url: str, max_entries: int) -> tuple:
    """A text of the version before (entries separated by RS, session and error blank where equal to
    the entry AFTER) read as it is, appended to, and trimmed."""
    redis = Redis.from_url(url)
    writer = CasWriter(redis, HistorySettings(max_entries=max_entries, max_age=3600))
    now = _b36(int(time.time() * 1000) - 60_000)
    records = [{**_phase_record(str(n), "h6"), "session": "s" if n < 2 else "t"} for n in range(8)]
    try:
        await redis.delete("rec:h6", keys.component_history("h6"))
        first = entry(None, records[0]).split(US.encode())  # type: ignore[union-attr]
        first[history.SESSION - 1] = first[history.ERROR - 1] = b""  # as the entry after: blank
        await redis.set(keys.component_history("h6"), f"{now}-0{US}".encode() + US.encode().join(first) + RS.encode()
                        + f"{now}-1{US}".encode() + entry(records[0], records[1]))  # type: ignore[operator]
        before = await read(redis, writer.history, "h6", None, 100)  # type: ignore[arg-type]
        for n in range(2, 8):
            await redis.set("rec:h6", f"v{n - 1}")
            await writer.apply([Write("rec:h6", "h6", digest(f"v{n - 1}".encode()), f"v{n}".encode(),
                                      history=entry(records[n - 1], records[n]))])
        return before, await read(redis, writer.history, "h6", None, 100)  # type: ignore[arg-type]
    finally:
        await redis.aclose()


@pytest.mark.parametrize("max_entries", [30, 3])
def test_a_history_of_the_version_before_reads_and_is_appended_to(redis_server, max_entries: int) -> None:
    before, after = asyncio.run(_older_version(redis_server.url, max_entries))
    assert [(e["phase"], e["session"], e["error"]) for e in before] == [("0", "s", "boom"), ("1", "s", "boom")]
    expected = [(str(n), "s" if n < 2 else "t", "boom") for n in range(8)][-max_entries:]
    assert [(e["phase"], e["session"], e["error"]) for e in after] == expected


async def _rolling(url: str) -> tuple:
    """A history written by this version, then appended to by the version before (its entry after RS,
    holding its session and error, as during a rolling update: docs/deploy.md), then by this one."""
    redis = Redis.from_url(url)
    writer = CasWriter(redis, HistorySettings(max_entries=30, max_age=3600))
    records = [{**_phase_record(str(n), "h7"), "session": "s" if n < 2 else "t"} for n in range(4)]
    try:
        await redis.delete("rec:h7", keys.component_history("h7"))
        await writer.apply([Write("rec:h7", "h7", "", b"v0", history=entry(None, records[0]))])
        await writer.apply([Write("rec:h7", "h7", digest(b"v0"), b"v1", history=entry(records[0], records[1]))])
        older = _b36(int(time.time() * 1000) + 1) + "-0" + US
        await redis.append(keys.component_history("h7"), (RS + older).encode() + entry(records[1], records[2]))  # type: ignore[operator]
        await redis.set("rec:h7", b"v2")
        await writer.apply([Write("rec:h7", "h7", digest(b"v2"), b"v3", history=entry(records[2], records[3]))])
        return await read(redis, writer.history, "h7", None, 100)  # type: ignore[arg-type]
    finally:
        await redis.aclose()


def test_an_entry_added_by_the_version_before_during_a_rolling_update_reads_as_one(redis_server) -> None:
    entries = asyncio.run(_rolling(redis_server.url))
    assert [(e["phase"], e["session"], e["error"]) for e in entries] == [
        ("0", "s", "boom"), ("1", "s", "boom"), ("2", "t", "boom"), ("3", "t", "boom")]
