"""S3 client (services.md §7): manifests, boot parameters and artifact existence.

Two operations (GetObject, HeadObject), path-style, signed with AWS Signature V4, over
aiohttp. boto3 was used before; loading botocore and its S3 model cost each process that
touched S3 ≈23 MiB of RSS for good (issue 13: API memory at 100,000 nodes, where every
worker that validates a session template pays it), and its calls ran in worker threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Dict, Mapping, Optional, Tuple
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

MANIFEST_MAX_BYTES = 1048576
REGION = "us-east-1"  # any region name is accepted (services.md §7)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date"
TIMEOUT = aiohttp.ClientTimeout(sock_connect=60, sock_read=60)
ATTEMPTS = 3  # as boto3's "standard" retry mode: transient failures are tried three times in all
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF = 0.2
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


class S3Error(Exception):
    """An S3 access failed; the message is one line."""


@dataclass(frozen=True)
class S3Settings:
    endpoint: Optional[str]
    access_key: Optional[str]
    secret_key: Optional[str]

    @classmethod
    def from_env(cls, endpoint: Optional[str] = None) -> "S3Settings":
        if endpoint is None and os.environ.get("S3_GATEWAY"):
            endpoint = f"{os.environ.get('S3_PROTOCOL', 'https')}://{os.environ['S3_GATEWAY']}"
        return cls(endpoint, os.environ.get("S3_ACCESS_KEY"), os.environ.get("S3_SECRET_KEY"))


def split_s3_url(url: str) -> Tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); the query, if any, stays part of the key."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise S3Error(f"'{url}' is not an s3://<bucket>/<key> URL")
    key = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    return parts.netloc, key


def object_path(bucket: str, key: str) -> str:
    """The request path, percent-encoded once as S3 signs it (a `?` of the key included)."""
    return "/" + quote(bucket, safe="~") + "/" + quote(key, safe="/~")


def host_header(base: URL) -> str:
    """The Host header (signed): the port only when it is not the scheme's default, as HTTP clients send it."""
    host = base.raw_host or ""
    return host if base.is_default_port() else f"{host}:{base.port}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(method: str, host: str, path: str, access_key: str, secret_key: str, when: datetime,
         region: str = REGION) -> Dict[str, str]:
    """The headers of a Signature V4 request without a body or query (what both operations send)."""
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    canonical = "\n".join([method, path, "", f"host:{host}", f"x-amz-content-sha256:{EMPTY_SHA256}",
                           f"x-amz-date:{stamp}", "", SIGNED_HEADERS, EMPTY_SHA256])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {"Host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": stamp,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                             f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}"}


class S3Client:
    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._http: Optional[aiohttp.ClientSession] = None

    @property
    def configured(self) -> bool:
        return bool(self.settings.endpoint and self.settings.access_key and self.settings.secret_key)

    async def close(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()

    async def get(self, url: str, max_bytes: Optional[int] = None) -> bytes:
        """Object content; refuses objects larger than `max_bytes` by Content-Length."""
        bucket, key = split_s3_url(url)
        return (await self._call("GET", url, bucket, key, max_bytes))[2]

    async def head_etag(self, url: str) -> str:
        """The object's ETag without quotes; raises S3Error when it cannot be found."""
        bucket, key = split_s3_url(url)
        _status, headers, _body = await self._call("HEAD", url, bucket, key, None)
        return str(headers.get("ETag", "")).strip('"')

    async def _call(self, method: str, url: str, bucket: str, key: str,
                    max_bytes: Optional[int]) -> Tuple[int, Mapping[str, str], bytes]:
        if not self.configured:
            raise S3Error("S3 is not configured (S3_PROTOCOL, S3_GATEWAY, S3_ACCESS_KEY, S3_SECRET_KEY)")
        for attempt in range(1, ATTEMPTS + 1):
            try:
                status, headers, body = await self._once(method, url, bucket, key, max_bytes)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                if attempt == ATTEMPTS:
                    raise S3Error(_line(f"Unable to read {url}: {type(exc).__name__}: {exc}")) from exc
            else:
                if status < 300:
                    return status, headers, body
                if status not in RETRY_STATUSES or attempt == ATTEMPTS:
                    match = _CODE.search(body)  # HEAD answers have no body: the status is the code, as boto3's
                    raise S3Error(_line(f"Unable to read {url}: {match.group(1).decode() if match else status}"))
            await asyncio.sleep(BACKOFF * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def _once(self, method: str, url: str, bucket: str, key: str,
                    max_bytes: Optional[int]) -> Tuple[int, Mapping[str, str], bytes]:
        assert self.settings.endpoint and self.settings.access_key and self.settings.secret_key
        base = URL(self.settings.endpoint)
        path = object_path(bucket, key)
        headers = sign(method, host_header(base), path, self.settings.access_key, self.settings.secret_key,
                       datetime.now(timezone.utc))
        target = URL(str(base.origin()) + path, encoded=True)  # sent exactly as signed
        async with self._session().request(method, target, headers=headers, ssl=False, timeout=TIMEOUT) as resp:
            if resp.status < 300 and max_bytes is not None:
                size = resp.content_length or 0
                if size > max_bytes:
                    raise S3Error(f"{url} is too big ({size} bytes; at most {max_bytes})")
                return resp.status, resp.headers, await _bounded(resp, url, max_bytes)
            return resp.status, resp.headers, await resp.read()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16))
        return self._http


async def _bounded(resp: aiohttp.ClientResponse, url: str, max_bytes: int) -> bytes:
    """The body, refused past `max_bytes` even when no Content-Length announced it."""
    chunks = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > max_bytes:
            raise S3Error(f"{url} is too big (more than {max_bytes} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _line(text: str) -> str:
    return " ".join(text.split())
