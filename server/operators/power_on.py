"""power-on (operators.md §5.4-§5.6): preset, IMS tagging, BSS + token, CFS, PCS On.

Errors are tracked per component (D29): a component that fails a step gets that
step's error and takes no part in later steps. Every chunk component's action
update, which also presets its last action, is written before PCS `On`; a
component that CFS or PCS fails after it gets a second write with its error.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

from ..artifacts import ims_image_id
from ..store.tokens import put_token
from .claims import Claim
from .framework import Component, Errors, PassContext, in_flight, one_line
from .power import StartingOperator, transition

TOKEN_RETRIES = 5
CFS_PATCHES_IN_FLIGHT = 4
BSS_HOSTS_PER_PUT = 5000  # bounds the PUT body when max_component_batch_size is 0 (unlimited)
SBPS_MARKER = "root=sbps-s3"
BSS_ERROR = "Error encountered setting BSS information: {}"
CFS_ERROR = "Error encountered setting CFS information: {}"
PCS_ERROR = "Error encountered calling CAPMC to power on: "
NO_IMS_ID = "Unable to extract IMS ID from kernel path: {}"
DELETED_IMAGE = "Kernel path appears to refer to soft-deleted IMS image: '{}'"
TAG_ERROR = "Error encountered tagging images {}."

Triple = Tuple[str, str, str]


@dataclass
class Group:
    """Components sharing one desired boot (kernel, kernel_parameters, initrd)."""

    triple: Triple
    ids: List[str]

    @property
    def empty(self) -> bool:
        return not any(self.triple)


def triple_of(component: Component) -> Triple:
    arts = (component.get("desired_state") or {}).get("boot_artifacts") or {}
    return (arts.get("kernel") or "", arts.get("kernel_parameters") or "", arts.get("initrd") or "")


def group_by_artifacts(components: Sequence[Component]) -> List[Group]:
    groups: Dict[Triple, List[str]] = defaultdict(list)
    for comp in components:
        groups[triple_of(comp)].append(comp["id"])
    return [Group(triple, ids) for triple, ids in groups.items()]


def image_of(kernel: str) -> Tuple[str, str]:
    """(IMS image ID, "") or ("", error) for an SBPS kernel path (§5.6 step 1)."""
    image = ims_image_id(kernel)
    if image is None:
        return "", NO_IMS_ID.format(kernel)
    if image == "deleted":
        return "", DELETED_IMAGE.format(kernel)
    return image, ""


class PowerOnOperator(StartingOperator):
    name = "power-on"
    action = "powering_on"
    retry_field = "power_on_attempts"
    wake_statuses = frozenset({"power_on_pending"})
    filters = {"enabled": True, "status": "power_on_pending"}

    def __init__(self) -> None:
        super().__init__()
        # component ID -> BSS token of this pass's BSS writes, until the component's record carries
        # it. Chunks in flight never share a component: each holds its components' leases.
        self._tokens: Dict[str, str] = {}
        # ID -> the error (or "") that tagging its SBPS image gave, tagged while its decision was
        # recorded (`record_decisions`), until the chunk's `act` takes it.
        self._tagged: Dict[str, str] = {}

    async def record_decisions(self, ctx: PassContext, chunk: Sequence[Component],
                               claim: Claim) -> List[Component]:
        """Record the decisions (framework) while the chunk's SBPS images are tagged (§5.6 step 1,
        deviation): one round trip fewer in each chunk's way to `On` (issue 13, realistic
        latencies). Tagging is no power action, BSS write or CFS patch (docs/ha.md): an image
        tagged for a decision that is then adopted, or whose leases are lost, was only set the tag
        it gets anyway, and every write request, the tag's too, still awaits its fence check."""
        tagging = asyncio.ensure_future(self._tag_images(ctx, group_by_artifacts(chunk)))
        try:
            kept = await super().record_decisions(ctx, chunk, claim)
            errors = await tagging
        finally:  # a failed record (a lost fence): the tag is not waited for
            tagging.cancel()
            await asyncio.gather(tagging, return_exceptions=True)
        self._tagged.update((c["id"], errors.get(c["id"], "")) for c in kept)
        return kept

    async def act(self, ctx: PassContext, chunk: Sequence[Component]) -> Errors:
        """§5.5-§5.6, with the preset and the action update as one write (deviation, issue 13):
        after tagging and BSS, each component's action update (`powering_on`, attempts + 1, its
        error so far, its BSS token) is written while CFS is called, and is complete before PCS
        `On`, the only call that brings a node up: the window the preset closed stays closed. Only
        components that CFS or PCS then fail get a second write, of their error (`action_updates`)."""
        by_id = {c["id"]: c for c in chunk}
        for cid in by_id:  # nothing left over from a chunk whose update was never sent (lost fence)
            self._tokens.pop(cid, None)
        errors = await self._prepare_bss(ctx, chunk, by_id)
        update = asyncio.ensure_future(self.preset(ctx, chunk, dict(errors)))
        await asyncio.sleep(0)  # the update's request goes out before the CFS requests
        try:
            errors.update(await self._configure_cfs(ctx, [c for c in chunk if c["id"] not in errors]))
        except BaseException:
            update.cancel()
            await asyncio.gather(update, return_exceptions=True)
            raise
        await update  # a failed update fails the chunk (§2.4) before any node is powered on
        to_power = [c["id"] for c in chunk if c["id"] not in errors]
        errors.update(await transition(ctx, "On", to_power, prefix=PCS_ERROR))
        return errors

    async def _prepare_bss(self, ctx: PassContext, chunk: Sequence[Component],
                           by_id: Dict[str, Component]) -> Errors:
        """§5.6 steps 1-2 (tagging, BSS and token records): each component's error, if any."""
        groups = group_by_artifacts(chunk)
        tagged = {cid: self._tagged.pop(cid) for cid in by_id if cid in self._tagged}
        if len(tagged) == len(by_id):  # tagged while the decisions were recorded
            errors: Errors = {cid: error for cid, error in tagged.items() if error}
        else:
            errors = await self._tag_images(ctx, groups)
        for group in groups:
            ids = [i for i in group.ids if i not in errors]
            if group.empty:
                continue  # nothing to boot: no BSS write (CFS and PCS still apply)
            for start in range(0, len(ids), BSS_HOSTS_PER_PUT):  # one token per PUT
                run_ids = ids[start:start + BSS_HOSTS_PER_PUT]
                errors.update(await self._program_bss(ctx, group.triple, [by_id[i] for i in run_ids]))
        return errors

    @staticmethod
    async def _tag_images(ctx: PassContext, groups: Sequence[Group]) -> Errors:
        """Step 1: tag each distinct SBPS image once; failures go to that image's components."""
        errors: Errors = {}
        by_image: Dict[str, List[str]] = defaultdict(list)
        for group in groups:
            if SBPS_MARKER not in group.triple[1]:
                continue
            image, error = image_of(group.triple[0])
            if error:
                errors.update({i: error for i in group.ids})
            else:
                by_image[image].extend(group.ids)
        for image, ids in by_image.items():
            try:
                await ctx.services.ims.tag_sbps(image)
            except Exception as exc:  # per image: only its components fail
                text = one_line(TAG_ERROR.format(exc))
                ctx.log.error("Tagging IMS image %s failed: %s", image, text)
                errors.update({i: text for i in ids})
        return errors

    async def _program_bss(self, ctx: PassContext, triple: Triple, members: Sequence[Component]) -> Errors:
        """Step 2: BSS PUT, then the durable token record; the token itself is written to the
        components with their action update (`update_fields`, §5.6 step 2)."""
        ids = [c["id"] for c in members]
        kernel, params, initrd = triple
        try:
            token = await ctx.services.bss.set_boot_parameters(ids, params, kernel, initrd)
            await self._record_token(ctx, token, triple)
        except Exception as exc:  # the group's nodes must not boot with whatever BSS held before (D29)
            text = one_line(BSS_ERROR.format(exc))
            ctx.log.error("BSS programming failed for %d components: %s", len(ids), text)
            return {i: text for i in ids}
        self._tokens.update((i, token) for i in ids)
        return {}

    def update_fields(self, component: Component, error: str) -> Dict[str, Any]:
        """The desired BSS token (with `session`, §2.4) of a component whose BSS write succeeded,
        carried by its action update: one bulk write per chunk less than a PATCH of its own (the
        token record that resolves the node's report is durable before the update is sent)."""
        token = self._tokens.pop(component["id"], None)
        if token is None or error:
            return {}
        return {"session": component.get("session") or "", "desired_state": {"bss_token": token}}

    @staticmethod
    async def _record_token(ctx: PassContext, token: str, triple: Triple) -> None:
        redis = ctx.services.redis
        if redis is None:
            raise RuntimeError("the token store (Redis) is not configured")
        artifacts = {"kernel": triple[0], "kernel_parameters": triple[1], "initrd": triple[2]}
        for attempt in range(TOKEN_RETRIES + 1):
            try:
                await put_token(redis, token, artifacts)
                return
            except Exception as exc:  # retried; the last failure propagates to the caller
                if attempt == TOKEN_RETRIES:
                    raise
                ctx.log.warning("Recording BSS token failed (attempt %d): %s", attempt + 1, one_line(exc))
                await asyncio.sleep(0.2 * 2 ** attempt)

    @staticmethod
    async def _configure_cfs(ctx: PassContext, components: Sequence[Component]) -> Errors:
        """Step 3: CFS disabled, state cleared, desired_config and session tag, per ≤1000 IDs;
        CFS_PATCHES_IN_FLIGHT requests at once (independent requests: a chunk of 2,800 waited on
        three in turn)."""
        errors: Errors = {}
        groups: Dict[Tuple[str, str], List[str]] = defaultdict(list)
        for comp in components:
            key = ((comp.get("desired_state") or {}).get("configuration") or "", comp.get("session") or "")
            groups[key].append(comp["id"])
        cfs = ctx.services.cfs
        requests: List[Tuple[Sequence[str], Dict[str, Any]]] = []
        for (configuration, session), ids in groups.items():
            patch = {"enabled": False, "desired_config": configuration, "tags": {"bos_session": session},
                     "state": []}
            requests.extend((batch, patch) for batch in cfs.patch_batches(ids))

        async def send(request: Tuple[Sequence[str], Dict[str, Any]]) -> None:
            batch, patch = request
            try:
                await cfs.patch_batch(batch, patch)
            except Exception as exc:  # only the failed request's components
                text = one_line(CFS_ERROR.format(exc))
                ctx.log.error("CFS update failed for %d components: %s", len(batch), text)
                errors.update({i: text for i in batch})
        await in_flight(requests, send, CFS_PATCHES_IN_FLIGHT)
        return errors
