"""IMS client (services.md §6): image arch for validation, SBPS tagging for power-on."""

from __future__ import annotations

from typing import Any, Dict

from .rest import JsonClient

SBPS_TAG = {"operation": "set", "key": "sbps-project", "value": "true"}


class ImsClient:
    def __init__(self, http: JsonClient) -> None:
        self.http = http

    async def get_image(self, image_id: str) -> Dict[str, Any]:
        """The image record; raises ServiceError (status 404 when unknown)."""
        body = await self.http.get(f"/images/{image_id}")
        return body if isinstance(body, dict) else {}

    async def tag_sbps(self, image_id: str) -> None:
        await self.http.patch(f"/images/{image_id}", {"metadata": SBPS_TAG})
