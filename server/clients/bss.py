"""BSS client (services.md §4): boot parameters and the referral token."""

from __future__ import annotations

from typing import Sequence

from .rest import JsonClient, ServiceError

TOKEN_HEADER = "bss-referral-token"


class BssClient:
    def __init__(self, http: JsonClient) -> None:
        self.http = http

    async def set_boot_parameters(self, hosts: Sequence[str], params: str, kernel: str, initrd: str) -> str:
        """`PUT /bootparameters`; returns the referral token of the accepted response.

        A 2xx without the token header is an error: without the token the node's
        report could never be resolved to the artifacts.
        """
        body = {"hosts": list(hosts), "params": params, "kernel": kernel, "initrd": initrd}
        resp = await self.http.request("PUT", "/bootparameters", json_body=body)
        token = resp.header(TOKEN_HEADER)
        if not token:
            raise ServiceError(self.http.service, "PUT", self.http.url("/bootparameters"),
                               f"status {resp.status}: response has no BSS-Referral-Token header",
                               resp.status, resp.body)
        return token
