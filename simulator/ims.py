"""IMS v3 (services.md §6): image records and metadata patches."""

from __future__ import annotations

from typing import Any, Dict, List

from aiohttp import web

from .httputil import SimError, json_body

BASE = "/v3"
ARCHES = ("x86_64", "aarch64")


class ImsStore:
    def __init__(self) -> None:
        self.images: Dict[str, Dict[str, Any]] = {}
        # Every accepted PATCH, in order: what BOS tagged (read back through the control API).
        self.patches: List[Dict[str, Any]] = []

    def get(self, image_id: str) -> Dict[str, Any]:
        image = self.images.get(image_id)
        if image is None:
            raise SimError(404, f"No IMS image record matches id={image_id}")
        return image

    def patch(self, image_id: str, body: Any) -> Dict[str, Any]:
        image = self.get(image_id)
        if not isinstance(body, dict) or not body:
            raise SimError(400, "The request body must be a non-empty JSON object")
        unknown = set(body) - {"metadata", "arch", "link"}
        if unknown:
            raise SimError(400, f"Unsupported field(s): {', '.join(sorted(unknown))}")
        if "metadata" in body:
            _check_metadata(body["metadata"])
        if "arch" in body and body["arch"] not in ARCHES:
            raise SimError(422, f"arch must be one of {', '.join(ARCHES)}")
        self._apply(image, body)
        self.patches.append({"id": image_id, "patch": body})
        return image

    @staticmethod
    def _apply(image: Dict[str, Any], body: Dict[str, Any]) -> None:
        if "arch" in body:
            image["arch"] = body["arch"]
        if "link" in body:
            image["link"] = body["link"]
        op = body.get("metadata")
        if not op:
            return
        metadata = image.setdefault("metadata", {})
        if op["operation"] == "set":
            metadata[op["key"]] = op["value"]
        else:
            metadata.pop(op["key"], None)


def _check_metadata(op: Any) -> None:
    if not isinstance(op, dict):
        raise SimError(400, "'metadata' must be an object")
    if op.get("operation") not in ("set", "remove"):
        raise SimError(400, "metadata 'operation' must be 'set' or 'remove'")
    if not isinstance(op.get("key"), str) or not op["key"]:
        raise SimError(400, "metadata 'key' is required")
    if op["operation"] == "set" and not isinstance(op.get("value"), str):
        raise SimError(400, "metadata 'value' is required for 'set'")


def make_routes(store: ImsStore) -> List[web.RouteDef]:
    async def list_images(request: web.Request) -> web.Response:
        return web.json_response(list(store.images.values()))

    async def get_image(request: web.Request) -> web.Response:
        return web.json_response(store.get(request.match_info["id"]))

    async def patch_image(request: web.Request) -> web.Response:
        image_id = request.match_info["id"]
        store.get(image_id)  # 404 before body errors, as IMS does
        return web.json_response(store.patch(image_id, await json_body(request)))

    return [web.get(f"{BASE}/images", list_images),
            web.get(f"{BASE}/images/{{id}}", get_image),
            web.patch(f"{BASE}/images/{{id}}", patch_image)]
