"""What every handler needs, built once per process and kept on the aiohttp app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from aiohttp import web

from ..clients.cfs import CfsClient
from ..clients.hsm import HsmClient
from ..clients.ims import ImsClient
from ..clients.s3 import S3Client
from ..clients.tapms import TapmsClient
from ..store import Store

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
