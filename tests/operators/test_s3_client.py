"""The S3 client (services.md §7) over real HTTP on loopback: signatures, errors, retries, size bound.

The signature is checked against botocore's own Signature V4 signer (the simulator's dependency),
so a wrong canonical request fails here even though the simulator's moto does not check signatures.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Dict, List

import pytest
from aiohttp import web

from bos_server.clients import s3 as s3_module
from bos_server.clients.s3 import S3Client, S3Error, S3Settings, host_header, object_path, sign

from .conftest import run

KEY, SECRET = "access-key", "secret/key+1"


@pytest.mark.parametrize("endpoint, key", [
    ("http://127.0.0.1:8999", "image-1/manifest.json"),
    ("http://rgw.local", "odd key/with spaces+plus=eq&amp~tilde/ü.json"),
    ("http://rgw.local:80", "k?versionId=3"),
    ("https://rgw.local:8443", "k"),  # the query stays part of the key (split_s3_url)
])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_requests_are_signed_as_botocore_signs_them(method: str, endpoint: str, key: str) -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from yarl import URL

    path = object_path("boot-images", key)
    request = AWSRequest(method=method, url=endpoint + path)
    S3SigV4Auth(Credentials(KEY, SECRET), "s3", "us-east-1").add_auth(request)
    when = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    ours = sign(method, host_header(URL(endpoint)), path, KEY, SECRET, when)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["x-amz-content-sha256"] == request.headers["X-Amz-Content-SHA256"]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(handler: Handler, use: Callable[[S3Client, List[web.Request]], Awaitable[Any]]) -> Any:
    seen: List[web.Request] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return await handler(request)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = S3Client(S3Settings(f"http://127.0.0.1:{port}", KEY, SECRET))
    try:
        return await use(client, seen)
    finally:
        await client.close()
        await runner.cleanup()


NO_SUCH_KEY = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>'
               b"<Message>The specified key does not exist.</Message></Error>")


def test_get_and_head_answer_the_object_and_its_unquoted_etag() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"artifacts": []}', headers={"ETag": '"abc123"'})

    async def use(s3: S3Client, seen: List[web.Request]) -> Dict[str, Any]:
        return {"body": await s3.get("s3://boot-images/i 1/manifest.json", max_bytes=100),
                "etag": await s3.head_etag("s3://boot-images/i 1/kernel"), "seen": seen}
    out = run(serve(handler, use))
    assert out["body"] == b'{"artifacts": []}' and out["etag"] == "abc123"
    assert [(r.method, r.raw_path) for r in out["seen"]] == [
        ("GET", "/boot-images/i%201/manifest.json"), ("HEAD", "/boot-images/i%201/kernel")]
    assert all(r.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/") for r in out["seen"])


def test_a_missing_object_is_one_line_naming_the_s3_error_code() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, body=NO_SUCH_KEY if request.method == "GET" else None)

    async def use(s3: S3Client, seen: List[web.Request]) -> List[str]:
        out = []
        for call in (s3.get("s3://b/missing"), s3.head_etag("s3://b/missing")):
            with pytest.raises(S3Error) as caught:
                await call
            out.append(str(caught.value))
        return out
    assert run(serve(handler, use)) == ["Unable to read s3://b/missing: NoSuchKey",
                                        "Unable to read s3://b/missing: 404"]  # HEAD has no body: the status


def test_transient_failures_are_tried_three_times_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "BACKOFF", 0.0)
    failing = {"/b/recovers": 2, "/b/down": 99}

    async def handler(request: web.Request) -> web.StreamResponse:
        failing[request.path] -= 1
        return web.Response(status=503 if failing[request.path] >= 0 else 200, body=b"late")

    async def use(s3: S3Client, seen: List[web.Request]) -> Any:
        body = await s3.get("s3://b/recovers")
        with pytest.raises(S3Error, match="^Unable to read s3://b/down: 503$"):
            await s3.get("s3://b/down")
        return body, [r.path for r in seen]
    body, paths = run(serve(handler, use))
    assert body == b"late" and paths == ["/b/recovers"] * 3 + ["/b/down"] * 3


def test_an_object_over_the_bound_is_refused_with_or_without_a_content_length() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("chunked"):
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for _ in range(4):
                await resp.write(b"x" * 40)
            await resp.write_eof()
            return resp
        return web.Response(body=b"x" * 160)

    async def use(s3: S3Client, seen: List[web.Request]) -> List[str]:
        out = []
        for url in ("s3://b/sized", "s3://b/chunked"):
            with pytest.raises(S3Error) as caught:
                await s3.get(url, max_bytes=100)
            out.append(str(caught.value))
        assert await s3.get("s3://b/sized", max_bytes=160) == b"x" * 160
        return out
    assert run(serve(handler, use)) == ["s3://b/sized is too big (160 bytes; at most 100)",
                                        "s3://b/chunked is too big (more than 100 bytes)"]


def test_unconfigured_s3_says_so() -> None:
    with pytest.raises(S3Error, match="S3 is not configured"):
        run(S3Client(S3Settings(None, None, None)).get("s3://b/k"))


def test_reading_s3_loads_no_botocore() -> None:
    """boto3 cost every process that read S3 ≈23 MiB for good (issue 13: API memory)."""
    script = ("import asyncio, sys\n"
              "import bos_server.main, bos_server.operators.main\n"
              "from bos_server.clients.s3 import S3Client, S3Settings, S3Error\n"
              "async def go():\n"
              "    s3 = S3Client(S3Settings('http://127.0.0.1:9', 'k', 's'))\n"
              "    try:\n"
              "        await s3.head_etag('s3://b/k')\n"
              "    except S3Error:\n"
              "        pass\n"
              "    await s3.close()\n"
              "asyncio.run(go())\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
