"""S3 (services.md §7): moto's server behind a thin aiohttp proxy.

moto speaks real S3 (SigV4, XML errors, ETags, HEAD); the proxy in front of it
lets the same middleware as every other service record requests and inject
faults. Image artifacts and manifests (operators.md §6.5) are generated here
from the inventory's image list and loaded into moto with boto3.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Dict, List, Optional, Tuple

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from .inventory import BOOT_BUCKET, ImageSpec, S3ObjectSpec

LOG = logging.getLogger(__name__)

ACCESS_KEY = "simulator"
SECRET_KEY = "simulator-secret"
# Headers that describe one hop, not the message; never forwarded.
HOP_HEADERS = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "host", "content-length"}
ARTIFACT_TYPES = {
    "kernel": "application/vnd.cray.image.kernel",
    "initrd": "application/vnd.cray.image.initrd",
    "rootfs": "application/vnd.cray.image.rootfs.squashfs",
    "boot_parameters": "application/vnd.cray.image.parameters.boot",
}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def image_objects(image: ImageSpec, bucket: str = BOOT_BUCKET) -> Tuple[List[S3ObjectSpec], str]:
    """The S3 objects of one IMS image (manifest last) and the manifest's etag."""
    bodies: Dict[str, bytes] = {"kernel": f"simulated kernel of image {image.id}\n".encode()}
    if image.initrd:
        bodies["initrd"] = f"simulated initrd of image {image.id}\n".encode()
    if image.rootfs:
        bodies["rootfs"] = f"simulated squashfs root of image {image.id}\n".encode()
    if image.boot_parameters is not None:
        bodies["boot_parameters"] = image.boot_parameters.encode()
    objects = [S3ObjectSpec(bucket, f"{image.id}/{name}", body) for name, body in bodies.items()]
    manifest = image.manifest or {"version": "1.0", "created": "2024-05-01 12:00:00", "artifacts": [
        {"type": ARTIFACT_TYPES[name],
         "link": {"type": "s3", "path": f"s3://{bucket}/{image.id}/{name}", "etag": md5(body)},
         "md5": md5(body)}
        for name, body in bodies.items()]}
    manifest_body = json.dumps(manifest, indent=2).encode()
    objects.append(S3ObjectSpec(bucket, f"{image.id}/manifest.json", manifest_body))
    return objects, md5(manifest_body)


class MotoS3:
    """moto's threaded server on a free loopback port, loaded through boto3."""

    def __init__(self, host: str) -> None:
        from moto.server import ThreadedMotoServer  # heavy import, only when S3 is really started
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
        self.url = ""

    def start(self) -> str:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        if self.url:  # stopping a server that never started would fail
            self._server.stop()

    def load(self, objects: List[S3ObjectSpec]) -> None:
        """Create the buckets and objects (blocking; done once before serving)."""
        client = client_for(self.url)
        for bucket in sorted({obj.bucket for obj in objects} | {BOOT_BUCKET}):
            client.create_bucket(Bucket=bucket)
        for obj in objects:
            # Readable without signature, like the plain artifact URLs of BSS boot scripts (§4.3 step 7).
            client.put_object(Bucket=obj.bucket, Key=obj.key, Body=obj.body, ACL="public-read")


def client_for(endpoint: str) -> Any:
    """A boto3 S3 client as our server configures it (path style, any region)."""
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"total_max_attempts": 1, "mode": "standard"}))


class S3Proxy:
    """Forwards every request to moto unchanged (signatures included)."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self._session: Optional[aiohttp.ClientSession] = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None, "S3Proxy.start() was not awaited"
        body = await request.read()
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS)
        url = URL(self.target + request.raw_path, encoded=True)  # forward the path exactly as signed
        async with self._session.request(request.method, url, headers=headers, data=body,
                                         allow_redirects=False) as upstream:
            payload = await upstream.read()
            out = CIMultiDict((k, v) for k, v in upstream.headers.items()
                              if k.lower() not in HOP_HEADERS | {"date", "server"})
            if request.method == "HEAD":
                return await _head_response(request, upstream.status, out, upstream.headers.get("Content-Length"))
            return web.Response(status=upstream.status, body=payload, headers=out)

    def routes(self) -> List[web.RouteDef]:
        return [web.route("*", "/{tail:.*}", self.handle)]


async def _head_response(request: web.Request, status: int, headers: CIMultiDict,
                         length: Optional[str]) -> web.StreamResponse:
    """HEAD must carry the object's Content-Length without a body."""
    response = web.StreamResponse(status=status, headers=headers)
    if length is not None and length.isdigit():
        response.content_length = int(length)
    await response.prepare(request)
    await response.write_eof()
    return response
