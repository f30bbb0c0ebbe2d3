"""Token-record retention (D4) and boot-artifact blob collection, against the real Redis."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from bos_server.store import keys
from bos_server.store.token_sweep import BLOB_GRACE_SECONDS, sweep
from tests.support.client import Api
from tests.support.tokens import record_token

LONG = {"kernel": "s3://boot-images/img/kernel", "initrd": "s3://boot-images/img/initrd",
        "kernel_parameters": "console=ttyS0,115200 " * 20}
DAY = 86400


def _age(redis_url: str, index: str, member: str, seconds: float) -> None:
    async def run() -> None:
        client = Redis.from_url(redis_url)
        await client.zadd(index, {member: time.time() - seconds})
        await client.aclose()
    asyncio.run(run())


def _sweep(redis_url: str, retention: float) -> int:
    async def run() -> int:
        client = Redis.from_url(redis_url)
        try:
            return await sweep(client, retention)
        finally:
            await client.aclose()
    return asyncio.run(run())


def test_d4_only_old_unreferenced_tokens_are_deleted(api: Api, redis_server, redis_client) -> None:
    for token in ("old-free", "old-desired", "old-actual", "young-free"):
        record_token(redis_server.url, token, LONG)
    for token in ("old-free", "old-desired", "old-actual"):
        _age(redis_server.url, keys.TOKENS_BY_TIME, token, 31 * DAY)
    api.put("/v2/components", json=[{"id": "a", "desired_state": {"bss_token": "old-desired"}},
                                    {"id": "b", "actual_state": {"bss_token": "old-actual"}}])
    assert _sweep(redis_server.url, 30 * DAY) == 1
    assert not redis_client.exists(keys.token("old-free"))
    for token in ("old-desired", "old-actual", "young-free"):
        assert redis_client.exists(keys.token(token)), token
    # the referenced token still resolves for a report
    assert api.patch("/v2/components/b", json={"actual_state": {"bss_token": "old-actual"}}).json()[
        "actual_state"]["boot_artifacts"]["kernel"] == LONG["kernel"]


def test_large_boot_artifacts_are_stored_once_and_read_back_whole(api: Api, redis_client) -> None:
    records = [{"id": f"n{i}", "desired_state": {"boot_artifacts": LONG, "configuration": "c"}} for i in range(50)]
    api.put("/v2/components", json=records)
    assert len(redis_client.keys("bos:art:*")) == 1
    assert len(redis_client.get(keys.component("n1"))) < 400
    assert api.get("/v2/components/n7").json()["desired_state"]["boot_artifacts"] == LONG
    listed = api.get("/v2/components", params={"ids": "n3,n4"}).json()
    assert [r["desired_state"]["boot_artifacts"] for r in listed] == [LONG, LONG]


def test_idle_unreferenced_blobs_are_collected_and_referenced_ones_kept(api: Api, redis_server, redis_client) -> None:
    other = dict(LONG, kernel="s3://boot-images/other/kernel")
    api.put("/v2/components", json=[{"id": "a", "desired_state": {"boot_artifacts": LONG}},
                                    {"id": "b", "desired_state": {"boot_artifacts": other}}])
    blob_keys = sorted(k.decode() for k in redis_client.keys("bos:art:*"))
    assert len(blob_keys) == 2
    api.put("/v2/components/b", json={"enabled": False})  # b no longer references its blob
    for key in blob_keys:
        _age(redis_server.url, keys.ARTIFACT_BLOBS, key, BLOB_GRACE_SECONDS + 60)
    _sweep(redis_server.url, 30 * DAY)
    remaining = [k.decode() for k in redis_client.keys("bos:art:*")]
    assert len(remaining) == 1
    assert api.get("/v2/components/a").json()["desired_state"]["boot_artifacts"] == LONG
