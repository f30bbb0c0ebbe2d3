"""Target state of a boot set and the per-node component patches (operators.md §6.4-§6.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from bos_shared.components import empty_actual_state, empty_boot_artifacts, empty_desired_state

from ..artifacts import (BOOT_PARAMETERS, INITRD, KERNEL, ROOTFS, ArtifactError, find_artifact,
                         link_etag, link_path, read_manifest)
from ..clients.s3 import S3Client, S3Error
from .kernel_params import SBPS, KernelParamsError, Rootfs, assemble
from .selection import SetupError

SHUTDOWN = "shutdown"
REBOOT = "reboot"


@dataclass(frozen=True)
class Target:
    """What one boot set wants on its nodes."""

    boot_artifacts: Dict[str, str]
    configuration: str


def configuration_for(template: Mapping[str, Any], boot_set: Mapping[str, Any]) -> str:
    """`""` if enable_cfs is false (absent = true); else boot set cfs, else template cfs, else `""`."""
    if template.get("enable_cfs") is False:
        return ""
    own = ((boot_set.get("cfs") or {}).get("configuration")) or ""
    return own or ((template.get("cfs") or {}).get("configuration")) or ""


@dataclass(frozen=True)
class ManifestArtifacts:
    kernel: str
    initrd: str
    rootfs: Optional[Rootfs]
    boot_parameters_url: str


def manifest_artifacts(manifest: Mapping[str, Any], provider: Optional[str]) -> ManifestArtifacts:
    """§6.5: kernel and initrd required, rootfs required for sbps, boot parameters optional."""
    kernel = find_artifact(dict(manifest), KERNEL)
    if kernel is None or not link_path(kernel):
        raise ArtifactError(f"No {KERNEL} artifact found in the manifest.")
    initrd = find_artifact(dict(manifest), INITRD)
    if initrd is None:
        raise ArtifactError(f"No {INITRD} artifact found in the manifest.")
    rootfs_artifact = find_artifact(dict(manifest), ROOTFS)
    if provider == SBPS and rootfs_artifact is None:
        raise ArtifactError(f"No {ROOTFS} artifact found in the manifest; rootfs_provider 'sbps' needs it.")
    rootfs = Rootfs(link_path(rootfs_artifact), link_etag(rootfs_artifact)) if rootfs_artifact else None
    params = find_artifact(dict(manifest), BOOT_PARAMETERS)
    return ManifestArtifacts(link_path(kernel), link_path(initrd), rootfs, link_path(params) if params else "")


async def image_parameters(s3: S3Client, url: str) -> Optional[str]:
    """The boot-parameters object decoded as UTF-8 (None when the manifest has none)."""
    if not url:
        return None
    try:
        return (await s3.get(url)).decode("utf-8")
    except (S3Error, UnicodeDecodeError) as exc:
        raise ArtifactError(f"Unable to read the boot parameters {url}: {exc}") from exc


async def target_for(template: Mapping[str, Any], name: str, boot_set: Mapping[str, Any],
                     operation: str, s3: S3Client, actual_state_ttl: str) -> Target:
    """§6.4-§6.6 for one boot set; reads S3 once per boot set. SetupError on any failure."""
    if operation == SHUTDOWN:
        return Target(empty_boot_artifacts(), "")
    try:
        manifest = await read_manifest(s3, dict(boot_set))
        found = manifest_artifacts(manifest, boot_set.get("rootfs_provider") or None)
        params = assemble(boot_set, await image_parameters(s3, found.boot_parameters_url), found.rootfs,
                          actual_state_ttl, name)
    except KernelParamsError as exc:
        raise SetupError(str(exc)) from exc
    except ArtifactError as exc:
        raise SetupError(f"{exc} (boot set '{name}')") from exc
    artifacts = {"kernel": found.kernel, "kernel_parameters": params, "initrd": found.initrd}
    return Target(artifacts, configuration_for(template, boot_set))


def component_patch(node: str, session: str, operation: str, staged: bool, target: Target) -> Dict[str, Any]:
    """One node's patch (§6.4): staged writes only `staged_state` (D24), others the desired state."""
    if staged:
        return {"id": node, "error": "",
                "staged_state": {"boot_artifacts": dict(target.boot_artifacts),
                                 "configuration": target.configuration, "session": session}}
    if operation == SHUTDOWN:
        desired: Dict[str, Any] = empty_desired_state()
    else:
        desired = {"boot_artifacts": dict(target.boot_artifacts), "configuration": target.configuration}
    patch: Dict[str, Any] = {"id": node, "error": "", "desired_state": desired, "session": session,
                             "enabled": True, "last_action": {"action": "session_setup", "failed": False}}
    if operation == REBOOT:
        patch["actual_state"] = empty_actual_state()  # artifacts cannot match until the node reports
    return patch
