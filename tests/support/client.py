"""A thin HTTP client for tests: real requests on loopback, nothing mocked."""

from __future__ import annotations

from typing import Any, Optional

import requests

from bos_shared.options import DEFAULTS


class Api:
    def __init__(self, base: str, prefix: str = "") -> None:
        self.base = base.rstrip("/")
        self.prefix = prefix
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return f"{self.base}{self.prefix}{path}"

    def request(self, method: str, path: str, *, json: Any = None, data: Any = None,
                params: Optional[dict] = None, tenant: Optional[str] = None,
                headers: Optional[dict] = None) -> requests.Response:
        hdrs = dict(headers or {})
        if tenant is not None:
            hdrs["Cray-Tenant-Name"] = tenant
        return self.http.request(method, self.url(path), json=json, data=data, params=params,
                                 headers=hdrs, timeout=60)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def reset_options(self) -> None:
        resp = self.patch("/v2/options", json=dict(DEFAULTS))
        resp.raise_for_status()


def fresh_api(base: str, redis_client: Any) -> Api:
    """A client of an emptied database with default options (each test starts clean)."""
    redis_client.flushdb()
    client = Api(base)
    client.reset_options()
    return client


def assert_problem(resp: requests.Response, status: int, title: str, detail: Optional[str] = None) -> dict:
    """Check an RFC 7807 error response and return its body."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["title"] == title, body
    assert body["status"] == status, body
    assert body["type"] == "about:blank", body
    if detail is not None:
        assert body["detail"] == detail, body
    return body
