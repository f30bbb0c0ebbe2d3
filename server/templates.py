"""Session-template rules: merge (api.md §2.5), sanitise (§4.1) and boot-set checks (§4.2).

Artifact and IMS look-ups are shared by both checks; which outcomes are fatal
differs, so each check decides from the same findings.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from bos_shared import schema
from bos_shared.limits import node_list_has_nids
from bos_shared.schema_types import SchemaError
from bos_shared.xnames import canonical

from .artifacts import (BOOT_PARAMETERS, INITRD, KERNEL, ArtifactError, find_artifact, ims_image_id,
                        link_etag, link_path, read_manifest)
from .clients.ims import ImsClient
from .clients.rest import ServiceError
from .clients.s3 import S3Client, S3Error

LOG = logging.getLogger(__name__)
HW_FIELDS = ("node_groups", "node_list", "node_roles_groups")  # sorted (D14)
IMS_ARCH = {"X86": "x86_64", "Unknown": "x86_64", "ARM": "aarch64"}
Template = Dict[str, Any]


class TemplateError(Exception):
    """A fatal template problem; the message completes the API's detail."""


@dataclass
class Findings:
    """What checking one boot set found: the first fatal error and every warning."""

    error: Optional[str] = None
    warnings: List[str] = field(default_factory=list)


@dataclass
class Services:
    s3: S3Client
    ims: ImsClient
    options: Mapping[str, Any]


def hardware_problem(boot_set: Mapping[str, Any]) -> Optional[str]:
    present = [f for f in HW_FIELDS if f in boot_set]
    names = ", ".join(HW_FIELDS)
    if not present:
        return f"No hardware specifier fields ({names})"
    if not any(boot_set.get(f) for f in present):
        return f"No non-empty hardware specifier fields ({names})"
    return None


async def check_artifacts(services: Services, boot_set: Mapping[str, Any]) -> Findings:
    """Manifest, kernel, initrd and boot-parameter checks of §4.2 step 2.4."""
    found = Findings()
    try:
        manifest = await read_manifest(services.s3, dict(boot_set))
    except ArtifactError as exc:
        found.error = f"Can't find boot artifacts. Error: {exc}"
        return found
    url = boot_set["path"]
    try:
        kernel = find_artifact(manifest, KERNEL)
        if kernel is None:
            raise ArtifactError("no kernel artifact in the manifest")
        _compare_etag(link_path(kernel), link_etag(kernel), await services.s3.head_etag(link_path(kernel)))
    except (ArtifactError, S3Error) as exc:
        found.error = f"Can't find kernel in {url}. Error: {exc}"
        return found
    await _check_optional(services, manifest, url, found)
    return found


async def _check_optional(services: Services, manifest: Dict[str, Any], url: str, found: Findings) -> None:
    for artifact_type, label in ((INITRD, "initrd"), (BOOT_PARAMETERS, "boot_parameters")):
        try:
            artifact = find_artifact(manifest, artifact_type)
        except ArtifactError as exc:
            found.warnings.append(f"Unable to check {label} in {url}. Warning: {exc}")
            continue
        if artifact is None:
            if artifact_type == INITRD:
                found.warnings.append(f"{url} doesn't contain a initrd")
            else:
                LOG.info("%s has no boot parameters artifact", url)
            continue
        try:
            _compare_etag(link_path(artifact), link_etag(artifact), await services.s3.head_etag(link_path(artifact)))
        except S3Error as exc:
            found.warnings.append(f"Unable to check {label} in {url}. Warning: {exc}")


def _compare_etag(url: str, expected: str, actual: str) -> None:
    """A manifest etag that differs from the object's is only logged (services.md §7)."""
    if expected and actual and expected.strip('"') != actual:
        LOG.warning("The etag of %s is %s, but the manifest says %s", url, actual, expected)


async def check_ims(services: Services, boot_set: Mapping[str, Any]) -> Findings:
    """The IMS image/arch check of §4.2 (fatality per the ims_* options)."""
    found = Findings()
    arch = boot_set.get("arch", "X86")
    if arch == "Other":
        found.warnings.append("Can't validate boot image arch: Boot set arch set to 'Other'")
        return found
    image_id = ims_image_id(boot_set.get("path", ""))
    if image_id is None:
        found.warnings.append(f"Boot artifact S3 URL '{boot_set.get('path', '')}' doesn't follow convention for IMS images")
        return found
    options = services.options
    try:
        image = await services.ims.get_image(image_id)
    except ServiceError as exc:
        if exc.status == 404:
            message = f"IMS image id '{image_id}' does not exist in IMS"
            _fatal_or_warning(found, message, options.get("ims_images_must_exist"))
        else:
            _fatal_or_warning(found, f"Can't validate boot image arch: {exc}", options.get("ims_errors_fatal"))
        return found
    actual = image.get("arch") or "x86_64"
    expected = IMS_ARCH.get(arch, "x86_64")
    if actual != expected:
        found.error = (f"Boot set arch '{arch}' means IMS image arch should be '{expected}', "
                       f"but actual IMS image arch is '{actual}'")
    return found


def _fatal_or_warning(found: Findings, message: str, fatal: Any) -> None:
    if fatal:
        found.error = message
    else:
        found.warnings.append(message)


async def check_boot_sets(services: Services, template: Mapping[str, Any], operation: str,
                          template_name: str) -> Tuple[str, str]:
    """§4.2: ("error"|"warning"|"success", message)."""
    boot_sets = template.get("boot_sets") or {}
    if not boot_sets:
        return "error", f"Session template '{template_name}' requires at least 1 boot set."
    warnings: List[str] = []
    for key, boot_set in boot_sets.items():
        prefix = f"Session template: '{template_name}' boot set: '{key}': "
        error, found = await _check_one(services, boot_set, operation)
        warnings.extend(prefix + w for w in found)
        if error:
            return "error", prefix + error
    if warnings:
        for message in warnings:
            LOG.warning(message)
        return "warning", "; ".join(warnings)
    return "success", "Valid"


async def _check_one(services: Services, boot_set: Mapping[str, Any], operation: str) -> Tuple[Optional[str], List[str]]:
    problem = hardware_problem(boot_set)
    if problem:
        return problem, []
    warnings: List[str] = []
    provider = boot_set.get("rootfs_provider")
    if provider is not None and provider != "sbps":
        warnings.append(f"Unsupported rootfs_provider ('{provider}') will cause boot/reboot sessions to fail")
    if node_list_has_nids(boot_set.get("node_list") or []):
        if services.options.get("reject_nids"):
            return "Has NID in 'node_list'", warnings
        warnings.append("Has NID in 'node_list'")
    if operation not in ("boot", "reboot"):
        return None, warnings
    for check in (check_artifacts, check_ims):
        found = await check(services, boot_set)
        warnings.extend(found.warnings)
        if found.error:
            return found.error, warnings
    return None, warnings


# -- §4.1: validate and sanitise on PUT/PATCH --

def check_boot_sets_field(template: Mapping[str, Any]) -> None:
    if "boot_sets" not in template:
        raise TemplateError("Missing required 'boot_sets' field")
    if not isinstance(template["boot_sets"], dict):
        raise TemplateError("'boot_sets' field has invalid type")
    if not template["boot_sets"]:
        raise TemplateError("Session templates must contain at least one boot set")


async def sanitise(services: Services, template: Template) -> Template:
    """The template as stored, or TemplateError (api.md §4.1)."""
    check_boot_sets_field(template)
    out = copy.deepcopy(template)
    for key, boot_set in out["boot_sets"].items():
        await _sanitise_boot_set(services, key, boot_set)
    _drop_empty_cfs(out)
    try:
        out = schema.SessionTemplate.validate(out)
    except SchemaError as exc:
        raise TemplateError(str(exc)) from None
    for boot_set in out["boot_sets"].values():
        boot_set.pop("name", None)
    return out


async def _sanitise_boot_set(services: Services, key: str, boot_set: Dict[str, Any]) -> None:
    if "name" in boot_set and boot_set["name"] != key:
        raise TemplateError(f"boot_sets key ({key}) does not match 'name' field of corresponding boot set ({boot_set['name']})")
    boot_set.setdefault("arch", "X86")
    _drop_empty_cfs(boot_set)
    artifacts = await check_artifacts(services, boot_set)
    for message in artifacts.warnings + ([artifacts.error] if artifacts.error else []):
        LOG.info("Session template boot set %s: %s", key, message)  # never fatal here
    ims = await check_ims(services, boot_set)
    for message in ims.warnings:
        LOG.warning("Session template boot set %s: %s", key, message)
    if ims.error:
        raise TemplateError(f"Boot set {key}: {ims.error}")
    problem = hardware_problem(boot_set)
    if problem:
        raise TemplateError(f"Boot set {key}: {problem}")
    if node_list_has_nids(boot_set.get("node_list") or []):
        if services.options.get("reject_nids"):
            raise TemplateError(f"Boot set {key}: Has NID in 'node_list'")
        LOG.warning("Boot set %s: Has NID in 'node_list'", key)
    if isinstance(boot_set.get("node_list"), list):
        boot_set["node_list"] = [canonical(x) if isinstance(x, str) else x for x in boot_set["node_list"]]


def _drop_empty_cfs(holder: Dict[str, Any]) -> None:
    cfs = holder.get("cfs")
    if isinstance(cfs, dict) and not cfs.get("configuration"):
        del holder["cfs"]


def merge_template(stored: Mapping[str, Any], patch: Mapping[str, Any]) -> Template:
    """Template PATCH merge (api.md §2.5); boot sets are never removed."""
    out = copy.deepcopy(dict(stored))
    for key, value in patch.items():
        if key == "cfs":
            out["cfs"] = {**(out.get("cfs") or {}), **value}
        elif key == "boot_sets":
            out["boot_sets"] = _merge_boot_sets(out.get("boot_sets") or {}, value)
        elif key in ("description", "enable_cfs"):
            out[key] = copy.deepcopy(value)
    return out


def _merge_boot_sets(stored: Dict[str, Any], patch: Mapping[str, Any]) -> Dict[str, Any]:
    merged = copy.deepcopy(stored)
    for name, boot_set in patch.items():
        if name not in merged:
            merged[name] = copy.deepcopy(boot_set)
            continue
        current = merged[name]
        for key, value in boot_set.items():
            if key == "cfs":
                current["cfs"] = {**(current.get("cfs") or {}), **value}
            else:
                current[key] = copy.deepcopy(value)
    return merged
