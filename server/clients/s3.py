"""S3 client (services.md §7): manifests, boot parameters and artifact existence.

boto3 is synchronous; calls run in a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Optional, Tuple
from urllib.parse import urlsplit

MANIFEST_MAX_BYTES = 1048576
LOG = logging.getLogger(__name__)


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


class S3Client:
    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._client: Any = None
        self._building = threading.Lock()  # boto3's default session must not build clients concurrently

    @property
    def configured(self) -> bool:
        return bool(self.settings.endpoint and self.settings.access_key and self.settings.secret_key)

    async def warm(self) -> None:
        """Build the boto3 client now, in a worker thread: importing boto3 and loading its S3 model
        takes a second or more, which the first session after a start otherwise waited for
        between its POST and its first power-on (issue 13). Nothing when S3 is not configured."""
        if not self.configured:
            return
        try:
            await asyncio.to_thread(self._boto)
        except Exception as exc:  # the first real request reports it again, in its own context
            LOG.warning("Preparing the S3 client failed: %s", " ".join(str(exc).split()))

    def _boto(self) -> Any:
        with self._building:
            if self._client is None:
                self._client = self._build()
            return self._client

    def _build(self) -> Any:
        if not self.configured:
            raise S3Error("S3 is not configured (S3_PROTOCOL, S3_GATEWAY, S3_ACCESS_KEY, S3_SECRET_KEY)")
        import boto3
        from botocore.config import Config
        config = Config(connect_timeout=60, read_timeout=60, s3={"addressing_style": "path"},
                        retries={"max_attempts": 3, "mode": "standard"})
        return boto3.client(
            "s3", endpoint_url=self.settings.endpoint, aws_access_key_id=self.settings.access_key,
            aws_secret_access_key=self.settings.secret_key, region_name="us-east-1",
            verify=False, config=config)

    async def get(self, url: str, max_bytes: Optional[int] = None) -> bytes:
        """Object content; refuses objects larger than `max_bytes` by Content-Length."""
        bucket, key = split_s3_url(url)
        return await asyncio.to_thread(self._get, url, bucket, key, max_bytes)

    async def head_etag(self, url: str) -> str:
        """The object's ETag without quotes; raises S3Error when it cannot be found."""
        bucket, key = split_s3_url(url)
        return await asyncio.to_thread(self._head, url, bucket, key)

    def _get(self, url: str, bucket: str, key: str, max_bytes: Optional[int]) -> bytes:
        try:
            resp = self._boto().get_object(Bucket=bucket, Key=key)
            size = resp.get("ContentLength") or 0
            if max_bytes is not None and size > max_bytes:
                resp["Body"].close()
                raise S3Error(f"{url} is too big ({size} bytes; at most {max_bytes})")
            return resp["Body"].read()
        except S3Error:
            raise
        except Exception as exc:  # botocore raises many unrelated types; report them all as one line
            raise S3Error(_describe(url, exc)) from exc

    def _head(self, url: str, bucket: str, key: str) -> str:
        try:
            resp = self._boto().head_object(Bucket=bucket, Key=key)
        except S3Error:
            raise
        except Exception as exc:  # see _get
            raise S3Error(_describe(url, exc)) from exc
        return str(resp.get("ETag", "")).strip('"')


def _describe(url: str, exc: Exception) -> str:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    text = f"{code}" if code else f"{type(exc).__name__}: {exc}"
    return " ".join(f"Unable to read {url}: {text}".split())
