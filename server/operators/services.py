"""The external services the operators use, built once per process (one HTTP session each)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional

from ..clients.bos import BosClient
from ..clients.bos_reads import StoreReads
from ..clients.bss import BssClient
from ..clients.cfs import CfsClient
from ..clients.hsm import HsmClient
from ..clients.ims import ImsClient
from ..clients.pcs import PcsClient
from ..clients.rest import JsonClient
from ..clients.s3 import S3Client, S3Settings
from ..clients.tapms import TapmsClient

LOG = logging.getLogger(__name__)

DEFAULT_URLS = {
    "bos": "http://cray-bos/v2",
    "hsm": "http://cray-smd/hsm/v2",
    "pcs": "http://cray-power-control",
    "bss": "http://cray-bss/boot/v1",
    "cfs": "http://cray-cfs-api/v3",
    "ims": "http://cray-ims/v3",
    "tapms": "http://cray-tapms/v1alpha3",
}


@dataclass(frozen=True)
class Endpoints:
    """Base URLs (services.md §1) plus the Redis URL of the token store and change events."""

    bos: str = DEFAULT_URLS["bos"]
    hsm: str = DEFAULT_URLS["hsm"]
    pcs: str = DEFAULT_URLS["pcs"]
    bss: str = DEFAULT_URLS["bss"]
    cfs: str = DEFAULT_URLS["cfs"]
    ims: str = DEFAULT_URLS["ims"]
    tapms: str = DEFAULT_URLS["tapms"]
    s3: Optional[str] = None
    redis: Optional[str] = None
    token: Optional[str] = None


def bos_base(url: str) -> str:
    """Accept the API root or its `/v2` mount; the client works relative to `/v2`."""
    url = url.rstrip("/")
    return url if url.endswith("/v2") else url + "/v2"


@dataclass
class Services:
    bos: BosClient
    hsm: HsmClient
    pcs: PcsClient
    bss: BssClient
    cfs: CfsClient
    ims: ImsClient
    tapms: TapmsClient
    s3: S3Client
    redis: Any = None  # redis.asyncio.Redis: token records (§5.6)
    http: List[JsonClient] = field(default_factory=list)

    @classmethod
    def build(cls, endpoints: Endpoints, redis: Any = None) -> "Services":
        """Clients with the §2.6 connect/read timeouts and retry counts."""
        def client(name: str, url: str, read: float = 20.0, retries: int = 10) -> JsonClient:
            return JsonClient(name, url, retries=retries, connect_timeout=3.0, read_timeout=read,
                              token=endpoints.token)
        http = {
            "bos": client("bos", bos_base(endpoints.bos), read=10.0),
            "hsm": client("hsm", endpoints.hsm),
            "pcs": client("pcs", endpoints.pcs),
            "bss": client("bss", endpoints.bss),
            "cfs": client("cfs", endpoints.cfs),
            "ims": client("ims", endpoints.ims, retries=4),
            "tapms": client("tapms", endpoints.tapms, read=10.0),
        }
        reads = StoreReads(redis) if redis is not None else None  # the API's Redis: listings read there (bos_reads.py)
        return cls(bos=BosClient(http["bos"], reads), hsm=HsmClient(http["hsm"]), pcs=PcsClient(http["pcs"]),
                   bss=BssClient(http["bss"]), cfs=CfsClient(http["cfs"]), ims=ImsClient(http["ims"]),
                   tapms=TapmsClient(http["tapms"]), s3=S3Client(S3Settings.from_env(endpoints.s3)),
                   redis=redis, http=list(http.values()))

    def apply_options(self, options: Mapping[str, Any]) -> None:
        """`<svc>_read_timeout` and `ims_errors_fatal` take effect from the next request."""
        for client in self.http:
            key = f"{client.service}_read_timeout"
            if key in options:
                client.read_timeout = float(options[key])
            if client.service == "ims":
                client.retries = 8 if options.get("ims_errors_fatal") else 4

    async def close(self) -> None:
        for client in self.http:
            await client.close()
        await self.s3.close()
        if self.redis is not None:
            await self.redis.aclose()
