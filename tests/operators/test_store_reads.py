"""Operators given the API's Redis read component listings there (clients/bos_reads.py,
operators.md §2.3): the records and their selection must be exactly what the API answers."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

from redis.asyncio import Redis

from bos_server.clients.bos import BosClient
from bos_server.clients.bos_reads import StoreReads
from bos_server.clients.rest import JsonClient
from bos_server.store import keys
from tests.support.tokens import record_token

IDS = [f"x3000c0s{i}b0n0" for i in range(7)]
ARTIFACTS = {"kernel": "s3://boot-images/abc/kernel", "kernel_parameters": "console=ttyS0 " * 20,
             "initrd": "s3://boot-images/abc/initrd"}  # long enough to be stored as a shared blob
FILTERS: List[Dict[str, Any]] = [
    {}, {"enabled": True}, {"enabled": False}, {"status": "power_on_pending"},
    {"status": "on_hold,stable", "enabled": True}, {"session": "s1"}, {"phase": "powering_on"},
    {"staged_session": "s2"},
    # session-completion's questions (any_matches: index intersections), with and without a match
    {"session": "s1", "enabled": True}, {"session": "s9", "enabled": True}, {"staged_session": "s9"},
    {"session": "s1", "enabled": True, "phase": "powering_on", "status": "on_hold"},
]


def seed(api: Any) -> None:
    records = []
    for n, cid in enumerate(IDS):
        record: Dict[str, Any] = {"id": cid, "enabled": n % 2 == 0, "session": "s1" if n < 4 else "",
                                  "desired_state": {"boot_artifacts": ARTIFACTS, "configuration": "c"},
                                  "actual_state": {"boot_artifacts": ARTIFACTS} if n % 3 == 0 else {},
                                  "status": {"phase": "powering_on" if n < 5 else ""}}
        if n == 6:
            record["staged_state"] = {"session": "s2", "configuration": "d"}
        if n % 2:  # stamped by the server (power-off-forceful's wait reads the stamp alone)
            record["last_action"] = {"action": "powering_off_gracefully"}
        records.append(record)
    assert api.put("/v2/components", json=records).status_code == 200


def test_store_reads_equal_the_api_listing(api, api_server, redis_server):
    seed(api)
    # a node's report: its actual artifacts resolved from the token, with the token's timestamp (D12)
    record_token(redis_server.url, "tok-store-reads", ARTIFACTS)
    assert api.patch(f"/v2/components/{IDS[3]}", json={"actual_state": {"bss_token": "tok-store-reads"}}).status_code == 200

    async def main() -> None:
        redis = Redis.from_url(redis_server.url)
        http = JsonClient("bos", api_server.url + "/v2")
        by_api, by_store = BosClient(http), BosClient(http, StoreReads(redis))
        try:
            for filters in FILTERS:
                expected = await by_api.list_components(0, **filters)
                assert await by_store.list_components(0, **filters) == expected, filters
                assert await by_store.list_components(2, **filters) == expected, filters  # repaged
                picked = IDS[1:6]
                assert (await by_store.components_by_ids(picked, **filters)
                        == await by_api.components_by_ids(picked, **filters)), filters
                assert (await by_store.component_page(2, IDS[2], **filters)
                        == await by_api.component_page(2, IDS[2], **filters)), filters
                assert await by_store.any_matches(**filters) == bool(expected), filters
            for statuses in (["power_on_pending"], ["power_on_pending", "stable"], ["configuring"]):
                listed = await by_api.list_components(0, enabled=True, status=",".join(statuses))
                assert await by_store.enabled_ids_in(statuses) == [c["id"] for c in listed], statuses
            # power-off-forceful's stamps, each decoded alone: those of the records read in full
            listed_all = await by_api.list_components(0)
            assert await by_store.action_stamps([*IDS, "x9c0s0b0n0"]) == {
                c["id"]: (c.get("last_action") or {}).get("last_updated") for c in listed_all}
            assert any((c.get("last_action") or {}).get("last_updated") for c in listed_all)
            every = [c["id"] for c in await by_api.list_components(0)]
            assert await by_store.component_ids(2) == every == await by_api.component_ids(2)
            assert any(c.get("actual_state", {}).get("boot_artifacts") for c in expected)
            assert by_store.reads is not None  # the shown record lost the stored token timestamp
            stored = await by_store.reads.store.get(IDS[3])
            assert stored is not None and "timestamp" in stored["actual_state"]["boot_artifacts"]
            assert "timestamp" not in (await by_store.components_by_ids([IDS[3]]))[0]["actual_state"]["boot_artifacts"]
            assert by_store.reads is not None

            async def no_records(ids: Any) -> Any:
                raise AssertionError("a record was read")
            by_store.reads.store.get_raw_many = no_records  # type: ignore[method-assign]
            # session-completion's questions come from the indexes alone (no record read, issue 13)
            assert await by_store.any_matches(session="s1", enabled=True)
            assert not await by_store.any_matches(session="s9", enabled=True)
            assert await by_store.any_matches(staged_session="s2")
        finally:
            await http.close()
            await redis.aclose()
    asyncio.run(main())


def test_session_heads_are_the_listing_without_its_components(api, api_server, redis_server):
    """The wave gate's and session completion's per-pass session reads (issue 13): the API's
    listing, each session less its `components` string (never read there)."""
    template = {"boot_sets": {"b": {"path": "s3://boot-images/manifest.json", "type": "s3", "node_list": ["x1"]}}}
    assert api.put("/v2/sessiontemplates/t", json=template).status_code == 200
    for name, extra in (("b-capped", {"max_in_flight": 5, "max_failed": "10%"}), ("a-plain", {}), ("c-left", {})):
        body = {"name": name, "template_name": "t", "operation": "shutdown", **extra}
        assert api.post("/v2/sessions", json=body).status_code == 201
    for name in ("b-capped", "a-plain"):  # running, with its components named
        patch = {"status": {"status": "running"}, "components": ",".join(IDS)}
        assert api.patch(f"/v2/sessions/{name}", json=patch).status_code == 200

    async def main() -> None:
        redis = Redis.from_url(redis_server.url)
        http = JsonClient("bos", api_server.url + "/v2")
        by_api, by_store = BosClient(http), BosClient(http, StoreReads(redis))
        try:
            for status in ("running", "pending", None):
                listed = await by_api.list_sessions(status)
                heads = await by_store.session_heads(status)
                assert [h["name"] for h in heads] == [s["name"] for s in listed], status
                for head, session in zip(heads, listed):
                    assert "components" not in head
                    assert {k: v for k, v in head.items() if v is not None} == {
                        k: v for k, v in session.items() if k in head and v is not None}, status
            assert await by_api.session_heads("running") == await by_api.list_sessions("running")  # no store
            capped = [h for h in await by_store.session_heads("running") if h["max_in_flight"] is not None]
            assert [(h["name"], h["max_in_flight"], h["max_failed"]) for h in capped] == [("b-capped", 5, "10%")]
            # session completion's tenants by name (D25): the names of the listing, no record read
            listed = [(s.get("tenant") or None, s["name"]) for s in await by_api.list_sessions()]
            assert await by_api.session_names() == listed
            assert by_store.reads is not None

            async def no_sessions(members: Any) -> Any:
                raise AssertionError("a session was read")
            by_store.reads.sessions.load_raw = no_sessions  # type: ignore[method-assign]
            assert await by_store.session_names() == listed
            for status in ("running", "pending"):  # session completion's running sessions, no record read
                by_status = [(s.get("tenant") or None, s["name"]) for s in await by_api.list_sessions(status)]
                assert await by_store.session_names(status) == by_status == await by_api.session_names(status)
            assert await by_store.session_names("running") == [(None, "a-plain"), (None, "b-capped")]
        finally:
            await http.close()
            await redis.aclose()
    asyncio.run(main())


STATUS_RECORDS: List[Dict[str, Any]] = [
    {"status": {"phase": ""}, "last_action": {"action": "powering_on"}},
    {"status": {"phase": "powering_on", "status_override": "failed"}, "error": "boom"},
    {"desired_state": {"boot_artifacts": {}, "configuration": "c"}, "status": {"phase": "powering_off"}},
    {"status": {"phase": "configuring"}, "error": "old", "last_action": {"action": "powering_on"}},
    {"status": {"phase": "powering_on"}, "staged_state": {"session": "s2", "configuration": "d"},
     "event_stats": {"power_on_attempts": 2}, "last_action": {"action": "powering_on", "failed": True}},
    {"desired_state": {"boot_artifacts": ARTIFACTS, "configuration": ""}, "actual_state": {"boot_artifacts": ARTIFACTS},
     "status": {"phase": "configuring", "status_override": "on_hold"}},
]


def test_status_records_decide_as_the_full_records(api, api_server, redis_server):
    """The status operator's re-reads (components_with_prints) decode only the fields its rules read
    (bos_reads.status_fields, issue 13): every decision, patch and waiting deadline is the one of the
    full record the listing shows, over every power state, CFS answer and time."""
    from bos_shared.options import DEFAULTS
    from bos_server.operators.status import waiting_deadline, waits_for_a_write
    from bos_server.operators.status_rules import build_patch, decide

    records = [{"id": IDS[n], "enabled": True, "desired_state": {"boot_artifacts": ARTIFACTS, "configuration": "c"},
                "actual_state": {}, **fields} for n, fields in enumerate(STATUS_RECORDS)]
    assert api.put("/v2/components", json=records).status_code == 200
    record_token(redis_server.url, "tok-status-reads", ARTIFACTS)  # IDS[3] reports: its actual boot resolved
    assert api.patch(f"/v2/components/{IDS[3]}", json={"actual_state": {"bss_token": "tok-status-reads"}}).status_code == 200
    options = dict(DEFAULTS)
    cfs_answers = [None, *({"desired_config": config, "configuration_status": status}
                           for config in ("c", "") for status in ("configured", "pending", "failed", "odd"))]

    async def main() -> None:
        redis = Redis.from_url(redis_server.url)
        http = JsonClient("bos", api_server.url + "/v2")
        by_store = BosClient(http, StoreReads(redis))
        try:
            full = await by_store.components_by_ids(IDS, enabled=True)
            read = await by_store.components_with_prints(IDS, enabled=True)
            assert read is not None
            slim, prints = read
            assert [c["id"] for c in slim] == [c["id"] for c in full] == IDS[:len(STATUS_RECORDS)]
            assert set(prints) == {c["id"] for c in slim}
            assert all("staged_state" not in c and "event_stats" not in c for c in slim)  # left unread
            for whole, part in zip(full, slim):
                stamp = waiting_deadline(whole, options)
                assert waiting_deadline(part, options) == stamp
                for now in (0.0, (stamp or 0.0) - 1, (stamp or 0.0) + 1, 4e9):
                    for power in (None, "undefined", "on", "off"):
                        for cfs in cfs_answers:
                            decision = decide(whole, power, cfs, now, options)
                            assert decide(part, power, cfs, now, options) == decision, (whole["id"], power, cfs)
                            assert build_patch(part, decision) == build_patch(whole, decision), (whole["id"], decision)
                            assert waits_for_a_write(part, decision) == waits_for_a_write(whole, decision)
        finally:
            await http.close()
            await redis.aclose()
    asyncio.run(main())


ACTING_RECORDS: List[Dict[str, Any]] = [
    {"status": {"phase": "powering_on"}, "session": "s1"},
    {"status": {"phase": "powering_on"}, "session": "s1", "error": "old", "retry_policy": 1,
     "event_stats": {"power_on_attempts": 1}, "last_action": {"action": "powering_on", "failed": True}},
    {"status": {"phase": "powering_off"}, "session": "s1", "event_stats": {"power_off_graceful_attempts": 2},
     "staged_state": {"session": "s2", "configuration": "d"}},
    {"status": {"phase": "powering_off"}, "last_action": {"action": "powering_off_gracefully"}, "retry_policy": 0},
    {"status": {"phase": "powering_off"}, "last_action": {"action": "powering_off_forcefully"}, "error": "boom",
     "event_stats": {"power_off_forceful_attempts": 3}},
    {"status": {"phase": "powering_on", "status_override": "on_hold"}, "session": "s1"},
]


def test_power_operator_records_act_as_the_full_records(api, api_server, redis_server):
    """The power operators' re-reads under their claim (acting_records) decode only the fields they
    read (bos_reads.acting_fields, issue 13): the same components match each one's selection, and
    the retry gate, decision version, due time, boot groups, CFS set-up and action updates are
    those of the full records the listing shows."""
    from bos_shared.options import DEFAULTS
    from bos_server.operators.framework import over_limit, retry_limit_patch
    from bos_server.operators.power_off_forceful import PowerOffForcefulOperator
    from bos_server.operators.power_off_graceful import PowerOffGracefulOperator
    from bos_server.operators.power_on import PowerOnOperator, triple_of
    from bos_server.operators.status_rules import seconds_until

    records = [{"id": IDS[n], "enabled": True, "desired_state": {"boot_artifacts": ARTIFACTS, "configuration": "c"},
                "actual_state": {"boot_artifacts": ARTIFACTS} if n % 2 else {}, "session": fields.get("session", "")}
               for n, fields in enumerate(ACTING_RECORDS)]
    answer = api.put("/v2/components", json=records)
    assert answer.status_code == 200, answer.text
    # then as the operators write them (no `enabled`, no desired state: nothing put on hold or reset)
    fields = [{"id": IDS[n], **{k: v for k, v in f.items() if k != "session"},
               "status": {"status_override": "", **f["status"]}} for n, f in enumerate(ACTING_RECORDS)]
    answer = api.patch("/v2/components", json=fields)
    assert answer.status_code == 200, answer.text
    options = dict(DEFAULTS)

    async def main() -> None:
        redis = Redis.from_url(redis_server.url)
        http = JsonClient("bos", api_server.url + "/v2")
        by_store = BosClient(http, StoreReads(redis))
        try:
            for op in (PowerOnOperator(), PowerOffGracefulOperator(), PowerOffForcefulOperator()):
                assert op.acting_fields_only
                full = await by_store.components_by_ids(IDS, **op.filters)
                slim = await by_store.acting_records(list(reversed(IDS)), **op.filters)
                assert full and [c["id"] for c in slim] == [c["id"] for c in full], op.name
                assert all("actual_state" not in c and "staged_state" not in c for c in slim)  # left unread
                for whole, part in zip(full, slim):
                    assert op.version(part) == op.version(whole)
                    assert over_limit(part, op.retry_field or "", options) == over_limit(whole, op.retry_field or "", options)
                    assert retry_limit_patch(part) == retry_limit_patch(whole)
                    assert seconds_until(part, 300, 0.0) == seconds_until(whole, 300, 0.0)
                    assert triple_of(part) == triple_of(whole)
                    assert ((part.get("desired_state") or {}).get("configuration"), part.get("session")) == (
                        (whole.get("desired_state") or {}).get("configuration"), whole.get("session"))
                    for error in ("", "failed"):
                        assert op.action_updates([part], {part["id"]: error}) == op.action_updates([whole], {whole["id"]: error})
        finally:
            await http.close()
            await redis.aclose()
    asyncio.run(main())


def test_the_write_feed_names_every_record_written_since_the_last_look(api, api_server, redis_server):
    """The status operator learns which records it left waiting were written since its last pass
    from the store's write feed (store/write_feed.py), not by reading and hashing each one (issue
    13): every record the API wrote since is named, a refused write is not, and a look whose last
    entry is gone (trimmed, the stream deleted) is told it cannot know (None)."""
    seed(api)

    async def main() -> None:
        redis = Redis.from_url(redis_server.url)
        http = JsonClient("bos", api_server.url + "/v2")
        reads = BosClient(http, StoreReads(redis))
        try:
            position, written = await reads.written_since(None)
            assert position is not None and written is None  # the first look: nothing known yet
            assert api.patch(f"/v2/components/{IDS[1]}", json={"error": "one"}).status_code == 200
            assert api.patch("/v2/components", json=[{"id": i, "error": "bulk"} for i in IDS[2:5:2]]).status_code == 200
            assert api.patch("/v2/components/x9c9s9b9n9", json={"error": "x"}).status_code == 404
            position, written = await reads.written_since(position)
            assert written == {IDS[1], IDS[2], IDS[4]}
            assert await reads.written_since(position) == (position, set())  # nothing since
            assert api.patch(f"/v2/components/{IDS[0]}", json={"error": "two"}).status_code == 200
            await redis.xtrim(keys.COMPONENT_WRITES, maxlen=1, approximate=False)  # the entry last read is gone
            later, written = await reads.written_since(position)
            assert later != position and written is None
            assert await reads.written_since(later) == (later, set())
            await redis.delete(keys.COMPONENT_WRITES)
            assert await reads.written_since(later) == (None, None)
        finally:
            await http.close()
            await redis.aclose()
    asyncio.run(main())


def test_the_power_off_score_index_moves_with_each_record(api, api_server, redis_server):
    """Issue 13: power-off-forceful's candidates come from a score index (store/component_query:
    enabled, in a power-off-called status, scored by the last action's stamp) that every write moves
    with its record: its members are the API's listing of those candidates, due ones are a score
    range, and a candidate the index lacks (written by an older version) is found by a ZDIFF."""
    from bos_server.operators.power_off_forceful import CALLED
    from bos_shared.times import epoch

    called = {"status": {"phase": "powering_off"}, "last_action": {"action": "powering_off_gracefully"}}
    records = [{"id": IDS[0], "enabled": True, **called},
               {"id": IDS[1], "enabled": True, "status": {"phase": "powering_off"},
                "last_action": {"action": "powering_off_forcefully"}},
               {"id": IDS[2], "enabled": True, "status": {"phase": "powering_on"}},
               {"id": IDS[3], "enabled": False, **called}]
    assert api.put("/v2/components", json=records).status_code == 200
    # as the operators write them: enabled components are put on hold by a PUT (D-rule), not by a PATCH
    assert api.patch("/v2/components", json=[{"id": r["id"], "status": {**r["status"], "status_override": ""}}
                                             for r in records]).status_code == 200

    async def main() -> None:
        redis = Redis.from_url(redis_server.url)
        http = JsonClient("bos", api_server.url + "/v2")
        by_api, by_store = BosClient(http), BosClient(http, StoreReads(redis))
        index = keys.COMPONENT_POWER_OFF_STAMP
        try:
            listed = await by_api.list_components(0, enabled=True, status=CALLED)
            stamps = {c["id"]: epoch(c["last_action"]["last_updated"]) for c in listed}
            assert sorted(stamps) == IDS[:2]
            assert {m.decode(): s for m, s in await redis.zrange(index, 0, -1, withscores=True)} == stamps
            first = min(stamps.values())
            assert await by_store.power_off_due(first) == ([], first)
            assert await by_store.power_off_due(max(stamps.values()) + 1) == (IDS[:2], None)
            patched = [{"id": IDS[1], "enabled": False}, {"id": IDS[2], "status": {"phase": "powering_off"}},
                       {"id": IDS[3], "enabled": True}]  # on hold (the D-rule of enabling) until the next
            assert api.patch("/v2/components", json=patched).status_code == 200
            assert api.patch(f"/v2/components/{IDS[3]}", json={"status": {"status_override": ""}}).status_code == 200
            listed = await by_api.list_components(0, enabled=True, status=CALLED)
            members = sorted(m.decode() for m in await redis.zrange(index, 0, -1))
            assert members == [c["id"] for c in listed] == [IDS[0], IDS[3]]
            assert await by_store.missing_from_power_off_index() == []
            await redis.zrem(index, IDS[3])  # as if written by a version without the index
            assert await by_store.missing_from_power_off_index() == [IDS[3]]  # not IDS[1]: disabled
        finally:
            await http.close()
            await redis.aclose()

    asyncio.run(main())
