"""Component leases, fencing and decision records on a real redis-server (docs/ha.md)."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from bos_server.operators.claims import Claim, FenceLost, RedisClaims, fenced
from bos_server.clients.rest import BEFORE_WRITE
from bos_server.store import keys
from bos_sim.stack import RedisServer

IDS = [f"x1000c0s{i}b0n0" for i in range(6)]


@pytest.fixture(scope="module")
def quiet_redis(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A redis-server of this module's own, for the tests that count Redis commands: the session's
    server is shared with the API server and clusters other tests start on this worker, whose
    background rounds (GET, EXISTS, MULTI/EXEC) land in the same server-wide counters."""
    server = RedisServer(tmp_path_factory.mktemp("quiet-redis"))
    scenario(server, _load_scripts)  # as the shared server has them from earlier tests
    yield server
    server.stop()


async def _load_scripts(redis: Redis) -> None:
    """Claims' scripts in the server's cache, so a counted call is not also a NOSCRIPT retry."""
    claims = RedisClaims(redis, lease=5, replica="load:0")
    held = await claims.claim(IDS[:1])
    held = await claims.claim(IDS[:2])  # a token holding some: the claim script
    await claims.mark(held, "power-on", {i: "s1\x1f0" for i in held.ids})
    await claims.release(held, "power-on")


def scenario(redis_server: Any, body: Callable[[Redis], Awaitable[None]]) -> None:
    async def main() -> None:
        redis = Redis.from_url(redis_server.url)
        await redis.flushdb()
        try:
            await body(redis)
        finally:
            await redis.aclose()
    asyncio.run(main())


async def expire(redis: Redis, ids: Any) -> None:
    """What the lease's expiry does (Redis's own clock; not waited for here)."""
    await redis.delete(*(keys.component_lease(i) for i in ids))


def test_one_holder_per_component_with_fresh_fencing_tokens(redis_server):
    async def body(redis: Redis) -> None:
        a, b = RedisClaims(redis, lease=5, replica="a:1"), RedisClaims(redis, lease=5, replica="b:2")
        first = await a.claim(IDS[:4])
        second = await b.claim(IDS[2:])
        assert first.ids == IDS[:4] and second.ids == IDS[4:]  # the overlap stays with its holder
        assert first.token.startswith("a:1:") and second.token.startswith("b:2:") and first.token != second.token
        await a.release(first)
        third = await b.claim(IDS[2:4], into=second)  # same token, the freed ones added
        assert third.ids == IDS[4:] + IDS[2:4] and third.token == second.token
        assert await redis.get(keys.component_lease(IDS[0])) is None
    scenario(redis_server, body)


def test_a_lost_lease_fails_the_fence_and_release_spares_the_new_holder(redis_server):
    async def body(redis: Redis) -> None:
        a, b = RedisClaims(redis, lease=5, replica="a:1"), RedisClaims(redis, lease=5, replica="b:2")
        held = await a.claim(IDS[:2])
        await a.check(held)  # held: renewed
        await expire(redis, IDS[:2])  # the lease runs out (a paused holder)
        taken = await b.claim(IDS[:2])
        assert taken.ids == IDS[:2]
        with pytest.raises(FenceLost):
            await a.check(held)
        await a.release(held, "power-on")
        assert (await redis.get(keys.component_lease(IDS[0]))).decode() == taken.token
    scenario(redis_server, body)


def test_decision_records_adopt_a_stopped_holders_decision_of_the_same_version(redis_server):
    async def body(redis: Redis) -> None:
        a, b = RedisClaims(redis, lease=5, replica="a:1"), RedisClaims(redis, lease=5, replica="b:2")
        held = await a.claim(IDS[:3])
        marked, adopted = await a.mark(held, "power-on", {i: "s1\x1f0" for i in IDS[:3]})
        assert marked == IDS[:3] and adopted == []
        await expire(redis, IDS[:3])  # a stops before writing its action update
        taken = await b.claim(IDS[:3])
        versions = {IDS[0]: "s1\x1f0", IDS[1]: "s1\x1f1", IDS[2]: "s2\x1f0"}  # moved on: new decisions
        marked, adopted = await b.mark(taken, "power-on", versions)
        assert adopted == [IDS[0]] and marked == IDS[1:3]
        await b.release(taken, "power-on")  # outcome written: records and leases gone
        assert await redis.exists(*(keys.decision("power-on", i) for i in IDS[:3])) == 0
        with pytest.raises(FenceLost):  # a marks nothing once its leases are gone
            await a.mark(held, "power-on", {IDS[0]: "s1\x1f1"})
    scenario(redis_server, body)


def test_a_release_deletes_the_records_its_token_wrote_and_spares_a_stopped_holders(redis_server):
    """Once its outcome is recorded, a release deletes with each lease still its own the decision
    record it wrote there, without reading the records (issue 13); the record of a holder that
    stopped, on a component the release's holder claimed but did not decide about, stays for
    the next claimant to adopt (at most once per decision)."""
    async def body(redis: Redis) -> None:
        a, b = RedisClaims(redis, lease=5, replica="a:1"), RedisClaims(redis, lease=5, replica="b:2")
        held = await a.claim(IDS[:3])
        await a.mark(held, "power-on", {i: "s1\x1f0" for i in IDS[:3]})
        await lapse(redis, held)  # a stops after deciding
        taken = await b.claim(IDS[:3])
        await b.mark(taken, "power-on", {IDS[0]: "s1\x1f0", IDS[1]: "s1\x1f1"})  # IDS[2]: not due for b
        await b.release(Claim(taken.token, ids=taken.ids), "power-on")  # as the status operator releases
        assert await redis.exists(keys.decision("power-on", IDS[0]), keys.decision("power-on", IDS[1])) == 0
        assert (await redis.get(keys.decision("power-on", IDS[2]))).decode() == f"{held.token}\x1fs1\x1f0"
        assert await redis.exists(*(keys.component_lease(i) for i in IDS[:3])) == 0 and not b._recorded
    scenario(redis_server, body)


def test_decision_records_send_an_id_per_component_and_each_version_once(redis_server):
    """The decision-record script gets each component's ID alone (its keys are made in Redis) and
    each state version once: three arguments per component were most of `mark`'s CPU in the
    operators (issue 13). Codes come back in the order asked, whatever the versions' order."""
    async def body(redis: Redis) -> None:
        claims = RedisClaims(redis, lease=5, replica="a:1")
        many = [f"x{i}c0s0b0n0" for i in range(500)]
        held = await claims.claim(many)
        sizes = []
        script = claims._mark

        async def counted(**kw: Any) -> Any:
            sizes.append(len(kw["args"]))
            return await script(**kw)
        claims._mark = counted  # type: ignore[assignment]
        versions = {cid: f"s1\x1f{n % 2}" for n, cid in enumerate(many)}  # two versions, interleaved
        marked, adopted = await claims.mark(held, "power-on", versions)
        assert marked == many and adopted == [] and sizes == [4 + 2 * 2 + 500]
        record = await redis.get(keys.decision("power-on", many[1]))
        assert record.decode() == f"{held.token}\x1fs1\x1f1"
    scenario(redis_server, body)


def test_a_decision_record_left_behind_is_overwritten_by_the_next_decision(redis_server):
    """Decision records have no expiry (one MSET per chunk, not a SET PX each: a third of the
    script's Redis instructions, issue 13): one left by a holder that stopped is overwritten by
    the component's next decision of that operator, whose release deletes it."""
    async def body(redis: Redis) -> None:
        a, b = RedisClaims(redis, lease=5, replica="a:1"), RedisClaims(redis, lease=5, replica="b:2")
        many = [f"x{i}c0s0b0n0" for i in range(300)]
        held = await a.claim(many)
        marked, _ = await a.mark(held, "power-on", {cid: "s1\x1f0" for cid in many})
        assert len(marked) == 300
        assert await redis.pttl(keys.decision("power-on", many[0])) == -1
        await expire(redis, many)  # a stops before its action update: its records stay
        taken = await b.claim(many)
        marked, adopted = await b.mark(taken, "power-on", {cid: "s1\x1f1" for cid in many})  # moved on
        assert len(marked) == 300 and adopted == []
        assert (await redis.get(keys.decision("power-on", many[0]))).decode() == f"{taken.token}\x1fs1\x1f1"
        await b.release(taken, "power-on")
        assert await redis.exists(*(keys.decision("power-on", cid) for cid in many)) == 0
    scenario(redis_server, body)


def test_a_claim_of_free_components_is_one_transaction_per_2000_without_a_script(quiet_redis):
    """A fresh token's claim of components all free is a MULTI/EXEC (its liveness key, an MSETNX
    of the leases), not a script: the claim script's Lua copies of every key were 7,600 Redis
    instructions per key (issue 13); further chunks of 2,000 go to the script under that token.
    Token numbers come from the shared counter 64 at a time. Where one is held, the script takes
    the free ones under the same token."""
    async def body(redis: Redis) -> None:
        claims, other = RedisClaims(redis, lease=5, replica="a:1"), RedisClaims(redis, lease=5, replica="b:2")
        many = [f"x{i}c0s0b0n0" for i in range(5000)]
        await redis.config_resetstat()
        held = await claims.claim(many)
        stats = await redis.info("commandstats")
        calls = {name[len("cmdstat_"):]: row["calls"] for name, row in stats.items()}
        assert len(held.ids) == 5000 and calls["evalsha"] == 2
        assert calls["exec"] == 1 and calls["msetnx"] == 1 and calls["incrby"] == 1
        assert (await redis.get(keys.component_lease(many[-1]))).decode() == held.token
        await claims.release(held)
        first = await other.claim(many[:10])
        second = await claims.claim(many[5:20])  # five held by `other`: the script takes the rest
        assert second.ids == many[10:20] and first.token != second.token
        assert int(await redis.get(keys.CLAIM_TOKENS)) == 2 * 64
    scenario(quiet_redis, body)


def test_write_requests_inside_fenced_check_the_claim(redis_server):
    async def body(redis: Redis) -> None:
        claims = RedisClaims(redis, lease=5, replica="a:1")
        held = await claims.claim(IDS[:1])
        with fenced(claims, held):
            guard = BEFORE_WRITE.get()
            assert guard is not None
            await guard()
            await redis.delete(keys.component_lease(IDS[0]))  # e.g. Redis restarted empty
            with pytest.raises(FenceLost):
                await guard()
        assert BEFORE_WRITE.get() is None
        assert isinstance(held, Claim)
    scenario(redis_server, body)


def test_write_requests_asking_at_once_share_a_check_begun_after_each_asked(redis_server):
    """Requests of one claim asking in the same turn share one fence check; one asking while that
    check is under way gets a check of its own, which sees a lease lost meanwhile (docs/ha.md)."""
    async def body(redis: Redis) -> None:
        claims = RedisClaims(redis, lease=5, replica="a:1")
        held = await claims.claim(IDS[:2])
        ran, reply = asyncio.Event(), asyncio.Event()
        checks = []
        check = claims.check

        async def slow_reply(claim: Claim) -> None:
            checks.append(claim.token)
            await check(claim)
            ran.set()  # the check ran in Redis (its leases held); its reply is still on its way
            await reply.wait()
        claims.check = slow_reply  # type: ignore[method-assign]
        with fenced(claims, held):
            guard = BEFORE_WRITE.get()
            assert guard is not None
            together = [asyncio.ensure_future(guard()) for _ in range(3)]
            await ran.wait()
            await redis.delete(keys.component_lease(IDS[0]))  # lost while that check is under way
            later = asyncio.ensure_future(guard())
            for _ in range(5):  # `later` asks, and its own check is sent
                await asyncio.sleep(0)
            reply.set()
            await asyncio.gather(*together)  # the three shared the one check, which passed
            with pytest.raises(FenceLost):
                await later
        assert len(checks) == 2
    scenario(redis_server, body)


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll `condition` until it holds (fail after `seconds`)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_heartbeat_warns_only_about_leases_still_held(redis_server, caplog):
    """A claim released while the heartbeat renews the others is not renewed (nor reported as
    expired); a lease that really ran out under its holder is reported."""
    async def body(redis: Redis) -> None:
        # 1.5 s, not less: a loop stalled past the lease (load average 8) lapsed the liveness key itself
        claims = RedisClaims(redis, lease=1.5, replica="a:1")
        kept = await claims.claim(IDS[:2])
        gone = await claims.claim(IDS[2:4])
        renew = claims._renew_keys
        renewed = []

        async def renewing(token: str, leases: Any) -> int:
            renewed.append(token)
            if token == kept.token and gone.token in claims.held:
                await claims.release(gone)  # its holder finishes during this heartbeat round
            return await renew(token, leases)
        claims._renew_keys = renewing  # type: ignore[method-assign]
        stopping = asyncio.Event()
        beat = asyncio.create_task(claims.heartbeat(stopping))
        await until(lambda: kept.token in renewed)
        await expire(redis, IDS[:2])  # kept's leases run out while it is still held
        await until(lambda: "2 leases of " + kept.token in caplog.text)
        stopping.set()
        await beat
        assert gone.token not in renewed and gone.token not in caplog.text
    with caplog.at_level("WARNING", logger="bos.operators.claims"):
        scenario(redis_server, body)


def test_claims_sharing_a_token_keep_each_others_leases_renewed(redis_server):
    """Session setup writes two batches at once under its session's token: releasing one batch
    must leave the other's leases (and the session's) with the heartbeat."""
    async def body(redis: Redis) -> None:
        claims = RedisClaims(redis, lease=5, replica="a:1")
        session = await claims.claim_key("bos:lease:session:demo")
        assert session is not None
        first = await claims.claim(IDS[:2], into=Claim(session.token, others=list(session.others)))
        second = await claims.claim(IDS[2:4], into=Claim(session.token, others=list(session.others)))
        await claims.release(first)
        held = claims.held[session.token]
        assert {keys.component_lease(i) for i in IDS[2:4]} <= held and "bos:lease:session:demo" in held
        assert not {keys.component_lease(i) for i in IDS[:2]} & held
        await claims.release(second)
        assert claims.held[session.token] == {"bos:lease:session:demo"}
        await claims.release_others(session)
        assert session.token not in claims.held
    scenario(redis_server, body)


async def lapse(redis: Redis, claim: Claim) -> None:
    """What the expiry of a stopped holder's token does (its liveness key; not waited for here)."""
    await redis.delete(keys.claim_alive(claim.token))


def test_a_lapsed_tokens_leases_are_taken_over_and_it_claims_nothing_more(redis_server):
    """A lease key has no expiry of its own (it outlives its token's liveness key): it is taken over
    only once that token lapsed; the lapsed token is fenced, and claims and decides nothing more (docs/ha.md §1)."""
    async def body(redis: Redis) -> None:
        a, b = RedisClaims(redis, lease=5, replica="a:1"), RedisClaims(redis, lease=5, replica="b:2")
        held = await a.claim(IDS[:3])
        assert (await b.claim(IDS[:3])).ids == []  # a runs: its leases stay its own
        await lapse(redis, held)  # a stops past its lease; its lease keys are still there
        taken = await b.claim(IDS[:4])
        assert taken.ids == IDS[:4]
        assert (await redis.get(keys.component_lease(IDS[0]))).decode() == taken.token
        with pytest.raises(FenceLost):
            await a.check(held)
        assert (await a.claim(IDS[4:5], into=held)).ids == IDS[:3]  # nothing added under the dead token
        with pytest.raises(FenceLost):
            await a.mark(held, "power-on", {IDS[0]: "s1\x1f0"})
    scenario(redis_server, body)


def test_a_lapsed_token_fails_the_fence_with_its_lease_keys_intact(redis_server):
    """Nobody took the leases over yet, but the token lapsed: the holder was stopped past its
    lease, anybody may take them over at any moment, so it sends nothing more (fail closed)."""
    async def body(redis: Redis) -> None:
        claims = RedisClaims(redis, lease=5, replica="a:1")
        held = await claims.claim(IDS[:2])
        await claims.check(held)
        await lapse(redis, held)
        with pytest.raises(FenceLost):
            await claims.check(held)
        assert (await redis.get(keys.component_lease(IDS[0]))).decode() == held.token
    scenario(redis_server, body)


def test_a_fence_check_is_one_transaction_per_2000_leases_without_a_script(quiet_redis):
    """The fence check renews the token and reads its leases in one MULTI/EXEC per 2,000 lease
    keys (one instant, as a script would), compared by the operator: Lua's copies of every key
    and value were 4,100 Redis instructions per lease key (issue 13). A lease lost in any chunk
    fails it."""
    async def body(redis: Redis) -> None:
        claims = RedisClaims(redis, lease=5, replica="a:1")
        many = [f"x{i}c0s0b0n0" for i in range(2500)]
        held = await claims.claim(many)
        await redis.config_resetstat()
        await claims.check(held)
        stats = await redis.info("commandstats")
        calls = {name[len("cmdstat_"):]: row["calls"] for name, row in stats.items()}
        assert calls.get("evalsha", 0) == 0
        assert calls["multi"] == calls["exec"] == calls["pexpire"] == calls["mget"] == 2
        await redis.delete(keys.component_lease(many[-1]))  # e.g. lost with the last second of writes
        with pytest.raises(FenceLost, match="1 of 2500 leases were lost"):
            await claims.check(held)
    scenario(quiet_redis, body)


def test_heartbeat_renews_the_token_each_round_and_reads_its_lease_keys_every_look(redis_server):
    """Each heartbeat round renews the token's liveness key (one command); lease keys have no
    expiry to renew (the token's lapse frees them), and are read every LOOK_EVERY lease periods."""
    async def body(redis: Redis) -> None:
        claims = RedisClaims(redis, lease=0.3, replica="a:1")
        held = await claims.claim(IDS[:2])
        alive = keys.claim_alive(held.token)
        await redis.pexpire(alive, 60_000)
        renew = claims._renew_keys
        rounds: list = []

        async def renewing(token: str, leases: Any) -> int:
            lost = await renew(token, leases)
            rounds.append((len(leases), await redis.pttl(alive)))
            return lost
        claims._renew_keys = renewing  # type: ignore[method-assign]
        stopping = asyncio.Event()
        beat = asyncio.create_task(claims.heartbeat(stopping))
        await until(lambda: any(looked for looked, _alive in rounds))
        stopping.set()
        await beat
        assert rounds[0] == (0, rounds[0][1]) and rounds[0][1] <= 300  # the token alone
        assert rounds[-1][0] == 2 and rounds[-1][1] <= 300  # and a look at its lease keys
        assert await redis.pttl(keys.component_lease(IDS[0])) == -1
    scenario(redis_server, body)


def test_a_chunk_costs_a_few_redis_commands_whatever_its_size(quiet_redis):
    """A claim sets a chunk's free lease keys with one MSETNX (no SET NX PX per key: no expiry, the
    token's lapse frees them), a decision record reads the leases and the prior records with one
    MGET each and sets the records with one MSET: no command per component (issue 13)."""
    async def body(redis: Redis) -> None:
        claims = RedisClaims(redis, lease=5, replica="a:1")
        many = [f"x{i}c0s0b0n0" for i in range(500)]
        await claims.release(await claims.claim(many[:1]))  # scripts loaded
        await redis.config_resetstat()
        held = await claims.claim(many)
        await claims.check(held)
        marked, _adopted = await claims.mark(held, "power-on", {i: "s1\x1f0" for i in many})
        await claims.release(held, "power-on")
        stats = await redis.info("commandstats")
        calls = {name[len("cmdstat_"):]: row["calls"] for name, row in stats.items()}
        assert len(held.ids) == len(marked) == 500
        assert calls.get("get", 0) == 0 and calls["set"] == 1  # the token's liveness key
        assert calls["msetnx"] == calls["mset"] == 1 and calls["mget"] == 1 + 2 + 1 and calls["del"] == 1
        assert await redis.exists(*(keys.component_lease(i) for i in many)) == 0
    scenario(quiet_redis, body)


def test_a_lease_of_an_older_versions_replica_is_not_taken_over_while_its_key_lives(redis_server):
    """A rolling update runs old and new replicas side by side (docs/ha.md): an older version's
    token (`<host>:<pid>:<n>`, no liveness key) holds its lease until its key expires, as that
    version expects; only a lapsed token of the liveness scheme (`:L<n>`) is taken over."""
    async def body(redis: Redis) -> None:
        old_token = "old-host:7:41"  # what an older version's claim writes: SET key token NX PX lease
        await redis.set(keys.component_lease(IDS[0]), old_token, px=5000)
        claims = RedisClaims(redis, lease=5, replica="b:2")
        taken = await claims.claim(IDS[:2])
        assert taken.ids == IDS[1:2] and ":L" in taken.token
        assert (await redis.get(keys.component_lease(IDS[0]))).decode() == old_token
        await redis.delete(keys.component_lease(IDS[0]))  # its key expires (the old holder stopped)
        assert (await claims.claim(IDS[:1], into=taken)).ids == IDS[1:2] + IDS[:1]
    scenario(redis_server, body)


def test_lease_keys_made_by_joining_are_the_stores_lease_keys():
    """claims.lease_keys joins a prefix and each ID (issue 13: the operators' CPU of a chunk's
    claim, fence checks and release): they must be the very keys `keys.component_lease` names,
    which the API, the scripts and other replicas use."""
    from bos_server.operators.claims import lease_keys
    ids = ["x1000c0s0b0n0", "x3000c1s7b1n3", "", "x9c0s0b0n0:odd"]
    assert lease_keys(ids) == [keys.component_lease(i) for i in ids]
    assert Claim("t", ids=ids[:2], others=["o"]).lease_keys() == ["o"] + [keys.component_lease(i) for i in ids[:2]]
