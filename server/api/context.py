"""What every handler needs, built once per process and kept on the aiohttp app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, TypeVar

from aiohttp import web

from ..clients.cfs import CfsClient
from ..clients.hsm import HsmClient
from ..clients.ims import ImsClient
from ..clients.s3 import S3Client
from ..clients.tapms import TapmsClient
from ..store import Store

T = TypeVar("T")

CONTEXT = web.AppKey("context", object)


@dataclass
class Context:
    store: Store
    tapms: TapmsClient
    ims: ImsClient
    s3: S3Client
    version: str
    hsm: Optional[HsmClient] = None  # dry-run node selection (extension)
    cfs: Optional[CfsClient] = None  # session stop clears desired configuration (extension)


def ctx(request: web.Request) -> Context:
    return request.app[CONTEXT]  # type: ignore[return-value]


def request_value(request: web.Request, key: web.RequestKey[T]) -> Optional[T]:
    """`request.get(key)`: what a middleware left on the request (the body auth read, a tenant
    admin's tenant), None if nothing. A request's state is a Mapping whose `get` raises and
    catches a KeyError on a miss; a node's report, which no middleware annotates, looked up two
    such keys per request. An empty state is known from its length, without the exception."""
    return request.get(key) if len(request) else None
