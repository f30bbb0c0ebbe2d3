"""Image manifests and their artifacts (operators.md §6.5, api.md §4.2).

Both the API (boot-set validation) and session setup read manifests the same way.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional

from .clients.s3 import MANIFEST_MAX_BYTES, S3Client, S3Error, split_s3_url

KERNEL = "application/vnd.cray.image.kernel"
INITRD = "application/vnd.cray.image.initrd"
ROOTFS = "application/vnd.cray.image.rootfs.squashfs"
BOOT_PARAMETERS = "application/vnd.cray.image.parameters.boot"
_IMS_KEY = re.compile(r"^([^/]+)/.+")


class ArtifactError(Exception):
    """A manifest or artifact problem; the message is one line."""


async def read_manifest(s3: S3Client, boot_set: Dict[str, Any]) -> Dict[str, Any]:
    """The boot set's manifest as a JSON object; ArtifactError on any failure."""
    if boot_set.get("type") != "s3":
        raise ArtifactError(f"Unsupported boot set type '{boot_set.get('type')}': only 's3' is supported")
    path = boot_set.get("path")
    if not path:
        raise ArtifactError("The boot set has no 'path' to a manifest")
    try:
        raw = await s3.get(path, max_bytes=MANIFEST_MAX_BYTES)
    except S3Error as exc:
        raise ArtifactError(str(exc)) from exc
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise ArtifactError(f"The manifest {path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"The manifest {path} is not a JSON object")
    return manifest


def find_artifact(manifest: Dict[str, Any], artifact_type: str) -> Optional[Dict[str, Any]]:
    """The single artifact of `artifact_type`, None if absent; ArtifactError if several."""
    found: List[Dict[str, Any]] = [a for a in manifest.get("artifacts") or []
                                   if isinstance(a, dict) and a.get("type") == artifact_type]
    if len(found) > 1:
        raise ArtifactError(f"Multiple {artifact_type} artifacts found in the manifest.")
    return found[0] if found else None


def link_path(artifact: Optional[Dict[str, Any]]) -> str:
    return str(((artifact or {}).get("link") or {}).get("path") or "")


def link_etag(artifact: Optional[Dict[str, Any]]) -> str:
    return str(((artifact or {}).get("link") or {}).get("etag") or "")


def ims_image_id(s3_url: str) -> Optional[str]:
    """The IMS image ID: first segment of the S3 key when the key looks like `<id>/...`."""
    try:
        _bucket, key = split_s3_url(s3_url)
    except S3Error:
        return None
    match = _IMS_KEY.match(key)
    return match.group(1) if match else None
