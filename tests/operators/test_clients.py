"""Service clients over real HTTP on loopback (services.md §2-§5): bodies, chunking, paging."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable, Dict, List

import msgspec
import pytest
from aiohttp import web

from bos_server.clients.bos import BosClient, PatchInvariantError
from bos_server.clients.bss import BssClient
from bos_server.clients.cfs import CfsClient
from bos_server.clients.hsm import HsmClient, roles_of
from bos_server.clients.pcs import PcsClient
from bos_server.clients.rest import JsonClient, ServiceError

from tests.support.clock import loop_time, run_virtual

from .conftest import run

Handler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


async def serve(routes: Dict[str, Handler], use: Callable[[str, List[dict]], Awaitable[Any]]) -> Any:
    """Run an aiohttp app with `routes` ("METHOD /path": handler(request, body)), call `use(base, log)`."""
    log: List[dict] = []
    app = web.Application()

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def inner(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            body = json.loads(raw) if raw else None
            log.append({"method": request.method, "path": request.path, "query": dict(request.query), "body": body,
                        "prefer": request.headers.get("Prefer")})
            return await handler(request, body)
        return inner
    for key, handler in routes.items():
        method, path = key.split(" ", 1)
        app.router.add_route(method, path, wrap(handler))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        return await use(f"http://127.0.0.1:{port}", log)
    finally:
        await runner.cleanup()


def client(base: str, name: str = "svc") -> JsonClient:
    return JsonClient(name, base, retries=3, read_timeout=5)


def test_hsm_query_is_chunked_and_filters():
    async def query(request, body):
        return web.json_response({"Components": [{"ID": i, "Arch": "X86", "NID": 1, "State": "Ready"}
                                                 for i in body["ComponentIDs"] if i != "x9"]})

    async def use(base, log):
        http = client(base)
        hsm = HsmClient(http, chunk=2)
        found = await hsm.query(["x3", "x1", "x2", "x9", "x1"], enabled_only=True)
        assert await hsm.existing([]) == set()
        await http.close()
        return found, log
    found, log = run(serve({"POST /State/Components/Query": query}, use))
    assert sorted(c["ID"] for c in found) == ["x1", "x2", "x3"]
    # only the fields the operators read (None where HSM gives none), NID and State skipped
    assert found[0] == {"ID": found[0]["ID"], "Arch": "X86", "Type": None, "Enabled": None, "Role": None,
                        "SubRole": None}
    assert [entry["body"] for entry in log] == [{"ComponentIDs": ["x1", "x2"], "enabled": ["True"]},
                                                {"ComponentIDs": ["x3", "x9"], "enabled": ["True"]}]


def test_hsm_answers_of_another_shape_are_read_in_full():
    """An answer the fields' decoder does not know (a component that is not an object) is read as
    any JSON: components without an ID are left out, the others keep the fields read."""
    async def query(request, body):
        return web.json_response({"Components": ["junk", {"Arch": "X86"}, {"ID": "x1", "Arch": "ARM", "NID": 3}]})

    async def use(base, log):
        http = client(base)
        try:
            return await HsmClient(http).query(["x1"]), await HsmClient(http).existing(["x1", "x2"])
        finally:
            await http.close()
    found, existing = run(serve({"POST /State/Components/Query": query}, use))
    assert found == [{"ID": "x1", "Type": None, "Enabled": None, "Arch": "ARM", "Role": None, "SubRole": None}]
    assert existing == {"x1"}


def test_hsm_inventory_shapes():
    async def groups(request, body):
        return web.json_response([{"label": "g", "members": {"ids": ["a"]}}, {"label": "empty"}])

    async def locks(request, body):
        return web.json_response({"Components": [{"ID": "a", "Locked": True}], "NotFound": []})

    async def use(base, log):
        http = client(base)
        hsm = HsmClient(http)
        out = await hsm.groups(), await hsm.locked_nodes()
        await http.close()
        return out, log
    (grp, locked), log = run(serve({"GET /groups": groups, "GET /locks/status": locks}, use))
    assert grp == {"g": ["a"], "empty": []} and locked == {"a"}
    assert log[1]["query"] == {"type": "Node", "locked": "true"}
    assert roles_of([{"ID": "a", "Role": "Application", "SubRole": "UAN"}, {"ID": "b", "Role": "Compute"}, {"ID": "c"}]) \
        == {"Application": ["a"], "Application_UAN": ["a"], "Compute": ["b"]}


def test_pcs_power_status_values_and_transition_body():
    async def status(request, body):
        table = {"a": {"powerState": "On", "error": ""}, "b": {"powerState": "", "error": "Component not found."},
                 "c": {"powerState": "", "error": ""}}
        return web.json_response({"status": [dict(table[x], xname=x) for x in body["xname"]]})

    async def transitions(request, body):
        return web.json_response({"transitionID": "t1", "operation": body["operation"]})

    async def use(base, log):
        http = client(base)
        pcs = PcsClient(http, chunk=2)
        values = await pcs.power_status(["a", "b", "c"])
        tid = await pcs.transition("Soft-Off", ["a", "b"])
        with pytest.raises(ValueError):
            await pcs.transition("On", ["a", "b", "c"])
        await http.close()
        return values, tid, log
    values, tid, log = run(serve({"POST /power-status": status, "POST /transitions": transitions}, use))
    assert values == {"a": "on", "b": "Component not found."}  # c has neither: missing (S0)
    assert tid == "t1"
    assert [e["body"] for e in log if e["path"] == "/power-status"] == [{"xname": ["a", "b"]}, {"xname": ["c"]}]
    assert log[-1]["body"] == {"operation": "Soft-Off", "taskDeadlineMinutes": 1,
                               "location": [{"xname": "a"}, {"xname": "b"}]}


def test_pcs_power_status_reads_each_entry_slim_and_other_shapes_in_full():
    """The status operator's PCS question (issue 13): each entry's xname, powerState and error are
    read, the rest (supported transitions, management state, last update) skipped unread; an answer
    of another shape (an entry that is not an object) is read in full, as before."""
    full = {"managementState": "available", "supportedPowerTransitions": ["On", "Soft-Off"] * 4,
            "lastUpdated": "2026-12-02T19:00:00Z"}

    async def status(request, body):
        entries: List[Any] = [dict(full, xname=x, powerState="On" if x != "b" else "", error="" if x != "b" else "gone")
                              for x in body["xname"]]
        if "odd" in body["xname"]:
            entries.append("not an entry")
        return web.json_response({"status": entries})

    decoders: List[Any] = []

    async def use(base, log):
        http = client(base)
        post = http.post

        async def spying(path, body=None, **kw):
            decoders.append(kw.get("decoder"))
            return await post(path, body, **kw)
        http.post = spying  # type: ignore[method-assign]
        pcs = PcsClient(http, chunk=3)
        values = await pcs.power_status(["a", "b", "c", "odd"])
        await http.close()
        return values
    values = run(serve({"POST /power-status": status}, use))
    assert values == {"a": "on", "b": "gone", "c": "on", "odd": "on"}
    assert decoders and all(d is not None for d in decoders)
    answer = decoders[0](json.dumps({"status": [dict(full, xname="a", powerState="On", error="")]}).encode())
    assert [msgspec.structs.asdict(e) for e in answer.status] == [{"xname": "a", "powerState": "On", "error": ""}]


def test_bss_token_header_is_case_insensitive_and_required():
    async def put_ok(request, body):
        return web.Response(status=200, headers={"BSS-Referral-Token": "tok-1"}, content_type="application/json")

    async def use(base, log):
        http = client(base)
        token = await BssClient(http).set_boot_parameters(["a"], "p", "k", "i")
        await http.close()
        return token, log
    token, log = run(serve({"PUT /bootparameters": put_ok}, use))
    assert token == "tok-1"
    assert log[0]["body"] == {"hosts": ["a"], "params": "p", "kernel": "k", "initrd": "i"}

    async def put_bare(request, body):
        return web.Response(status=200)

    async def use_bare(base, log):
        http = client(base)
        try:
            with pytest.raises(ServiceError, match="BSS-Referral-Token"):
                await BssClient(http).set_boot_parameters(["a"], "p", "k", "i")
        finally:
            await http.close()
    run(serve({"PUT /bootparameters": put_bare}, use_bare))


def test_cfs_follows_next_and_batches_ids():
    ids = [f"x{i:03d}" for i in range(250)]

    async def components(request, body):
        q = request.query
        wanted = q["ids"].split(",") if q.get("ids") else ids
        after = q.get("after_id", "")
        page = [i for i in wanted if i > after][:100]
        more = len([i for i in wanted if i > after]) > 100
        nxt = {"ids": q.get("ids", ""), "status": "", "enabled": None, "state_details": False, "limit": 100,
               "after_id": page[-1]} if more else None
        return web.json_response({"components": [{"id": i, "desired_config": "c"} for i in page], "next": nxt})

    async def patch(request, body):
        return web.json_response({"component_ids": body["filters"]["ids"].split(",")[:-1]})

    async def use(base, log):
        http = client(base)
        cfs = CfsClient(http)
        everything = await cfs.all_components()
        some = await cfs.components(ids[:210])
        patched = await cfs.patch_batch(["a", "b"], {"enabled": True})
        slim = await cfs.all_components(("configuration_status",))
        slim_some = await cfs.components(ids[:3], ("configuration_status",))
        await http.close()
        return everything, some, patched, slim, slim_some, log
    everything, some, patched, slim, slim_some, log = run(serve({"GET /components": components, "PATCH /components": patch},
                                                     use))
    assert len(everything) == 250 and len(some) == 210 and patched == ["a"]
    # with fields, each component keeps `id` and those fields (None where CFS has none), nothing else
    assert everything["x000"] == {"id": "x000", "desired_config": "c"}
    assert slim["x000"] == {"id": "x000", "configuration_status": None}
    assert len(slim) == 250
    assert some["x000"] == {"id": "x000", "desired_config": "c"}
    assert slim_some == {i: {"id": i, "configuration_status": None} for i in ids[:3]}
    gets = [e["query"] for e in log if e["method"] == "GET"]
    assert gets[0] == {} and gets[1]["after_id"] == "x099" and gets[1]["state_details"] == "false"
    assert "enabled" not in gets[1]  # null values are omitted
    id_batches = [len(q["ids"].split(",")) for q in gets if q.get("ids") and "after_id" not in q]
    assert id_batches == [200, 10, 3]
    assert [e["body"] for e in log if e["method"] == "PATCH"] == [{"patch": {"enabled": True}, "filters": {"ids": "a,b"}}]
    assert len(CfsClient.patch_batches([str(i) for i in range(2500)])) == 3


def test_cfs_by_id_gets_go_out_at_once_and_the_answer_is_every_component_asked_for():
    """2,800 IDs are 14 GETs of <= 200; each takes one second (of a virtual clock) at CFS. Sent
    GETS_IN_FLIGHT at once, the batch is known after 4 s, not 14 (one after the other, they were the
    longest request of each status look at a batch session setup enabled: issue 13)."""
    ids = [f"x{i:04d}" for i in range(2800)]

    async def components(request, body):
        await asyncio.sleep(1)  # virtual: the loop's clock jumps
        wanted = [i for i in request.query["ids"].split(",") if i != "x0001"]  # one unknown to CFS
        return web.json_response({"components": [{"id": i, "desired_config": "c", "other": 1} for i in wanted],
                                  "next": None})

    async def use(base, log):
        http = client(base)
        try:
            began = loop_time()
            found = await CfsClient(http).components(reversed(ids), ("desired_config",))
            return found, loop_time() - began, log
        finally:
            await http.close()
    found, took, log = run_virtual(serve({"GET /components": components}, use))
    assert found == {i: {"id": i, "desired_config": "c"} for i in ids if i != "x0001"}
    assert sorted(len(e["query"]["ids"].split(",")) for e in log) == [200] * 14
    assert took == pytest.approx(4, abs=0.1)


def test_cfs_listing_with_fields_reads_a_page_of_another_shape_in_full():
    """A page the fields' decoder does not know (a component that is not an object) is read as
    any JSON: its components without an ID are left out, the others keep `id` and the fields."""
    async def components(request, body):
        return web.json_response({"components": ["junk", {"desired_config": "c"},
                                                 {"id": "x1", "desired_config": "c", "state": [{"a": 1}]}],
                                  "next": None})

    async def use(base, log):
        http = client(base)
        try:
            return await CfsClient(http).all_components(("desired_config", "configuration_status"))
        finally:
            await http.close()
    assert run(serve({"GET /components": components}, use)) == {"x1": {"id": "x1", "desired_config": "c"}}


def test_bos_pages_with_start_after_id_and_batches_patches():
    records = [{"id": f"x{i}"} for i in range(5)]

    async def components(request, body):
        q = request.query
        size = int(q.get("page_size", 0))
        found = [r for r in records if r["id"] > q.get("start_after_id", "")]
        return web.json_response(found[:size] if size else found)

    async def patch(request, body):
        return web.json_response(body)

    async def use(base, log):
        http = client(base + "/v2")
        bos = BosClient(http)
        listed = await bos.list_components(2, enabled=True)
        unpaged = await bos.list_components(0)
        updated = await bos.patch_components([{"id": f"x{i}", "error": ""} for i in range(5)], 2, skip_bad_ids=True)
        with pytest.raises(PatchInvariantError):
            await bos.patch_components([{"id": "x0", "desired_state": {"configuration": ""}}])
        await http.close()
        return listed, unpaged, updated, log
    listed, unpaged, updated, log = run(serve({"GET /v2/components": components, "PATCH /v2/components": patch}, use))
    assert [r["id"] for r in listed] == [r["id"] for r in records] == [r["id"] for r in unpaged]
    gets = [e["query"] for e in log if e["method"] == "GET"]
    assert gets[:3] == [{"enabled": "true", "page_size": "2"},
                        {"enabled": "true", "page_size": "2", "start_after_id": "x1"},
                        {"enabled": "true", "page_size": "2", "start_after_id": "x3"}]
    patches = [e for e in log if e["method"] == "PATCH"]
    assert [len(e["body"]) for e in patches] == [2, 2, 1] and patches[0]["query"] == {"skip_bad_ids": "true"}
    assert patches[0]["prefer"] == "return=minimal"  # only the IDs come back (api.md §3.3.3)
    assert updated == [f"x{i}" for i in range(5)]  # a server ignoring the preference: IDs of its records


def test_retries_5xx_for_idempotent_requests_only():
    calls = {"GET": 0, "POST": 0}

    async def flaky(request, body):
        calls[request.method] += 1
        if calls[request.method] < 3:
            return web.json_response({"title": "oops"}, status=503)
        return web.json_response({"ok": True})

    async def use(base, log):
        http = client(base)
        got = await http.get("/x")
        with pytest.raises(ServiceError) as info:
            await http.post("/x", {})
        await http.close()
        return got, info.value
    got, error = run(serve({"GET /x": flaky, "POST /x": flaky}, use))
    assert got == {"ok": True} and calls == {"GET": 3, "POST": 1}
    assert error.status == 503 and "\n" not in str(error)


def test_bos_writes_are_retried_on_503_and_dropped_connections():
    """The API answers 503 (or drops the connection) while its Redis restarts: the operators'
    absolute-value writes are sent again, with back-off, and succeed (issue 10, item 4)."""
    calls = {"components": 0, "session": 0}

    async def flaky_components(request, body):
        calls["components"] += 1
        if calls["components"] == 1:
            return web.json_response({"title": "Service Unavailable"}, status=503)
        if calls["components"] == 2:  # "Connection closed by server": no response at all
            request.transport.close()
            return web.Response()
        return web.json_response(body)

    async def flaky_session(request, body):
        calls["session"] += 1
        if calls["session"] == 1:
            return web.json_response({"title": "Service Unavailable"}, status=503)
        return web.json_response({"name": "s1", **body})

    async def use(base, log):
        bos = BosClient(client(base, "bos"))
        updated = await bos.patch_components([{"id": "x1", "error": ""}])
        session = await bos.patch_session("s1", None, {"status": {"status": "running"}})
        await bos.http.close()
        return updated, session
    updated, session = run(serve({"PATCH /components": flaky_components, "PATCH /sessions/s1": flaky_session}, use))
    assert updated == ["x1"] and session["status"] == {"status": "running"}
    assert calls == {"components": 3, "session": 2}


def test_writes_check_the_fence_before_every_attempt():
    """While operators act on claimed components, each attempt of a write first checks the claim
    (docs/ha.md); a lost claim stops the request before it is sent. Reads are not checked."""
    from bos_server.clients.rest import BEFORE_WRITE
    from bos_server.operators.claims import FenceLost
    checks: List[int] = []
    sent = {"PATCH": 0, "GET": 0}

    async def handler(request, body):
        sent[request.method] += 1
        return web.json_response({"title": "oops"} if sent[request.method] == 1 else {}, status=503
                                 if sent[request.method] == 1 else 200)

    async def guard():
        checks.append(1)
        if len(checks) > 2:
            raise FenceLost("lease lost")

    async def use(base, log):
        http = client(base)
        reset = BEFORE_WRITE.set(guard)
        try:
            await http.get("/x")
            await http.patch("/x", {}, idempotent=True)  # 503, then 200: checked twice
            with pytest.raises(FenceLost):
                await http.patch("/x", {}, idempotent=True)
        finally:
            BEFORE_WRITE.reset(reset)
            await http.close()
    run(serve({"PATCH /x": handler, "GET /x": handler}, use))
    assert len(checks) == 3 and sent == {"PATCH": 2, "GET": 2}


def test_queries_sent_as_post_are_not_fence_checked():
    """PCS's power status and HSM's component query are POSTs that change nothing: like a GET,
    they await no fence check (a status page asked PCS under its claim: 30 % of the lease keys
    checked in a boot, issue 13); a PCS transition still does."""
    from bos_server.clients.rest import BEFORE_WRITE
    from bos_server.operators.claims import FenceLost
    checks: List[int] = []

    async def status(request, body):
        return web.json_response({"status": [{"xname": i, "powerState": "on"} for i in body["xname"]]})

    async def query(request, body):
        return web.json_response({"Components": [{"ID": i, "State": "Ready"} for i in body["ComponentIDs"]]})

    async def transition(request, body):
        return web.json_response({"transitionID": "t1"})

    async def guard():
        checks.append(1)
        raise FenceLost("lease lost")

    async def use(base, log):
        http = client(base)
        reset = BEFORE_WRITE.set(guard)
        try:
            power = await PcsClient(http).power_status(["x1"])
            found = await HsmClient(http).query(["x1"])
            with pytest.raises(FenceLost):
                await PcsClient(http).transition("On", ["x1"])
        finally:
            BEFORE_WRITE.reset(reset)
            await http.close()
        return power, found, [entry["path"] for entry in log]
    power, found, paths = run(serve({"POST /power-status": status, "POST /State/Components/Query": query,
                                     "POST /transitions": transition}, use))
    assert power == {"x1": "on"} and [c["ID"] for c in found] == ["x1"]
    assert paths == ["/power-status", "/State/Components/Query"] and len(checks) == 1
