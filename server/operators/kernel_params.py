"""Kernel parameter assembly for one boot set (operators.md §6.6).

Pure: the caller reads the manifest and the image's boot-parameters object;
this module only decides the exact order and strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional, Any

SBPS = "sbps"


class KernelParamsError(Exception):
    """The boot set cannot be turned into kernel parameters (a session setup error)."""


@dataclass(frozen=True)
class Rootfs:
    """The image's root filesystem artifact (`...rootfs.squashfs`): S3 path and etag."""

    path: str
    etag: str


def root_parameter(provider: Optional[str], passthrough: str, rootfs: Optional[Rootfs],
                   boot_set_name: str = "") -> str:
    """Piece 3: the `root=` parameter, or "" when there is none."""
    if not provider:
        return f"root=::{passthrough}" if passthrough else ""
    if provider != SBPS:
        suffix = f" (boot set '{boot_set_name}')" if boot_set_name else ""
        raise KernelParamsError(f"Unsupported rootfs_provider ('{provider}') specified in boot set{suffix}")
    if rootfs is None:
        raise KernelParamsError("The image manifest has no application/vnd.cray.image.rootfs.squashfs "
                                "artifact, required by rootfs_provider 'sbps'")
    value = f"root=sbps-s3:{rootfs.path}:{rootfs.etag}"
    return f"{value}:{passthrough}" if passthrough else value


def nmd_parameter(provider: Optional[str], rootfs: Optional[Rootfs]) -> str:
    """Piece 4 (sbps only): `nmd_data=url=<path>,etag=<etag>` with only the present parts."""
    if provider != SBPS or rootfs is None:
        return ""
    parts = [f"url={rootfs.path}" if rootfs.path else "", f"etag={rootfs.etag}" if rootfs.etag else ""]
    parts = [p for p in parts if p]
    return "nmd_data=" + ",".join(parts) if parts else ""


def assemble(boot_set: Mapping[str, Any], image_parameters: Optional[str], rootfs: Optional[Rootfs],
             actual_state_ttl: str, boot_set_name: str = "") -> str:
    """The boot set's `kernel_parameters`, pieces joined by single spaces (empty ones omitted).

    `image_parameters` is the decoded boot-parameters object (None if the manifest has none).
    """
    provider = boot_set.get("rootfs_provider") or None
    passthrough = boot_set.get("rootfs_provider_passthrough") or ""
    pieces: List[str] = list((image_parameters or "").split())  # 1. image parameters, word by word
    pieces.append(boot_set.get("kernel_parameters") or "")  # 2. verbatim
    pieces.append(root_parameter(provider, passthrough, rootfs, boot_set_name))  # 3.
    pieces.append(nmd_parameter(provider, rootfs))  # 4.
    pieces.append(f"bos_update_frequency={actual_state_ttl}")  # 5. always
    return " ".join(p for p in pieces if p)
